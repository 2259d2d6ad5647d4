"""bfloat16 groundwork: round-to-nearest-even conversion and the VDPBF16PS micro-kernel, each
bit-identical to its portable twin (on CPUs without AVX512_BF16 both sides are the twin)."""

import numpy as np
import pytest

from lamina import _core


def _bits(values):
    return np.asarray(values, np.float32).view(np.uint32)


def _reference_round(x):
    """Independent reference: the nearest bfloat16 by float64 arithmetic, ties to the even
    pattern, past the largest finite one to infinity (as if the exponent went on); subnormal
    inputs give a signed zero (VCVTNEPS2BF16). No NaN here (tested separately)."""
    x = np.asarray(x, np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    lo, hi = u >> 16, (u >> 16) + 1                    # the two candidate patterns
    v = x.astype(np.float64)

    def value(p):
        f = (p.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        overflow = ((p & 0x7FFF) == 0x7F80) & np.isfinite(v)   # the pattern after the largest finite
        return np.where(overflow, np.copysign(2.0**128, v), f)

    with np.errstate(invalid="ignore"):
        d_lo, d_hi = np.abs(v - value(lo)), np.abs(value(hi) - v)
    pick = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    pick = np.where(np.isinf(v), lo, pick)
    pick = np.where((u & 0x7F800000) == 0, (u & 0x80000000) >> 16, pick)
    return pick.astype(np.uint16)


def _awkward_floats(rng, n):
    """Every exponent, both signs, exact ties, subnormals, zeros, the largest floats, infinities."""
    u = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, n // 4, dtype=np.uint64).astype(np.uint32) << 16) | 0x8000
    special = _bits([0.0, -0.0, 1e-40, -1e-40, 1.17e-38, 3.4028235e38, -3.4028235e38, np.inf, -np.inf,
                     1.0, 1.00390625, 1.01171875, 65504.0])
    x = np.concatenate([u, ties, special]).view(np.float32)
    return x[~np.isnan(x)]


def test_portable_bf16_round_is_round_to_nearest_even_with_subnormals_to_signed_zero(rng):
    x = _awkward_floats(rng, 200_000)
    got = _core.bf16_round(x, portable=True)
    np.testing.assert_array_equal(got, _reference_round(x))
    assert _core.bf16_round(np.float32([1.00390625]), portable=True)[0] == 0x3F80  # tie to even: down
    assert _core.bf16_round(np.float32([1.01171875]), portable=True)[0] == 0x3F82  # tie to even: up
    assert list(_core.bf16_round(np.float32([1e-40, -1e-40]), portable=True)) == [0x0000, 0x8000]
    assert _core.bf16_round(np.float32([3.4028235e38]), portable=True)[0] == 0x7F80  # rounds to inf


def test_bf16_round_keeps_nan_a_quiet_nan_with_its_sign():
    x = np.array([0x7F800001, 0xFF800001, 0x7FC00000, 0x7FA5A5A5], np.uint32).view(np.float32)
    for portable in (True, False):
        got = _core.bf16_round(x, portable=portable)
        assert list(got) == [0x7FC0, 0xFFC0, 0x7FC0, 0x7FE5], (portable, [hex(v) for v in got])


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000, 4099])
def test_bf16_round_kernel_matches_the_portable_twin_bit_for_bit(n, rng):
    x = _awkward_floats(rng, 4 * n)[: n] if n else np.zeros(0, np.float32)
    np.testing.assert_array_equal(_core.bf16_round(x), _core.bf16_round(x, portable=True))


def _bf16_values(x):
    return (_core.bf16_round(np.ascontiguousarray(x, np.float32), portable=True).astype(np.uint32) << 16).view(
        np.float32)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (12, 32, 2), (13, 33, 3), (5, 70, 257), (30, 10, 784), (25, 64, 512)])
def test_bf16_gemm_kernel_matches_the_portable_twin_bit_for_bit(m, n, k, rng):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = 0.0
    fast, twin = _core.bf16_gemm(a, b), _core.bf16_gemm(a, b, portable=True)
    np.testing.assert_array_equal(fast.view(np.uint32), twin.view(np.uint32))
    # Within float32 accumulation error of the exact product of the bfloat16-rounded operands.
    A, B = _bf16_values(a).astype(np.float64), _bf16_values(b).astype(np.float64)
    bound = (k + 2) * np.finfo(np.float32).eps * (np.abs(A) @ np.abs(B)) + np.finfo(np.float32).tiny
    assert np.all(np.abs(twin - A @ B) <= bound)


def test_bf16_gemm_twin_flushes_subnormal_inputs_and_results_like_vdpbf16ps(rng):
    # Subnormal operands count as zero; products that land below float32's normal range are
    # flushed; the kernel and the twin agree on all of it.
    a = np.float32([[1e-39, 1e-20, 2.0, 1e-30]])
    b = np.float32([[1.0], [1e-20], [3.0], [1e-10]])
    for portable in (True, False):
        c = _core.bf16_gemm(a, b, portable=portable)
        assert c[0, 0] == np.float32(6.0), (portable, c)
    tiny = np.float32([[1e-20, 1e-20]])
    tiny_b = np.float32([[1e-19], [1e-19]])
    for portable in (True, False):
        assert _core.bf16_gemm(tiny, tiny_b, portable=portable)[0, 0] == 0.0


def test_bf16_gemm_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        _core.bf16_gemm(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="a must be 2-D"):
        _core.bf16_gemm(np.zeros(3, np.float32), np.zeros((3, 2), np.float32))


def test_bf16_kernels_are_used_exactly_when_the_cpu_has_avx512_bf16_and_the_avx512_gemm_is_in_use():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    has = {"avx512_bf16", "avx512f", "avx512vl", "avx512bw"} <= set(flags)
    assert _core.bf16_kernels_enabled() == (has and _core.gemm_kernel_name() == "avx512")
