"""Every GEMM kernel table this CPU has (avx512, avx2, generic), forced with LAMINA_GEMM_KERNEL in
its own process: each against the naive twin on every path and tile edge (and its rank-n update
against float64), each bit-identical across thread counts and batch sizes, avx512 and avx2
bit-identical to each other, and a bad LAMINA_GEMM_KERNEL refused with a clear message."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lamina as lm
from lamina import _core

KERNELS = ("avx512", "avx2", "generic")
AVAILABLE = _core.gemm_kernels_available()

# Runs under one forced kernel: argv = [kernel, output .npz]. Prints "OK <worst error / bound>".
_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import lamina as lm
    from lamina import _core

    kernel, out = sys.argv[1], sys.argv[2]
    assert _core.gemm_kernel_name() == kernel, _core.gemm_kernel_name()
    assert lm.build_info()["gemm_kernel"] == kernel
    rng = np.random.default_rng(11)
    results, worst = {}, 0.0
    # (m, n, k): the small-m paths (m <= 16), the narrow path (n <= 16), the dot path (m <= 16,
    # B transposed), the transpose trick, the blocked paths with both splits, around the tiles of
    # both kernel families (MR 6 / 12, NR 8 / 16 / 32) and the depth blocks (KC 256).
    shapes = [(1, 1, 1), (1, 100, 70), (5, 33, 17), (12, 32, 16), (13, 31, 33), (16, 65, 300),
              (11, 8, 257), (17, 10, 513), (130, 16, 40), (300, 1, 40), (25, 47, 19), (36, 33, 256),
              (128, 100, 257), (145, 70, 60), (300, 95, 130), (64, 5, 40), (70, 13, 300)]
    for dtype in (np.float32, np.float64):
        eps = np.finfo(dtype).eps
        for (m, n, k) in shapes:
            for ta in (False, True):
                for tb in (False, True):
                    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                    if m > 16 and (m + n) % 2:  # image-like zeros: zero-step skipping and sparse rows
                        a[rng.random(a.shape) < 0.6] = 0
                    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    A = a.astype(np.float64).T if ta else a.astype(np.float64)
                    B = b.astype(np.float64).T if tb else b.astype(np.float64)
                    for alpha, beta in ((1.0, 0.0), (0.5, -2.0)):
                        want = alpha * (A @ B) + beta * c0
                        bound = abs(alpha) * (np.abs(A) @ np.abs(B)) + abs(beta) * np.abs(c0)
                        got, naive = c0.copy(), c0.copy()
                        if beta == 0.0:
                            got[:] = np.nan  # beta = 0 never reads C
                        _core.gemm(ta, tb, alpha, a, b, beta, got)
                        _core.gemm_naive(ta, tb, alpha, a, b, beta, naive)
                        for c in (got, naive):
                            worst = max(worst, float((np.abs(c - want) / ((k + 2) * eps * bound + 1e-300)).max()))
                        plan = _core.gemm_plan(ta, tb, alpha, a, b, beta, c0.copy())
                        assert plan["kernel"] == kernel, plan
                        results[f"{np.dtype(dtype).name}-{m}x{n}x{k}-{int(ta)}{int(tb)}-{alpha}"] = got
    # The table's rank-n update (x^T dz of a small batch, half the inputs zero) against float64.
    for dtype in (np.float32, np.float64):
        for (n, inputs, units) in [(1, 5, 70), (2, 3, 7), (7, 6, 65), (16, 9, 130)]:
            x = rng.standard_normal((n, inputs))
            x[rng.random(x.shape) < 0.5] = 0
            x = x.astype(dtype)
            dz = rng.standard_normal((n, units)).astype(dtype)
            g = _core.rank_update(x, dz)
            bound = np.abs(x.astype(np.float64)).T @ np.abs(dz.astype(np.float64))
            err = np.abs(g - x.astype(np.float64).T @ dz.astype(np.float64))
            worst = max(worst, float((err / ((n + 1) * np.finfo(dtype).eps * bound + 1e-300)).max()))
            results[f"rank-{np.dtype(dtype).name}-{n}x{inputs}x{units}"] = g
    # Thread counts: the same bits (blocked paths with both splits, sparse rows, narrow).
    for (m, n, k, zeros) in [(128, 200, 300, 0.0), (700, 96, 120, 0.0), (515, 130, 300, 0.6), (260, 10, 90, 0.0)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        a[rng.random(a.shape) < zeros] = 0
        b = rng.standard_normal((k, n)).astype(np.float32)
        runs = []
        for threads in (1, 2, 3):
            lm.set_num_threads(threads)
            c = np.zeros((m, n), np.float32)
            _core.gemm(False, False, 1.0, a, b, 0.0, c)
            runs.append(c)
        assert all((r == runs[0]).all() for r in runs), f"thread counts differ at {m}x{n}x{k}"
    lm.set_num_threads(2)
    # Batch invariance of the forward product X W: a row gets the same bits in any batch.
    for zeros in (0.0, 0.6):
        for (n, k) in [(10, 512), (70, 255), (200, 513)]:
            x = rng.standard_normal((300, k)).astype(np.float32)
            x[rng.random(x.shape) < zeros] = 0
            w = rng.standard_normal((k, n)).astype(np.float32)
            full = np.zeros((300, n), np.float32)
            _core.gemm(False, False, 1.0, x, w, 0.0, full)
            for rows in (1, 5, 12, 13, 29, 150):
                part = np.zeros((rows, n), np.float32)
                _core.gemm(False, False, 1.0, x[7:7 + rows], w, 0.0, part)
                assert (part == full[7:7 + rows]).all(), f"batch {rows} differs, n={n} k={k} zeros={zeros}"
    np.savez(out, **results)
    print("OK", worst)
""")


