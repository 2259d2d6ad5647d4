"""GEMM GFLOP/s: lamina._core.gemm vs numpy (OpenBLAS) at the training shapes of the
784-512-10 MLP at batch 128, float32 and float64, and numpy's float32 peak at 1024³. Each
contender runs in its own process (worker.py); run.py alternates them.

Both sides compute the same product into a preallocated C with beta = 0:
``gemm(ta, tb, 1, a, b, 0, c)`` vs ``np.matmul(op(a), op(b), out=c)`` where ``op`` is a
transposed *view* (``a.T``), so numpy hands the transpose flag to BLAS as lamina gets it.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

BATCH = 128

# (label, trans_a, trans_b, m, n, k): C(m×n) = op(A)(m×k) · op(B)(k×n)
SHAPES: List[Tuple[str, bool, bool, int, int, int]] = [
    ("L1 fwd  X·W1", False, False, BATCH, 512, 784),
    ("L1 dW   Xᵀ·dZ1", True, False, 784, 512, BATCH),
    ("L1 dX   dZ1·W1ᵀ", False, True, BATCH, 784, 512),
    ("L2 fwd  H·W2", False, False, BATCH, 10, 512),
    ("L2 dW   Hᵀ·dZ2", True, False, 512, 10, BATCH),
    ("L2 dX   dZ2·W2ᵀ", False, True, BATCH, 512, 10),
]


def _operands(ta: bool, tb: bool, m: int, n: int, k: int, dtype: Any, rng: np.random.Generator):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b, np.zeros((m, n), dtype=dtype)


def _rate(call: Callable[[], Any], flops: float, min_seconds: float) -> float:
    """GFLOP/s of ``call`` over a batch of calls that takes at least ``min_seconds``."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return flops * calls / elapsed / 1e9
        calls = max(calls * 2, int(calls * min_seconds / max(elapsed, 1e-9) * 1.2))


# The machine's practical GEMM limit, the denominator of the "fraction of the arithmetic limit".
PEAK = ("peak    1024³", False, False, 1024, 1024, 1024)
DTYPES = {"float32": np.float32, "float64": np.float64}


def cases(only_peak: bool = False, dtypes: Tuple[str, ...] = tuple(DTYPES)) -> List[Tuple[str, str]]:
    """(dtype name, shape label) of every measurement, the float32 peak first."""
    if only_peak:
        return [("float32", PEAK[0])]
    return [("float32", PEAK[0])] + [(d, s[0]) for d in dtypes for s in SHAPES]


def shape(label: str) -> Tuple[str, bool, bool, int, int, int]:
    return next(s for s in SHAPES + [PEAK] if s[0] == label)


def measurer(contender: str, dtype_name: str, label: str, min_seconds: float) -> Tuple[Callable[[], float], Dict[str, Any]]:
    """One contender's GFLOP/s at one shape, for its own process (worker.py): lamina's
    ``_core.gemm`` or numpy's ``matmul``. lamina's side checks its result against numpy's once,
    before timing."""
    _, ta, tb, m, n, k = shape(label)
    dtype = DTYPES[dtype_name]
    a, b, c = _operands(ta, tb, m, n, k, dtype, np.random.default_rng(0))
    op_a, op_b = (a.T if ta else a), (b.T if tb else b)
    if contender == "numpy":
        call = functools.partial(np.matmul, op_a, op_b, out=c)
        info: Dict[str, Any] = {}
    else:
        from lamina import _core
        call = functools.partial(_core.gemm, ta, tb, 1.0, a, b, 0.0, c)
        call()
        ref = np.matmul(op_a, op_b)
        tol = 1e-3 if dtype == np.float32 else 1e-10
        info = {"results_agree": float(np.abs(c - ref).max()) / (float(np.abs(ref).max()) or 1.0) <= tol}
        # numpy's reference product leaves OpenBLAS's threads spinning for a while, taking the
        # second core from lamina's first measurements: let them go to sleep first.
        time.sleep(0.5)
    call()  # warm up: packing buffers, BLAS threads
    return functools.partial(_rate, call, 2.0 * m * n * k, min_seconds), info
