"""The blocked, threaded bfloat16 GEMM of mixed_bfloat16 (gemm_bf16.h), with each tile kernel this
CPU has (AMX, VDPBF16PS, the portable twin): close to the exact product of its bfloat16-rounded
operands, VDPBF16PS bit-identical to its portable twin, AMX within float32 summation error of it,
and with each element's bits independent of the thread count and of the other rows of the batch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lamina as lm
from lamina import _core

EPS32 = np.finfo(np.float32).eps


def _bf16_values(x):
    return (_core.bf16_round(np.ascontiguousarray(x, np.float32), portable=True).astype(np.uint32) << 16).view(
        np.float32)


def _operands(rng, m, n, k, ta, tb, zeros=0.3):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    a[rng.random(a.shape) < zeros] = 0.0
    return a, b


def _op(x, t):
    return x.T if t else x


# The Dense shapes (forward X W, dW = X^T dZ, dX = dZ W^T), edges of the 12 x 32 tile, odd depths
# and depths across several 256-step blocks.
# Row counts of the last tile 1-12 among them (the vector kernel has 1-, 2-, 4-, 8- and 12-row tiles).
SHAPES = [(1, 1, 1), (12, 32, 2), (13, 33, 3), (5, 70, 257), (30, 10, 784), (128, 64, 513), (40, 96, 600),
          (33, 65, 31), (2, 40, 50), (15, 33, 21), (23, 17, 9), (19, 5, 64)]
KERNELS = _core.bf16_gemm_kernels_available()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_bf16_is_the_product_of_the_bf16_rounded_operands_within_float32_summation_error(m, n, k, ta, tb,
                                                                                             kernel, rng):
    a, b = _operands(rng, m, n, k, ta, tb)
    got = _core.gemm_bf16(ta, tb, a, b, kernel=kernel)
    A, B = _op(_bf16_values(a), ta).astype(np.float64), _op(_bf16_values(b), tb).astype(np.float64)
    # Stated tolerance: a float32 chain of k terms, (k + 2) eps * sum |a_ip b_pj| (plus float32's tiny).
    bound = (k + 2) * EPS32 * (np.abs(A) @ np.abs(B)) + np.finfo(np.float32).tiny
    assert got.shape == (m, n)
    assert np.all(np.abs(got - A @ B) <= bound)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_bf16_vdpbf16ps_matches_its_portable_twin_bit_for_bit(m, n, k, ta, tb, rng):
    if "avx512_bf16" not in KERNELS:
        pytest.skip("no AVX512_BF16 here: the twin is the only kernel")
    a, b = _operands(rng, m, n, k, ta, tb)
    fast, twin = _core.gemm_bf16(ta, tb, a, b, kernel="avx512_bf16"), _core.gemm_bf16(ta, tb, a, b, kernel="portable")
    np.testing.assert_array_equal(fast.view(np.uint32), twin.view(np.uint32))


def test_the_kernel_in_use_is_the_best_available_and_amx_can_be_turned_off():
    amx_off = os.environ.get("LAMINA_BF16_AMX") == "0"
    best = [k for k in KERNELS if not (amx_off and k == "amx")][0]
    assert _core.bf16_gemm_kernel() == best == lm.build_info()["bf16_kernel"]
    assert KERNELS[-1] == "portable"
    assert (_core.bf16_gemm_kernel() == "portable") == (not _core.bf16_kernels_enabled())
    script = "from lamina import _core; print(_core.bf16_gemm_kernel())"
    for value, want in [("0", "avx512_bf16" if "avx512_bf16" in KERNELS else "portable"), ("1", KERNELS[0])]:
        done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, LAMINA_BF16_AMX=value),
                              capture_output=True, text=True, timeout=120, check=True)
        assert done.stdout.strip() == want
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, LAMINA_BF16_AMX="yes"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "LAMINA_BF16_AMX must be 0 or 1 (or unset), received 'yes'" in done.stderr


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "portable"] or ["portable"])
def test_gemm_bf16_bits_do_not_depend_on_the_thread_count(kernel, rng, restore_threads):
    for ta, tb, (m, n, k) in [(False, False, (128, 512, 784)), (True, False, (784, 512, 128)),
                              (False, True, (128, 784, 512)), (False, False, (300, 10, 512))]:
        a, b = _operands(rng, m, n, k, ta, tb)
        results = []
        for threads in (1, 2, 3):
            lm.set_num_threads(threads)
            results.append(_core.gemm_bf16(ta, tb, a, b, kernel=kernel).view(np.uint32))
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemm_bf16_gives_a_row_the_same_bits_whatever_batch_it_is_in(kernel, rng):
    a, b = _operands(rng, 257, 512, 784, False, False)
    whole = _core.gemm_bf16(False, False, a, b, kernel=kernel)
    for start, stop in [(0, 1), (5, 6), (3, 40), (100, 257), (13, 25)]:
        part = _core.gemm_bf16(False, False, np.ascontiguousarray(a[start:stop]), b, kernel=kernel)
        np.testing.assert_array_equal(part.view(np.uint32), whole[start:stop].view(np.uint32))


@pytest.mark.parametrize("kernel", KERNELS)
def test_gemm_bf16_with_an_empty_depth_is_zero(kernel):
    c = _core.gemm_bf16(False, False, np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), kernel=kernel)
    np.testing.assert_array_equal(c, np.zeros((3, 4), np.float32))


def test_gemm_bf16_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        _core.gemm_bf16(False, False, np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        _core.gemm_bf16(True, False, np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="kernel must be 'amx', 'avx512_bf16', 'portable' or None, received kernel='x'"):
        _core.gemm_bf16(False, False, np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), kernel="x")
