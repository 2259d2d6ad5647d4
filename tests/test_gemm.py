"""gemm (packed, blocked, threaded) against its naive twin and against numpy in float64."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lamina import _core

DTYPES = (np.float32, np.float64)
TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]
# (m, n, k): ones, primes, and sizes just around the micro-tile (6, 8, 16) and cache-block
# (MC=72/144, KC=256) edges, including the small-m path (m <= 16) and the blocked one.
SHAPES = [
    (1, 1, 1), (1, 7, 5), (7, 1, 3), (3, 5, 1), (2, 3, 13),
    (5, 16, 17), (6, 17, 15), (7, 15, 16), (16, 33, 31), (17, 16, 7),
    (143, 17, 255), (144, 145, 256), (145, 31, 257), (71, 73, 255), (255, 9, 145), (37, 257, 41),
]


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def _reference(ta, tb, alpha, a, b, beta, c):
    A = a.astype(np.float64).T if ta else a.astype(np.float64)
    B = b.astype(np.float64).T if tb else b.astype(np.float64)
    C = c.astype(np.float64)
    want = alpha * (A @ B) + (beta * C if beta != 0 else 0.0)
    # A bound that holds for any summation order: (k + 2) ulps of the magnitudes involved.
    bound = abs(alpha) * (np.abs(A) @ np.abs(B)) + (abs(beta) * np.abs(C) if beta != 0 else 0.0)
    return want, bound


def _assert_within(got, want, bound, k, dtype):
    eps = np.finfo(dtype).eps
    err = np.abs(got.astype(np.float64) - want)
    limit = (k + 2) * eps * bound + np.finfo(dtype).tiny
    assert np.all(err <= limit), f"max error {err.max():.3e}, worst ratio {(err / limit).max():.2f}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_gemm_matches_numpy_and_naive_twin_for_every_transpose(m, n, k, ta, tb, dtype):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a, b, c = _operands(rng, m, n, k, ta, tb, dtype)
    alpha, beta = -0.75, 1.25
    want, bound = _reference(ta, tb, alpha, a, b, beta, c)
    fast, naive = c.copy(), c.copy()
    _core.gemm(ta, tb, alpha, a, b, beta, fast)
    _core.gemm_naive(ta, tb, alpha, a, b, beta, naive)
    assert fast.dtype == dtype
    _assert_within(fast, want, bound, k, dtype)
    _assert_within(naive, want, bound, k, dtype)
    # The twins differ at most by rounding: twice the bound of one against the exact result.
    assert np.all(np.abs(fast.astype(np.float64) - naive) <= 2 * (k + 2) * np.finfo(dtype).eps * bound
                  + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,n,k", [(5, 7, 3), (17, 16, 15), (150, 40, 260)])
def test_gemm_with_beta_zero_never_reads_a_nan_filled_c(m, n, k, ta, tb, dtype, rng):
    a, b, _ = _operands(rng, m, n, k, ta, tb, dtype)
    for fn in (_core.gemm, _core.gemm_naive):
        c = np.full((m, n), np.nan, dtype=dtype)
        fn(ta, tb, 2.0, a, b, 0.0, c)
        assert np.all(np.isfinite(c)), f"{fn.__name__} propagated NaN from C with beta=0"
        want, bound = _reference(ta, tb, 2.0, a, b, 0.0, np.zeros((m, n)))
        _assert_within(c, want, bound, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (-2.5, 0.5)])
def test_gemm_alpha_beta_combinations_match_numpy(alpha, beta, dtype, rng):
    m, n, k = 23, 19, 29
    a, b, c = _operands(rng, m, n, k, False, False, dtype)
    want, bound = _reference(False, False, alpha, a, b, beta, c)
    got = c.copy()
    _core.gemm(False, False, alpha, a, b, beta, got)
    _assert_within(got, want, bound, k, dtype)
    if alpha == 0.0 and beta == 1.0:
        np.testing.assert_array_equal(got, c)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,n,k", [(7, 9, 5), (145, 33, 257), (13, 150, 20)])
def test_gemm_honours_odd_leading_dimensions_of_sliced_operands(m, n, k, ta, tb, dtype, rng):
    ashape = (k, m) if ta else (m, k)
    bshape = (n, k) if tb else (k, n)
    big_a = rng.standard_normal((ashape[0] + 2, ashape[1] + 5)).astype(dtype)
    big_b = rng.standard_normal((bshape[0] + 1, bshape[1] + 3)).astype(dtype)
    big_c = rng.standard_normal((m + 4, n + 7)).astype(dtype)
    a = big_a[1:1 + ashape[0], 2:2 + ashape[1]]
    b = big_b[:bshape[0], :bshape[1]]
    c_before = big_c.copy()
    want, bound = _reference(ta, tb, 1.5, a, b, -0.5, big_c[:m, :n])
    for fn in (_core.gemm, _core.gemm_naive):
        big = c_before.copy()
        fn(ta, tb, 1.5, a, b, -0.5, big[:m, :n])
        _assert_within(big[:m, :n], want, bound, k, dtype)
        # Nothing outside the C window is touched.
        np.testing.assert_array_equal(big[m:, :], c_before[m:, :])
        np.testing.assert_array_equal(big[:, n:], c_before[:, n:])


def test_gemm_rejects_mismatched_shapes_and_mixed_dtypes():
    a = np.ones((3, 4))
    b = np.ones((5, 2))
    c = np.zeros((3, 2))
    with pytest.raises(ValueError, match="inner dimensions"):
        _core.gemm(False, False, 1.0, a, b, 0.0, c)
    with pytest.raises(ValueError, match="c must have shape"):
        _core.gemm(False, False, 1.0, a, np.ones((4, 2)), 0.0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="same float dtype"):
        _core.gemm(False, False, 1.0, a.astype(np.float32), np.ones((4, 2)), 0.0, c)
    with pytest.raises(ValueError, match="unit stride"):
        _core.gemm(False, False, 1.0, np.ones((3, 8))[:, ::2], np.ones((4, 2)), 0.0, c)


def _cpu_has_avx2_fma():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def test_default_dispatch_picks_the_avx2_kernel_when_the_cpu_has_it():
    name = _core.gemm_kernel_name()
    assert isinstance(name, str) and name
    if os.environ.get("LAMINA_GEMM_KERNEL") == "generic":
        assert name == "generic"
    elif _cpu_has_avx2_fma() and sys.platform.startswith("linux"):
        assert name != "generic"


_GENERIC_SCRIPT = textwrap.dedent("""
    import numpy as np
    from lamina import _core
    assert _core.gemm_kernel_name() == "generic", _core.gemm_kernel_name()
    rng = np.random.default_rng(7)
    worst = 0.0
    for dtype in (np.float32, np.float64):
        eps = np.finfo(dtype).eps
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (6, 8, 16), (17, 15, 33), (73, 9, 257), (145, 70, 60), (300, 70, 200)]:
            for ta in (False, True):
                for tb in (False, True):
                    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                    if m > 16:  # sparse, so the blocked paths' zero-step skipping runs too
                        a[rng.random(a.shape) < 0.8] = 0
                    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                    A = a.astype(np.float64).T if ta else a.astype(np.float64)
                    B = b.astype(np.float64).T if tb else b.astype(np.float64)
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    want = 0.5 * (A @ B) - 2.0 * c0
                    bound = 0.5 * (np.abs(A) @ np.abs(B)) + 2.0 * np.abs(c0)
                    for fn in (_core.gemm, _core.gemm_naive):
                        c = c0.copy()
                        fn(ta, tb, 0.5, a, b, -2.0, c)
                        ratio = (np.abs(c - want) / ((k + 2) * eps * bound + 1e-300)).max()
                        worst = max(worst, ratio)
                    c = np.full((m, n), np.nan, dtype=dtype)
                    _core.gemm(ta, tb, 1.0, a, b, 0.0, c)
                    assert np.isfinite(c).all(), "NaN leaked with beta=0"
                    if m > 16:  # alpha 1, beta 0: the sparse-row path for 145 mostly-zero rows
                        ratio = (np.abs(c - A @ B) / ((k + 2) * eps * (np.abs(A) @ np.abs(B)) + 1e-300)).max()
                        worst = max(worst, ratio)
    print("OK", worst)
