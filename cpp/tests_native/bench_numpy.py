"""numpy `@` GFLOP/s at the same shapes as `gemm_test bench` (run in the same session to compare).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 cpp/tests_native/bench_numpy.py
"""
import os
import sys
import time

import numpy as np

SHAPES = [  # name, ta, tb, m, n, k  (same list as gemm_test.cpp)
    ("fwd1 X.W1", 0, 0, 128, 512, 784), ("dW1 X^T.dZ", 1, 0, 784, 512, 128),
    ("dX1 dZ.W1^T", 0, 1, 128, 784, 512), ("fwd2 H.W2", 0, 0, 128, 10, 512),
    ("dW2 H^T.dZ", 1, 0, 512, 10, 128), ("dH dZ.W2^T", 0, 1, 128, 512, 10),
    ("b1 x.W1", 0, 0, 1, 512, 784), ("b10 X.W1", 0, 0, 10, 512, 784),
    ("b10 dX dZ.W1^T", 0, 1, 10, 784, 512), ("b32 X.W1", 0, 0, 32, 512, 784),
    ("b32 dW1", 1, 0, 784, 512, 32), ("sq 1024", 0, 0, 1024, 1024, 1024),
]


def gflops(dtype, ta, tb, m, n, k, reps):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    out = np.empty((m, n), dtype)
    for _ in range(3):
        np.matmul(opa, opb, out=out)
    flops = 2.0 * m * n * k
    inner = max(1, int(2e8 / flops))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            np.matmul(opa, opb, out=out)
        times.append((time.perf_counter() - t0) / inner)
    # median; LAMINA_BENCH_BEST=1 takes the fastest repeat, like gemm_test bench
    t = min(times) if os.environ.get("LAMINA_BENCH_BEST") else sorted(times)[len(times) // 2]
    return flops / t * 1e-9


reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
print(f"numpy {np.__version__}")
print(f"{'shape':18s} ta tb     m     n     k  f32 GF/s  f64 GF/s")
for name, ta, tb, m, n, k in SHAPES:
    print(f"{name:18s} {ta:2d} {tb:2d} {m:5d} {n:5d} {k:5d} "
          f"{gflops(np.float32, ta, tb, m, n, k, reps):9.1f} {gflops(np.float64, ta, tb, m, n, k, reps):9.1f}")
