"""The small-batch rank-n kernel (x^T dz for batches of <= 16 rows, used by the fused update)
against numpy float64, on both dispatch paths, and the m = 1 row-vector GEMM's zero skipping."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lamina import _core

DTYPES = (np.float32, np.float64)
# (samples, inputs, units): units around the 8 / 64 (float) and 4 / 32 (double) register widths.
SHAPES = [(1, 1, 1), (1, 784, 512), (2, 3, 7), (3, 5, 8), (16, 9, 63), (10, 4, 64), (7, 6, 65),
          (5, 11, 129), (16, 17, 10), (13, 2, 33)]


def _sparse(rng, shape, dtype, zero_fraction=0.5):
    a = rng.standard_normal(shape)
    a[rng.random(shape) < zero_fraction] = 0.0
    return a.astype(dtype)


def _check(g, x, dz):
    x64, dz64 = x.astype(np.float64), dz.astype(np.float64)
    bound = np.abs(x64).T @ np.abs(dz64)
    eps = np.finfo(g.dtype).eps
    err = np.abs(g - x64.T @ dz64)
    assert np.all(err <= (x.shape[0] + 1) * eps * bound), err.max()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n,inputs,units", SHAPES)
def test_rank_update_is_x_transposed_dz_with_zero_inputs_skipped(n, inputs, units, dtype, rng):
    x = _sparse(rng, (n, inputs), dtype)
    x[:, 0] = 0.0  # a column of zeros: its row of g is exactly zero
    dz = rng.standard_normal((n, units)).astype(dtype)
    g = _core.rank_update(x, dz)
    assert g.dtype == dtype and g.shape == (inputs, units)
    _check(g, x, dz)
    assert not g[0].any()


def test_rank_update_sums_samples_in_order_so_one_sample_is_an_exact_outer_product(rng):
    x = rng.standard_normal((1, 33)).astype(np.float32)
    dz = rng.standard_normal((1, 77)).astype(np.float32)
    np.testing.assert_array_equal(_core.rank_update(x, dz), np.outer(x[0], dz[0]))


def test_rank_update_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        _core.rank_update(np.zeros((2, 3)), np.zeros((3, 4)))


_GENERIC_SCRIPT = textwrap.dedent("""
    import numpy as np
    from lamina import _core
    assert _core.gemm_kernel_name() == "generic"
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for (n, inputs, units) in SHAPES:
            x = rng.standard_normal((n, inputs)); x[rng.random(x.shape) < 0.5] = 0
            x = x.astype(dtype)
            dz = rng.standard_normal((n, units)).astype(dtype)
            g = _core.rank_update(x, dz)
            x64, dz64 = x.astype(np.float64), dz.astype(np.float64)
            bound = np.abs(x64).T @ np.abs(dz64)
            assert np.all(np.abs(g - x64.T @ dz64) <= (n + 1) * np.finfo(dtype).eps * bound)
    print("OK")
""")


def test_portable_rank_update_twin_matches_numpy_in_a_subprocess():
    env = dict(os.environ, LAMINA_GEMM_KERNEL="generic")
    script = f"SHAPES = {SHAPES!r}\n" + _GENERIC_SCRIPT
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_row_vector_gemm_with_zero_inputs_skipped_matches_the_blocked_path_bit_for_bit(dtype, rng):
    # m = 1 takes the row-vector kernel; the same row inside a 7-row product takes the micro-kernel.
    a = _sparse(rng, (7, 300), dtype)
    b = rng.standard_normal((300, 200)).astype(dtype)
    one = np.zeros((1, 200), dtype=dtype)
    _core.gemm(False, False, 1.0, a[:1], b, 0.0, one)
    many = np.zeros((7, 200), dtype=dtype)
    _core.gemm(False, False, 1.0, a, b, 0.0, many)
    np.testing.assert_array_equal(one[0], many[0])


_BITS_SCRIPT = textwrap.dedent("""
    import hashlib
    import numpy as np
    from lamina import _core
    rng = np.random.default_rng(9)
    digest = hashlib.sha256()
    for dtype in (np.float32, np.float64):
        for (n, inputs, units) in SHAPES:
            x = rng.standard_normal((n, inputs)); x[rng.random(x.shape) < 0.5] = 0
            x[rng.random(x.shape) < 0.1] = -0.0  # a skipped -0 input keeps the sign of a zero sum
            dz = rng.standard_normal((n, units))
            dz[rng.random(dz.shape) < 0.1] = 0.0
            digest.update(_core.rank_update(x.astype(dtype), dz.astype(dtype)).tobytes())
    print(_core.gemm_kernel_name(), digest.hexdigest())
""")


def test_rank_update_gives_the_same_bits_on_every_kernel_table_of_this_cpu():
    # Two rows at a time sharing dz (AVX-512) or one (AVX2, portable): each element's products
    # and sums are the same, so training steps give the same bits on every table.
    shapes = SHAPES + [(10, 40, 512), (16, 33, 300), (2, 5, 129)]
    digests = {}
    for kernel in _core.gemm_kernels_available():
        env = dict(os.environ, LAMINA_GEMM_KERNEL=kernel)
        script = f"SHAPES = {shapes!r}\n" + _BITS_SCRIPT
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        name, digest = done.stdout.split()
        assert name == kernel
        digests[kernel] = digest
    assert len(set(digests.values())) == 1, digests
