// bfloat16 conversion, panel packing and the portable twin of the micro-kernel (bf16.h).
#include "lamina/bf16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "lamina/gemm.h"

namespace lamina {

namespace {

std::uint32_t bits_of(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

float float_of(std::uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// Subnormals become zeros of the same sign (VDPBF16PS's "DAZ in, FTZ out").
float flush(float x) {
    const std::uint32_t u = bits_of(x);
    return (u & 0x7f800000u) == 0 ? float_of(u & 0x80000000u) : x;
}

// One VDPBF16PS step on a lane: acc + x * y rounded once, subnormal inputs and result as zero.
float dp_step(float acc, bf16_t x, bf16_t y) {
    return flush(std::fma(flush(bf16_to_float(x)), flush(bf16_to_float(y)), flush(acc)));
}

}  // namespace

bf16_t bf16_from_float(float x) {
    const std::uint32_t u = bits_of(x);
    if ((u & 0x7f800000u) == 0) return static_cast<bf16_t>((u & 0x80000000u) >> 16);  // zero, subnormal
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x0040u);  // NaN: quiet
    // Round to nearest, ties to even: add just under half an ulp of bfloat16, plus the low bit kept.
    return static_cast<bf16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float bf16_to_float(bf16_t h) { return float_of(static_cast<std::uint32_t>(h) << 16); }

void bf16_round_portable(const float* x, index_t n, bf16_t* out) {
    for (index_t i = 0; i < n; ++i) out[i] = bf16_from_float(x[i]);
}

bool bf16_kernels() {
#if defined(LAMINA_HAVE_AVX512BF16_TU)
    static const bool on = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                           gemm_kernel_name() == "avx512";
    return on;
#else
    return false;
#endif
}

void bf16_round(const float* x, index_t n, bf16_t* out) {
#if defined(LAMINA_HAVE_AVX512BF16_TU)
    if (bf16_kernels()) return bf16_detail::round_avx512bf16(x, n, out);
#endif
    bf16_round_portable(x, n, out);
}

// Lane l, depth step p from src[l * ls + p * ps] to dst[(p / 2) * 2 * width + 2 * l + p % 2],
// converted; lanes past valid and the odd tail zero.
void bf16_pack_panel_portable(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid,
                              index_t k, bf16_t* dst) {
    const index_t ls = lanes_are_rows ? ld : 1, ps = lanes_are_rows ? 1 : ld;
    const index_t pairs = (k + 1) / 2;
    for (index_t q = 0; q < pairs; ++q)
        for (index_t l = 0; l < width; ++l)
            for (index_t s = 0; s < 2; ++s) {
                const index_t p = 2 * q + s;
                dst[q * 2 * width + 2 * l + s] = l < valid && p < k ? bf16_from_float(src[l * ls + p * ps]) : bf16_t(0);
            }
}

void bf16_pack_panel(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid, index_t k,
                     bf16_t* dst) {
#if defined(LAMINA_HAVE_AVX512BF16_TU)
    if (bf16_kernels()) return bf16_detail::pack_panel_avx512bf16(src, ld, lanes_are_rows, width, valid, k, dst);
#endif
    bf16_pack_panel_portable(src, ld, lanes_are_rows, width, valid, k, dst);
}

void bf16_pack_pair_groups_portable(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1,
                                    bf16_t* dst, index_t pair_stride, index_t panel_stride, index_t half_stride) {
    for (index_t g = 0; g * 16 < n; ++g)
        for (index_t q = q0; q < q1; ++q) {
            bf16_t* words = dst + (g / 2) * panel_stride + (g % 2) * half_stride + q * pair_stride;
            for (index_t l = 0; l < 16; ++l)
                for (index_t s = 0; s < 2; ++s) {
                    const index_t j = 16 * g + l, p = 2 * q + s;
                    words[2 * l + s] = j < n && p < k ? bf16_from_float(B[p * ldb + j]) : bf16_t(0);
                }
        }
}

void bf16_pack_pair_groups(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1, bf16_t* dst,
                           index_t pair_stride, index_t panel_stride, index_t half_stride) {
#if defined(LAMINA_HAVE_AVX512BF16_TU)
    if (bf16_kernels())
        return bf16_detail::pack_pair_groups_avx512bf16(B, ldb, k, n, q0, q1, dst, pair_stride, panel_stride,
                                                        half_stride);
#endif
    bf16_pack_pair_groups_portable(B, ldb, k, n, q0, q1, dst, pair_stride, panel_stride, half_stride);
}

// A (mr, k) rows of lda: lanes are rows. B (k, nr) rows of ldb: lanes are columns.
void bf16_pack_a(const float* a, index_t lda, index_t mr, index_t k, bf16_t* ap) {
    bf16_pack_panel_portable(a, lda, true, kBf16MR, mr, k, ap);
}

void bf16_pack_b(const float* b, index_t ldb, index_t k, index_t nr, bf16_t* bp) {
    bf16_pack_panel_portable(b, ldb, false, kBf16NR, nr, k, bp);
}

void bf16_gemm_tile_portable(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c,
                             index_t ldc, index_t mr, index_t nr) {
    const index_t pairs = (k + 1) / 2;
    for (index_t i = 0; i < mr; ++i)
        for (index_t j = 0; j < nr; ++j) {
            float acc = 0.0f;
            for (index_t q = 0; q < pairs; ++q) {
                const bf16_t* x = ap + q * 2 * kBf16MR + 2 * i;
                const bf16_t* y = bp + q * 2 * kBf16NR + 2 * j;
                acc = dp_step(acc, x[1], y[1]);  // the odd step first, as VDPBF16PS
                acc = dp_step(acc, x[0], y[0]);
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc : acc;
        }
}

void bf16_gemm_tile(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c, index_t ldc,
                    index_t mr, index_t nr) {
#if defined(LAMINA_HAVE_AVX512BF16_TU)
    if (bf16_kernels()) return bf16_detail::gemm_tile_avx512bf16(k, ap, bp, accumulate, c, ldc, mr, nr);
#endif
    bf16_gemm_tile_portable(k, ap, bp, accumulate, c, ldc, mr, nr);
}

void bf16_gemm(index_t m, index_t n, index_t k, const float* A, index_t lda, const float* B, index_t ldb, float* C,
               index_t ldc, bool portable) {
    const index_t pairs = (k + 1) / 2;
    std::vector<bf16_t> ap(static_cast<std::size_t>(pairs * 2 * kBf16MR)), bp(static_cast<std::size_t>(pairs * 2 * kBf16NR));
    for (index_t j0 = 0; j0 < n; j0 += kBf16NR) {
        const index_t nr = std::min(kBf16NR, n - j0);
        bf16_pack_b(B + j0, ldb, k, nr, bp.data());
        for (index_t i0 = 0; i0 < m; i0 += kBf16MR) {
            const index_t mr = std::min(kBf16MR, m - i0);
            bf16_pack_a(A + i0 * lda, lda, mr, k, ap.data());
            if (portable)
                bf16_gemm_tile_portable(k, ap.data(), bp.data(), false, C + i0 * ldc + j0, ldc, mr, nr);
            else
                bf16_gemm_tile(k, ap.data(), bp.data(), false, C + i0 * ldc + j0, ldc, mr, nr);
        }
    }
}

}  // namespace lamina
