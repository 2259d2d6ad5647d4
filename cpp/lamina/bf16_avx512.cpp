// AVX512_BF16 kernels (bf16.h): VCVTNEPS2BF16 conversion and a 12 x 32 VDPBF16PS micro-kernel over
// packed pair panels. Compiled alone with -mavx512bf16; internal linkage except the two entries
// bf16.cpp calls after checking the CPU (numpy#25274; see gemm_avx2.cpp).
#include "lamina/bf16.h"

#if defined(LAMINA_HAVE_AVX512BF16_TU) && defined(__AVX512BF16__) && defined(__AVX512VL__)
#include <immintrin.h>

#include <cstring>

namespace lamina {
namespace bf16_detail {
namespace {

__mmask16 first_lanes(index_t n) {
    return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}

// A vector of 32 bfloat16 viewed as the instruction's operand type.
__m512bh as_bh(__m512i v) {
    __m512bh out;
    std::memcpy(&out, &v, sizeof out);
    return out;
}

}  // namespace

// out (n) = bfloat16(x (n)), 16 at a time; the tail masked (nothing read or written past n).
void round_avx512bf16(const float* x, index_t n, bf16_t* out) {
    for (index_t i = 0; i < n; i += 16) {
        const __mmask16 m = first_lanes(n - i);
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        __m256i bits;
        std::memcpy(&bits, &h, sizeof bits);
        _mm256_mask_storeu_epi16(out + i, m, bits);
    }
}

// C (mr, nr) = [C +] a (12 rows, k pair-packed) * b (k pair-packed, 32 columns): 24 accumulators
// (12 rows x 2 vectors of 16 floats); per pair, a row's two bfloat16 broadcast as one 32-bit
// word, and two vectors of B (16 columns x 2 steps each). The whole 12 x 32 tile is computed
// (the panels are zero-padded) and the valid part stored with masks.
void gemm_tile_avx512bf16(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c,
                          index_t ldc, index_t mr, index_t nr) {
    __m512 acc[kBf16MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < kBf16MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const index_t pairs = (k + 1) / 2;
    for (index_t q = 0; q < pairs; ++q) {
        const __m512bh b0 = as_bh(_mm512_loadu_si512(bp + q * 2 * kBf16NR));
        const __m512bh b1 = as_bh(_mm512_loadu_si512(bp + q * 2 * kBf16NR + 32));
        const bf16_t* a = ap + q * 2 * kBf16MR;
#pragma GCC unroll 12
        for (int i = 0; i < kBf16MR; ++i) {
            std::int32_t word;
            std::memcpy(&word, a + 2 * i, sizeof word);
            const __m512bh ai = as_bh(_mm512_set1_epi32(word));
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    const index_t rows = mr < kBf16MR ? mr : kBf16MR;
    for (index_t i = 0; i < rows; ++i)
        for (int v = 0; v < 2; ++v) {
            const __mmask16 m = first_lanes(nr - 16 * v);
            float* dst = c + i * ldc + 16 * v;
            const __m512 r = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), acc[i][v]) : acc[i][v];
            _mm512_mask_storeu_ps(dst, m, r);
        }
}

}  // namespace bf16_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX512BF16_TU && __AVX512BF16__ && __AVX512VL__
