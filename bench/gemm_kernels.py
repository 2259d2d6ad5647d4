"""GEMM GFLOP/s of each lamina kernel table (avx512, avx2; LAMINA_GEMM_KERNEL) against numpy's
OpenBLAS, every contender in its own fresh process, side by side in one run.

    python bench/gemm_kernels.py                     # 5 rounds, the cores this process may use
    python bench/gemm_kernels.py --rounds 3 --threads 1 --json out.json
    python bench/gemm_kernels.py --baseline /path/to/main/python   # adds "base": another build's
                                                                   # default kernel (before/after)

Each round starts one process per contender (the order rotates between rounds), which times
every shape and prints its rates; a rate is the best of a few batches of calls that each last
at least --min-seconds. The table shows each contender's best rate over the rounds (its fastest
run: the least disturbed by the other users of a shared machine) with the range over rounds,
and the ratios of the best rates. The shapes: 1024^3 and the six products of the 784-512-10
MLP at batch 128 (bench/gemm.py), float32 and float64. Kernels this CPU lacks are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# (label, trans_a, trans_b, m, n, k)
SHAPES: List[Tuple[str, bool, bool, int, int, int]] = [("square 1024³", False, False, 1024, 1024, 1024)]
sys.path.insert(0, HERE)
from gemm import SHAPES as TRAINING_SHAPES  # noqa: E402  (bench/ is not a package)
from gemm import _rate as gemm_rate  # noqa: E402

SHAPES += TRAINING_SHAPES
DTYPES = ("float32", "float64")
CONTENDERS = ("avx512", "avx2", "numpy")  # and "base" with --baseline


def _rate(call: Any, flops: float, min_seconds: float, batches: int) -> float:
    """The best GFLOP/s of ``batches`` batches of back-to-back calls, each >= min_seconds."""
    return max(gemm_rate(call, flops, min_seconds) for _ in range(batches))


def _product(gemm: Any, ta: bool, tb: bool, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Callable[[], None]:
    """C = op(A) op(B) by lamina's gemm, or numpy's matmul when gemm is None."""
    if gemm is None:
        op_a, op_b = (a.T if ta else a), (b.T if tb else b)
        return lambda: np.matmul(op_a, op_b, out=c)
    return lambda: gemm(ta, tb, 1.0, a, b, 0.0, c)


def worker(contender: str, threads: int, min_seconds: float, batches: int) -> None:
    """Runs in a fresh process: times every shape with one contender, prints JSON rates."""
    rng = np.random.default_rng(0)
    if contender == "numpy":
        gemm = None
        kernel = "numpy"
    else:
        import lamina as lm
        from lamina import _core
        lm.set_num_threads(threads)
        gemm = _core.gemm
        kernel = _core.gemm_kernel_name()
    rates: Dict[str, float] = {}
    for dtype in DTYPES:
        for label, ta, tb, m, n, k in SHAPES:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            c = np.zeros((m, n), dtype)
            op_a, op_b = (a.T if ta else a), (b.T if tb else b)
            call = _product(gemm, ta, tb, a, b, c)
            call()
            rates[f"{label}|{dtype}"] = _rate(call, 2.0 * m * n * k, min_seconds, batches)
            # Checked after timing: numpy's reference product leaves OpenBLAS threads spinning
            # for ~0.1 s, which would take the second core from the next lamina measurement.
            if not np.allclose(c, op_a.astype(np.float64) @ op_b, rtol=1e-3, atol=1e-2 * np.sqrt(k)):
                raise SystemExit(f"{contender}: wrong result at {label} {dtype}")
            time.sleep(0.25)
    print(json.dumps({"contender": contender, "kernel": kernel, "rates": rates}))


def cpu_description() -> Dict[str, Any]:
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = sorted(x for x in have if x.startswith("avx") or x in ("fma", "amx_bf16", "amx_tile"))
                    break
    except OSError:
        pass
    return {"cpu": model, "flags": flags, "cores": len(os.sched_getaffinity(0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--min-seconds", type=float, default=0.05)
    parser.add_argument("--batches", type=int, default=3, help="batches per shape in a process (best taken)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--baseline", default=None,
                        help="a python/ directory holding another lamina build (e.g. main's): timed as 'base'")
    parser.add_argument("--worker", choices=CONTENDERS + ("base",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threads, args.min_seconds, args.batches)
        return

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
    from lamina import _core
    available = _core.gemm_kernels_available()
    contenders = [c for c in CONTENDERS if c == "numpy" or c in available] + (["base"] if args.baseline else [])
    machine = cpu_description()
    load0 = os.getloadavg()[0]
    runs: Dict[str, List[Dict[str, float]]] = {c: [] for c in contenders}
    kernels: Dict[str, str] = {}
    for r in range(args.rounds):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for contender in order:
            env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
            env.update(OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
            env.pop("LAMINA_GEMM_KERNEL", None)
            if contender in ("avx512", "avx2"):
                env["LAMINA_GEMM_KERNEL"] = contender
            lamina_dir = args.baseline if contender == "base" else os.path.join(os.path.dirname(HERE), "python")
            env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(lamina_dir)] + [p for p in [env.get("PYTHONPATH")] if p])
            time.sleep(0.25)  # let the previous process's threads go
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", contender,
                                  "--threads", str(args.threads), "--min-seconds", str(args.min_seconds),
                                  "--batches", str(args.batches)],
                                 env=env, capture_output=True, text=True, check=True, timeout=600).stdout
            result = json.loads(out.strip().splitlines()[-1])
            kernels[contender] = result["kernel"]
            runs[contender].append(result["rates"])
    load1 = os.getloadavg()[0]

    rows = []
    for dtype in DTYPES:
        for label, ta, tb, m, n, k in SHAPES:
            key = f"{label}|{dtype}"
            row: Dict[str, Any] = {"shape": label, "dtype": dtype, "m": m, "n": n, "k": k,
                                   "trans_a": ta, "trans_b": tb}
            for c in contenders:
                values = [run[key] for run in runs[c]]
                row[c] = {"best": max(values), "min": min(values), "all": values}
            rows.append(row)

    print(f"\nGEMM GFLOP/s, each contender in its own process, {args.rounds} rounds, {args.threads} threads")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; flags: {' '.join(machine['flags'])}")
    print("kernels: " + ", ".join(f"{c} = {kernels[c]}" for c in contenders)
          + (f" (base: {args.baseline})" if args.baseline else ""))
    print(f"load average (1 min): {load0:.2f} at start, {load1:.2f} at end (shared machine: ranges matter)")
    head = f"{'shape':<18}{'dtype':<9}{'m×n×k':>15}"
    for c in contenders:
        head += f"{c + ' best (range)':>24}"
    if "avx512" in contenders:
        head += f"{'512/numpy':>11}" + (f"{'512/avx2':>10}" if "avx2" in contenders else "")
        head += f"{'512/base':>10}" if "base" in contenders else ""
    print(head)
    for row in rows:
        line = f"{row['shape']:<18}{row['dtype']:<9}{row['m']:>5}×{row['n']}×{row['k']:<5}".ljust(42)
        for c in contenders:
            v = row[c]
            line += f"{v['best']:>9.0f} ({v['min']:.0f}-{v['best']:.0f})".rjust(24)
        if "avx512" in contenders:
            line += f"{row['avx512']['best'] / row['numpy']['best']:>11.2f}"
            if "avx2" in contenders:
                line += f"{row['avx512']['best'] / row['avx2']['best']:>10.2f}"
            if "base" in contenders:
                line += f"{row['avx512']['best'] / row['base']['best']:>10.2f}"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "threads": args.threads, "rounds": args.rounds, "kernels": kernels,
                       "baseline": args.baseline,
                       "load_avg_1min": [load0, load1], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
