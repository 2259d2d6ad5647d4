"""Shared pieces of the benchmark harness: data, the FLOP model, timing, machine description.

Nothing here imports lamina, torch, keras or scikit-learn at module level: a worker process
imports only its own contender (see worker.py), so no two OpenMP runtimes share a process.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Set by the environment on some machines; they make numpy's OpenBLAS pick slower kernels.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARKER = "LAMINA_BENCH_REMOVED_ENV"  # JSON of the variables run.py removed by re-exec'ing

N_FEATURES, N_CLASSES, N_HIDDEN = 784, 10, 512

SETTLE_SECONDS = 0.25  # idle time before each measurement (see run.py's rounds)

# CPU flags recorded with every table: Zen 3 / Zen 4 / Xeon figures are not comparable.
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16")


# ----------------------------------------------------------------------------- FLOP model
def _gemm_flop(m: int, n: int, k: int) -> int:
    return 2 * m * n * k


# Per sample, counting the matrix products only (bias, activations, loss and the optimizer are
# O(units) or O(parameters per step) and left out). Forward: X·W1 and H·W2. Backward: dW1 = Xᵀ·dZ1,
# dW2 = Hᵀ·dZ2 and dH = dZ2·W2ᵀ; the first layer's input gradient dX is never formed.
PREDICT_FLOP_PER_SAMPLE = _gemm_flop(1, N_HIDDEN, N_FEATURES) + _gemm_flop(1, N_CLASSES, N_HIDDEN)  # 813,056
TRAIN_FLOP_PER_SAMPLE = 2 * PREDICT_FLOP_PER_SAMPLE + _gemm_flop(1, N_HIDDEN, N_CLASSES)  # 1,636,352


# ----------------------------------------------------------------------------- data
class Data:
    """Fashion-MNIST (or random data of the same shape), float32 in [0, 1], flattened."""

    FILES = ("x_train", "y_train", "x_test", "y_test")

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, source: str) -> None:
        self.x_train, self.y_train = x_train, y_train  # (60000, 784) float32, (60000,) int64
        self.x_test, self.y_test = x_test, y_test      # (10000, 784) float32, (10000,) int64
        self.source = source
        self._onehot: Optional[np.ndarray] = None

    @property
    def y_train_onehot(self) -> np.ndarray:
        if self._onehot is None:
            self._onehot = np.eye(N_CLASSES, dtype=np.float32)[self.y_train]
        return self._onehot

    def save(self, folder: str) -> None:
        """Writes the arrays as .npy files, so every worker trains on the same rows without
        importing lamina's loader (and its OpenMP runtime) into a peer's process."""
        os.makedirs(folder, exist_ok=True)
        for name in self.FILES:
            np.save(os.path.join(folder, name + ".npy"), getattr(self, name))
        with open(os.path.join(folder, "source.txt"), "w") as fh:
            fh.write(self.source)

    @classmethod
    def read(cls, folder: str) -> "Data":
        arrays = [np.load(os.path.join(folder, name + ".npy")) for name in cls.FILES]
        with open(os.path.join(folder, "source.txt")) as fh:
            source = fh.read()
        return cls(*arrays, source=source)


def load_data(force_random: bool = False) -> Data:
    """Fashion-MNIST through lamina's loader (never downloads), else random data.
    Imports lamina: call it in the orchestrator, never in a peer's worker."""
    if not force_random:
        try:
            import lamina as lm
            (xtr, ytr), (xte, yte) = lm.datasets.load_fashion_mnist(download=False)

            def prep(x: np.ndarray) -> np.ndarray:  # one float32 copy, scaled in place
                out = x.reshape(len(x), -1).astype(np.float32)
                out /= np.float32(255)
                return out

            return Data(prep(xtr), ytr.astype(np.int64), prep(xte), yte.astype(np.int64),
                        "Fashion-MNIST (lamina.datasets.load_fashion_mnist, scaled to [0,1], flattened)")
        except Exception as exc:  # noqa: BLE001 - files absent: fall through to random data
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    else:
        reason = "--random-data"
    rng = np.random.default_rng(0)
    return Data(rng.random((60000, N_FEATURES), dtype=np.float32), rng.integers(0, N_CLASSES, 60000),
                rng.random((10000, N_FEATURES), dtype=np.float32), rng.integers(0, N_CLASSES, 10000),
                f"random data of Fashion-MNIST's shape ({reason})")


# ----------------------------------------------------------------------------- timing
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed_per_call(fn: Callable[[], Any], min_seconds: float) -> float:
    """Seconds per call of ``fn``, over as many back-to-back calls as fill ``min_seconds``
    (at least one), so a short call is not timed once, cold, straight after the idle pause."""
    calls, start = 0, time.perf_counter()
    while calls < 1 or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


# ----------------------------------------------------------------------------- machine
def _lscpu() -> Dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> Tuple[str, int]:
    model = _lscpu().get("Model name") or platform.processor() or "unknown"
    return model, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_flags() -> Dict[str, bool]:
    """Which of CPU_FLAGS_OF_INTEREST lscpu (else /proc/cpuinfo) lists."""
    flags = set(_lscpu().get("Flags", "").split())
    if not flags:
        try:
            with open("/proc/cpuinfo") as fh:
                flags = set(next((ln for ln in fh if ln.startswith("flags")), ":").split(":", 1)[1].split())
        except OSError:
            pass
    return {f: f in flags for f in CPU_FLAGS_OF_INTEREST}


def versions() -> Dict[str, Optional[str]]:
    from importlib.metadata import PackageNotFoundError, version
    out: Dict[str, Optional[str]] = {"python": sys.version.split()[0], "numpy": np.__version__}
    for name in ("lamina", "torch", "keras", "jax", "jaxlib", "scikit-learn", "threadpoolctl"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def numpy_blas_info() -> List[Dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed (pip install threadpoolctl) - BLAS unknown"}]
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: info.get(k) for k in keep} for info in threadpool_info()]


def load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> Dict[str, Any]:
    import json
    model, cores = cpu_model()
    removed = os.environ.get(REEXEC_MARKER)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": model,
        "cpu_flags": cpu_flags(),
        "cores": cores,
        "platform": platform.platform(),
        "load_avg_at_start": load_average(),
        "versions": versions(),
        "numpy_blas": numpy_blas_info(),
        "openblas_env_now": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
        "openblas_env_removed_by_reexec": json.loads(removed) if removed else {},
    }
