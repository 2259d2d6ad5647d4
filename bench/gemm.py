"""GEMM GFLOP/s: lamina._core.gemm vs numpy (OpenBLAS) at the training shapes of the
784-512-10 MLP at batch 128, float32 and float64.

Both sides compute the same product into a preallocated C with beta = 0:
``gemm(ta, tb, 1, a, b, 0, c)`` vs ``np.matmul(op(a), op(b), out=c)`` where ``op`` is a
transposed *view* (``a.T``), so numpy hands the transpose flag to BLAS as lamina gets it.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from common import alternate, median, ratio

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


def run(repeats: int, min_seconds: float) -> List[Dict[str, Any]]:
    from lamina import _core

    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        for label, ta, tb, m, n, k in SHAPES:
            a, b, c_lm = _operands(ta, tb, m, n, k, dtype, rng)
            c_np = np.zeros_like(c_lm)
            op_a = a.T if ta else a
            op_b = b.T if tb else b

            lam = functools.partial(_core.gemm, ta, tb, 1.0, a, b, 0.0, c_lm)
            npy = functools.partial(np.matmul, op_a, op_b, out=c_np)

            lam(), npy()  # warm up (packing buffers, BLAS threads) and check they agree
            tol = 1e-3 if dtype == np.float32 else 1e-10
            scale = float(np.abs(c_np).max()) or 1.0
            agree = float(np.abs(c_lm - c_np).max()) / scale <= tol
            flops = 2.0 * m * n * k
            rates = alternate({"lamina": functools.partial(_rate, lam, flops, min_seconds),
                               "numpy": functools.partial(_rate, npy, flops, min_seconds)}, repeats)
            lm_rate, np_rate = median(rates["lamina"]), median(rates["numpy"])
            rows.append({
                "shape": label, "dtype": np.dtype(dtype).name, "trans_a": ta, "trans_b": tb,
                "m": m, "n": n, "k": k, "lamina_gflops": lm_rate, "numpy_gflops": np_rate,
                "ratio": ratio(lm_rate, np_rate), "results_agree": agree,
                "lamina_all": rates["lamina"], "numpy_all": rates["numpy"],
            })
    return rows
