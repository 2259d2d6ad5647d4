"""Shared pieces of the benchmark harness: data, timing, thread control, machine description.

Nothing here imports torch or scikit-learn at module level; each measurement imports its
peer lazily and reports a skip line when it is missing.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Set by the environment on some machines; they make numpy's OpenBLAS pick slower kernels.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARKER = "LAMINA_BENCH_REMOVED_ENV"  # JSON of the variables run.py removed by re-exec'ing

N_FEATURES, N_CLASSES, N_HIDDEN = 784, 10, 512

SETTLE_SECONDS = 0.25  # idle time before each measurement (see alternate)


# ----------------------------------------------------------------------------- data
class Data:
    """Fashion-MNIST (or random data of the same shape), float32 in [0, 1], flattened."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, source: str) -> None:
        self.x_train, self.y_train = x_train, y_train  # (60000, 784) float32, (60000,) int64
        self.x_test, self.y_test = x_test, y_test      # (10000, 784) float32, (10000,) int64
        self.source = source
        self._onehot: Optional[np.ndarray] = None

    @property
    def y_train_onehot(self) -> np.ndarray:
        if self._onehot is None:
            import lamina as lm
            self._onehot = np.ascontiguousarray(lm.utils.to_categorical(self.y_train, N_CLASSES), dtype=np.float32)
        return self._onehot


def load_data(force_random: bool = False) -> Data:
    """Fashion-MNIST through lamina's loader (never downloads), else random data."""
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


def alternate(contenders: Dict[str, Callable[[], float]], repeats: int,
              budget_seconds: Optional[float] = None, min_repeats: int = 3) -> Dict[str, List[float]]:
    """Runs each contender's measurement in turn, ``repeats`` rounds, and returns every value.

    Alternating (A B A B ...) instead of (A A A B B B) spreads any slow phase of a shared
    machine over both sides, so the ratio of medians stays meaningful. With a budget, rounds
    stop once it is spent (after at least ``min_repeats``), which bounds a run on a busy machine.

    Before each measurement the machine is left idle for ``SETTLE_SECONDS``: a library's worker
    threads keep spinning for a while after its last call (OpenBLAS's for about 0.1 s), and on
    2 cores they would take a core from whichever contender runs next -- measured to halve
    lamina's GEMM rate right after a numpy matmul (178 -> 84 GFLOP/s at 784x512x128).
    """
    results: Dict[str, List[float]] = {name: [] for name in contenders}
    start = time.perf_counter()
    for r in range(repeats):
        if budget_seconds is not None and r >= min(min_repeats, repeats) \
                and time.perf_counter() - start > budget_seconds:
            break
        names = list(contenders)
        if r % 2:  # also alternate who goes first
            names.reverse()
        for name in names:
            time.sleep(SETTLE_SECONDS)
            results[name].append(contenders[name]())
    return results


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


# ----------------------------------------------------------------------------- threads
def set_threads(n: int) -> Dict[str, Any]:
    """The same thread count for lamina, numpy's BLAS (threadpoolctl) and torch (if imported later).

    Returns what was done, for the report. The threadpoolctl limiter is kept alive globally.
    """
    import lamina as lm
    lm.set_num_threads(n)
    done: Dict[str, Any] = {"lamina": lm.get_num_threads()}
    try:
        from threadpoolctl import threadpool_limits
        global _LIMITER
        _LIMITER = threadpool_limits(limits=n, user_api="blas")
        done["numpy_blas"] = n
    except ImportError:
        done["numpy_blas"] = "threadpoolctl not installed: numpy BLAS threads not limited"
    return done


_LIMITER: Any = None


def numpy_blas_info() -> List[Dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed (pip install threadpoolctl) - BLAS unknown"}]
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: info.get(k) for k in keep} for info in threadpool_info()]


# ----------------------------------------------------------------------------- machine
def cpu_model() -> Tuple[str, int]:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return model, cores


def versions() -> Dict[str, Optional[str]]:
    import sys

    import lamina as lm
    out: Dict[str, Optional[str]] = {"python": sys.version.split()[0], "numpy": np.__version__,
                                     "lamina": lm.__version__}
    from importlib.metadata import PackageNotFoundError, version
    for name in ("torch", "scikit-learn", "threadpoolctl"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> Dict[str, Any]:
    import json

    import lamina as lm
    model, cores = cpu_model()
    removed = os.environ.get(REEXEC_MARKER)
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": model,
        "cores": cores,
        "platform": platform.platform(),
        "load_avg_1min_at_start": load1,
        "versions": versions(),
        "lamina_build": lm.build_info(),
        "numpy_blas": numpy_blas_info(),
        "openblas_env_now": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
        "openblas_env_removed_by_reexec": json.loads(removed) if removed else {},
    }