""")


def test_forced_generic_kernel_is_selected_and_matches_numpy_in_a_subprocess():
    env = dict(os.environ, LAMINA_GEMM_KERNEL="generic", OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _GENERIC_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    status, worst = done.stdout.split()
    assert status == "OK"
    assert float(worst) <= 1.0


def test_gemm_matches_numpy_on_random_shapes_transposes_and_scalars():
    rng = np.random.default_rng(2024)
    for trial in range(24):
        m, n, k = (int(v) for v in rng.integers(1, 300, 3))
        ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
        dtype = DTYPES[trial % 2]
        alpha, beta = float(rng.uniform(-2, 2)), float(rng.choice([0.0, 1.0, rng.uniform(-2, 2)]))
        a, b, c = _operands(rng, m, n, k, ta, tb, dtype)
        want, bound = _reference(ta, tb, alpha, a, b, beta, c)
        got = c.copy()
        _core.gemm(ta, tb, alpha, a, b, beta, got)
        _assert_within(got, want, bound, k, dtype)


# --- sparse A: the blocked paths skip depth steps that are zero in a whole packed panel --------

def _sparse_a(rng, m, k, ta, dtype):
    """op(A) (m, k) with image-like zeros: some depth columns zero everywhere, others zero for
    runs of rows (whole 6-row panels and partial ones), plus scattered zeros."""
    A = rng.standard_normal((m, k))
    A[:, rng.random(k) < 0.2] = 0.0
    for _ in range(max(1, m // 4)):
        i0, p0 = int(rng.integers(0, m)), int(rng.integers(0, k))
        A[i0:i0 + int(rng.integers(1, 14)), p0:p0 + int(rng.integers(1, 40))] = 0.0
    A[rng.random((m, k)) < 0.3] = 0.0
    A = A.astype(dtype)
    return np.ascontiguousarray(A.T) if ta else A


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,n,k", [(17, 16, 7), (143, 17, 255), (145, 31, 257), (300, 40, 520), (37, 257, 41)])
def test_gemm_with_sparse_a_skips_zero_steps_and_matches_the_naive_twin(m, n, k, ta, tb, dtype, rng):
    a = _sparse_a(rng, m, k, ta, dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    for beta in (0.0, 0.5):
        c = rng.standard_normal((m, n)).astype(dtype)
        want, bound = _reference(ta, tb, 1.5, a, b, beta, c)
        got, naive = c.copy(), c.copy()
        if beta == 0.0:
            got[:] = np.nan  # beta = 0 must not read C
        _core.gemm(ta, tb, 1.5, a, b, beta, got)
        _core.gemm_naive(ta, tb, 1.5, a, b, beta, naive)
        _assert_within(got, want, bound, k, dtype)
        _assert_within(naive, want, bound, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_skipping_zero_steps_gives_the_same_bits_as_the_dense_kernel(dtype, rng):
    # 48 rows take the blocked path, which compacts each 6-row panel to its nonzero steps; the
    # first 6 rows alone take the small-m path, which runs the dense kernel over every step.
    # With one depth block (k <= KC) both sum each element in the same order. (alpha 2 keeps
    # the 48 rows off the sparse-row path, which plain products of sparse A take.)
    m, n, k = 48, 64, 250
    a = _sparse_a(rng, m, k, False, dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    blocked, small = np.zeros((m, n), dtype), np.zeros((6, n), dtype)
    _core.gemm(False, False, 2.0, a, b, 0.0, blocked)
    _core.gemm(False, False, 2.0, a[:6], b, 0.0, small)
    assert ((a[:6] == 0).all(axis=0)).any()  # the first panel does have zero steps
    np.testing.assert_array_equal(blocked[:6], small)
    a_zero = np.zeros((m, k), dtype)  # every step skipped: C = 0 (beta = 0, NaN never read)
    c = np.full((m, n), np.nan, dtype)
    _core.gemm(False, False, 1.0, a_zero, b, 0.0, c)
    assert not c.any()


# --- sparse rows: a mostly-zero op(A) in a plain product is computed row by row from each row's
# nonzeros (Dense forward on images). Taken for alpha 1, beta 0, A untransposed, >= 8 rows,
# >= 64 columns (32 for doubles) and at most 60% nonzeros in a sample of rows.

def _mostly_zero_a(rng, m, k, dtype, density=0.35):
    a = rng.standard_normal((m, k))
    a[rng.random((m, k)) >= density] = 0.0
    a[3] = 0.0                      # an all-zero row
    a[5, : min(k, 40)] = 1.25       # a row dense in its first depth block
    return a.astype(dtype)


def _takes_the_sparse_row_path(m, n, k, tb, dtype):
    """Probe: an infinite weight met by one nonzero input. Only the sparse-row path leaves the
    other rows of that 6-row panel finite (the blocked paths keep the step for the whole panel
    and add 0 * inf = NaN to them)."""
    a = np.zeros((m, k), dtype)
    a[:, 1::3] = 0.5                # a third nonzero: sparse enough to be taken
    a[:, 0] = 0.0
    a[0, 0] = 2.0
    b = np.ones((k, n), dtype)
    b[0, 0] = np.inf
    c = np.zeros((m, n), dtype)
    _core.gemm(False, tb, 1.0, a, np.ascontiguousarray(b.T) if tb else b, 0.0, c)
    return bool(np.isinf(c[0, 0]) and np.isfinite(c[1:]).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("tb", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("m,n,k", [(8, 64, 64), (17, 70, 97), (129, 130, 200), (257, 65, 785), (600, 520, 130),
                                   (40, 64, 20000)])
def test_gemm_sparse_rows_match_numpy_and_the_naive_twin(m, n, k, tb, dtype, rng):
    # Rows past the 256-row chunk, 64-column (32 for doubles) panels with a ragged last one, one
    # panel shared by threads (64 floats), depth blocks of up to 96 with a ragged last one, and
    # a wide input whose lists cap the chunk at a few rows.
    assert _takes_the_sparse_row_path(m, n, k, tb, dtype)
    a = _mostly_zero_a(rng, m, k, dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    got, naive = np.full((m, n), np.nan, dtype), np.zeros((m, n), dtype)
    _core.gemm(False, tb, 1.0, a, b, 0.0, got)
    _core.gemm_naive(False, tb, 1.0, a, b, 0.0, naive)
    want, bound = _reference(False, tb, 1.0, a, b, 0.0, naive)
    _assert_within(got, want, bound, k, dtype)
    _assert_within(naive, want, bound, k, dtype)
    assert not got[3].any()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_sparse_rows_honour_leading_dimensions_of_sliced_operands(dtype, rng):
    m, n, k = 150, 100, 120
    a_big = np.zeros((m, k + 13), dtype)
    a_big[:, :k] = _mostly_zero_a(rng, m, k, dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c_big = np.full((m, n + 7), 7.0, dtype)
    a, c = a_big[:, :k], c_big[:, :n]
    _core.gemm(False, False, 1.0, a, b, 0.0, c)
    want, bound = _reference(False, False, 1.0, a, b, 0.0, c)
    _assert_within(c, want, bound, k, dtype)
    assert (c_big[:, n:] == 7.0).all()  # columns past n untouched


def test_the_sparse_row_probe_tells_the_paths_apart():
    assert _takes_the_sparse_row_path(64, 64, 50, False, np.float32)
    assert not _takes_the_sparse_row_path(64, 16, 50, False, np.float32)  # n < 64: blocked path
    assert not _takes_the_sparse_row_path(4, 64, 50, False, np.float32)   # m < 8: small-m path


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_sparse_rows_skip_every_zero_of_a_row_not_only_those_shared_by_a_panel(dtype, rng):
    # An infinite weight met by a single nonzero input: only that row sees it. The blocked paths
    # would keep the step for its whole 6-row panel and give 0 * inf = NaN to the neighbours;
    # the sparse-row path leaves them finite (the skipping documented in gemm.h).
    m, n, k = 200, 64, 100
    a = _mostly_zero_a(rng, m, k, dtype)
    a[:, 7] = 0.0
    a[10, 7] = 2.0
    b = rng.standard_normal((k, n)).astype(dtype)
    b[7, 5] = np.inf
    c = np.zeros((m, n), dtype)
    _core.gemm(False, False, 1.0, a, b, 0.0, c)
    assert np.isposinf(c[10, 5]) or np.isneginf(c[10, 5])
    others = np.delete(c, 10, axis=0)
    assert np.isfinite(others).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_sparse_rows_carry_nan_and_inf_inputs_to_their_row(dtype, rng):
    # In the vectorized part of a depth block's list, in its scalar tail (k = 90 -> blocks of 90:
    # entry 89 is past the last whole vector), and inf met by a zero weight (0 * inf = NaN).
    m, n, k = 160, 70, 90
    a = _mostly_zero_a(rng, m, k, dtype)
    a[20, 33] = np.nan
    a[40, k - 1] = np.nan
    a[60, 50] = np.inf
    b = rng.standard_normal((k, n)).astype(dtype)
    b[50, :] = 0.0
    c = np.zeros((m, n), dtype)
    _core.gemm(False, False, 1.0, a, b, 0.0, c)
    for row in (20, 40, 60):
        assert np.isnan(c[row]).all(), row
    assert np.isfinite(np.delete(c, [20, 40, 60], axis=0)).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [64, 200])
def test_gemm_sparse_rows_give_the_same_bits_for_any_thread_count(n, dtype, rng):
    # n = 64 (one float panel): threads share the panel's rows; n = 200: threads take panels.
    import lamina as lm

    a = _mostly_zero_a(rng, 515, 300, dtype)
    b = rng.standard_normal((300, n)).astype(dtype)
    before = lm.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            lm.set_num_threads(threads)
            c = np.zeros((515, n), dtype)
            _core.gemm(False, False, 1.0, a, b, 0.0, c)
            results.append(c)
    finally:
        lm.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