def _run(kernel, tmp_path):
    out = tmp_path / f"{kernel}.npz"
    env = dict(os.environ, LAMINA_GEMM_KERNEL=kernel, OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _SCRIPT, kernel, str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    status, worst = done.stdout.split()
    assert status == "OK"
    return float(worst), out


def _require(kernel):
    if kernel not in AVAILABLE:
        pytest.skip(f"this CPU or build has no {kernel} kernels (available: {', '.join(AVAILABLE)})")


@pytest.mark.parametrize("kernel", KERNELS)
def test_each_kernel_matches_the_naive_twin_and_keeps_its_bits_across_threads_and_batches(kernel, tmp_path):
    _require(kernel)
    worst, _ = _run(kernel, tmp_path)
    assert worst <= 1.0, f"{kernel}: error {worst:.2f}x the (k + 2) ulp bound"


def test_avx512_and_avx2_kernels_give_the_same_bits_on_every_path(tmp_path):
    # Same depth blocks, the same FMA chain per element, the same alpha/beta steps: the tile
    # shape (6 x 16 / 12 x 32) and the vector width change no element's arithmetic.
    _require("avx512")
    _require("avx2")
    _, wide = _run("avx512", tmp_path)
    _, narrow = _run("avx2", tmp_path)
    with np.load(wide) as a, np.load(narrow) as b:
        assert sorted(a.files) == sorted(b.files)
        differ = [name for name in a.files if not np.array_equal(a[name], b[name], equal_nan=True)]
    assert not differ, f"avx512 and avx2 differ at {differ[:5]}"


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_default_kernel_is_the_best_the_cpu_has():
    assert AVAILABLE[-1] == "generic" and set(AVAILABLE) <= set(KERNELS)
    if "LAMINA_GEMM_KERNEL" not in os.environ:
        assert _core.gemm_kernel_name() == AVAILABLE[0]
        assert lm.build_info()["gemm_kernel"] == AVAILABLE[0]
    flags = _cpu_flags()
    if flags is not None and sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        assert ("avx2" in AVAILABLE) == ({"avx2", "fma"} <= flags)
        # A build without the AVX-512 translation unit (an old compiler) lists no avx512 at all.
        if "avx512" in AVAILABLE:
            assert {"avx512f", "avx512vl", "avx2", "fma"} <= flags


def _import_with(value):
    env = dict(os.environ, LAMINA_GEMM_KERNEL=value)
    return subprocess.run([sys.executable, "-c", "import lamina"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_unknown_kernel_name_fails_the_import_naming_the_value_and_the_choices():
    done = _import_with("avx1024")
    assert done.returncode != 0
    assert "LAMINA_GEMM_KERNEL must be one of avx512, avx2, generic (or unset), received 'avx1024'" in done.stderr


@pytest.mark.parametrize("kernel", ("avx512", "avx2"))  # generic runs everywhere
def test_forcing_a_kernel_the_cpu_lacks_fails_the_import_listing_what_is_available(kernel):
    if kernel in AVAILABLE:
        pytest.skip(f"this CPU has the {kernel} kernels")
    done = _import_with(kernel)
    assert done.returncode != 0
    assert f"LAMINA_GEMM_KERNEL={kernel}, but this CPU or build cannot run it" in done.stderr
    assert ", ".join(AVAILABLE) in done.stderr
