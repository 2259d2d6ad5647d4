// AVX512_BF16 kernels (bf16.h): VCVTNEPS2BF16 conversion, pair-panel packing and a 12 x 32
// VDPBF16PS micro-kernel over packed pair panels. Compiled alone with -mavx512bf16; internal linkage
// except the four entries bf16.cpp calls after checking the CPU (numpy#25274; see gemm_avx2.cpp).
#include "lamina/bf16.h"

#if defined(LAMINA_HAVE_AVX512BF16_TU) && defined(__AVX512BF16__) && defined(__AVX512VL__)
#include <immintrin.h>

#include <cstdint>
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

// 16 floats (the first n of them, the rest zero) rounded to bfloat16, one per 32-bit lane (high half zero).
__m512i round_to_lanes(const float* x, index_t n) {
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(first_lanes(n), x));
    __m256i bits;
    std::memcpy(&bits, &h, sizeof bits);
    return _mm512_cvtepu16_epi32(bits);
}

// m (16 x 16 32-bit words, m[i] lane j = word (i, j)) transposed in registers: m[j] lane i = the
// old word (i, j). Rows interleave by 32-bit words, then by 64-bit pairs of them, then 128-bit
// quarters regroup twice: 64 shuffles per block, where a scatter stores its 16 lanes one by one.
void transpose_words_16x16(__m512i m[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(m[2 * i], m[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(m[2 * i], m[2 * i + 1]);
    }
    // m[4j + c] quarter q: column 4q + c of rows 4j .. 4j + 3.
    for (int j = 0; j < 4; ++j) {
        m[4 * j] = _mm512_unpacklo_epi64(t[4 * j], t[4 * j + 2]);
        m[4 * j + 1] = _mm512_unpackhi_epi64(t[4 * j], t[4 * j + 2]);
        m[4 * j + 2] = _mm512_unpacklo_epi64(t[4 * j + 1], t[4 * j + 3]);
        m[4 * j + 3] = _mm512_unpackhi_epi64(t[4 * j + 1], t[4 * j + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        t[c] = _mm512_shuffle_i32x4(m[c], m[4 + c], 0x44);
        t[4 + c] = _mm512_shuffle_i32x4(m[c], m[4 + c], 0xEE);
        t[8 + c] = _mm512_shuffle_i32x4(m[8 + c], m[12 + c], 0x44);
        t[12 + c] = _mm512_shuffle_i32x4(m[8 + c], m[12 + c], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
        m[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
        m[4 + c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xDD);
        m[8 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0x88);
        m[12 + c] = _mm512_shuffle_i32x4(t[4 + c], t[12 + c], 0xDD);
    }
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

namespace {

// C (mr, nr) = [C +] a (12-row panel, k pair-packed) * b (k pair-packed, 32 columns) for the first
// R >= mr rows: 2 R accumulators (R rows x 2 vectors of 16 floats); per pair, a row's two bfloat16
// broadcast as one 32-bit word, and two vectors of B (16 columns x 2 steps each). Rows past mr
// (zero-padded) are computed only up to R, and the valid part is stored with masks. Each row's
// chain is the same whatever R, so a short tile (a batch of one) gives a full tile's bits.
template <int R>
void tile_rows_avx512bf16(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c, index_t ldc,
                          index_t mr, index_t nr) {
    __m512 acc[R][2];
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const index_t pairs = (k + 1) / 2;
    for (index_t q = 0; q < pairs; ++q) {
        const __m512bh b0 = as_bh(_mm512_loadu_si512(bp + q * 2 * kBf16NR));
        const __m512bh b1 = as_bh(_mm512_loadu_si512(bp + q * 2 * kBf16NR + 32));
        const bf16_t* a = ap + q * 2 * kBf16MR;
#pragma GCC unroll 12
        for (int i = 0; i < R; ++i) {
            std::int32_t word;
            std::memcpy(&word, a + 2 * i, sizeof word);
            const __m512bh ai = as_bh(_mm512_set1_epi32(word));
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    const index_t rows = mr < R ? mr : R;
    for (index_t i = 0; i < rows; ++i)
        for (int v = 0; v < 2; ++v) {
            const __mmask16 m = first_lanes(nr - 16 * v);
            float* dst = c + i * ldc + 16 * v;
            const __m512 r = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), acc[i][v]) : acc[i][v];
            _mm512_mask_storeu_ps(dst, m, r);
        }
}

}  // namespace

void gemm_tile_avx512bf16(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c,
                          index_t ldc, index_t mr, index_t nr) {
    static_assert(kBf16MR == 12, "the row counts below cover a 12-row panel");
    if (mr <= 1) return tile_rows_avx512bf16<1>(k, ap, bp, accumulate, c, ldc, mr, nr);
    if (mr <= 2) return tile_rows_avx512bf16<2>(k, ap, bp, accumulate, c, ldc, mr, nr);
    if (mr <= 4) return tile_rows_avx512bf16<4>(k, ap, bp, accumulate, c, ldc, mr, nr);
    if (mr <= 8) return tile_rows_avx512bf16<8>(k, ap, bp, accumulate, c, ldc, mr, nr);
    tile_rows_avx512bf16<12>(k, ap, bp, accumulate, c, ldc, mr, nr);
}

// dst: a pair panel (bf16.h, bf16_pack_panel) of width lanes, valid of them from src, k steps. Each
// 32-bit word of the panel is one lane's pair (even step low, odd step high).
//   lanes along columns (src (k, valid)): rows 2q and 2q + 1 converted 16 lanes at a time and
//     merged into the words of pair q, stored contiguously.
//   lanes along rows (src (valid, k)): a row's 32 consecutive steps are 16 consecutive pairs,
//     converted in one VCVTNE2PS2BF16; 16 rows of them transposed in registers, so a pair's
//     words are stored 16 lanes at a time (12 for an A panel, two stores for 32).
void pack_panel_avx512bf16(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid,
                           index_t k, bf16_t* dst) {
    const index_t pairs = (k + 1) / 2;
    if (valid > width) valid = width;
    if (!lanes_are_rows) {
        for (index_t q = 0; q < pairs; ++q) {
            const float* r0 = src + 2 * q * ld;
            const bool has_odd = 2 * q + 1 < k;
            for (index_t l0 = 0; l0 < width; l0 += 16) {
                const __m512i even = round_to_lanes(r0 + l0, valid - l0);
                const __m512i odd = has_odd ? round_to_lanes(r0 + ld + l0, valid - l0) : _mm512_setzero_si512();
                _mm512_mask_storeu_epi32(dst + 2 * (q * width + l0), first_lanes(width - l0),
                                         _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)));
            }
        }
        return;
    }
    for (index_t q0 = 0; q0 < pairs; q0 += 16) {
        const index_t p0 = 2 * q0;
        const index_t columns = pairs - q0 < 16 ? pairs - q0 : 16;
        for (index_t l0 = 0; l0 < width; l0 += 16) {
            __m512i block[16];
            for (index_t l = 0; l < 16; ++l) {
                if (l0 + l >= valid) {
                    block[l] = _mm512_setzero_si512();
                    continue;
                }
                const float* row = src + (l0 + l) * ld + p0;
                const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(k - p0), row);
                const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(k - p0 - 16), row + 16);
                const __m512bh h = _mm512_cvtne2ps_pbh(hi, lo);
                std::memcpy(&block[l], &h, sizeof block[l]);
            }
            transpose_words_16x16(block);
            const __mmask16 lanes = first_lanes(width - l0);
            for (index_t c = 0; c < columns; ++c)
                _mm512_mask_storeu_epi32(dst + 2 * ((q0 + c) * width + l0), lanes, block[c]);
        }
    }
}

// A whole group: both rows' 16 lanes in one VCVTNE2PS2BF16 (row 2q low, row 2q + 1 high), then
// interleaved into pair words (even step low, odd step high). The last, partial group and the
// lone even row of an odd k are loaded masked (lanes past n, and the missing odd row, are zero).
void pack_pair_groups_avx512bf16(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1,
                                 bf16_t* dst, index_t pair_stride, index_t panel_stride, index_t half_stride) {
    alignas(64) static constexpr std::int16_t kInterleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                                 21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                                 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i interleave = _mm512_load_si512(kInterleave);
    for (index_t g = 0; g * 16 < n; ++g) {
        const index_t j0 = 16 * g;
        const __mmask16 lanes = first_lanes(n - j0);
        bf16_t* group = dst + (g / 2) * panel_stride + (g % 2) * half_stride;
        for (index_t q = q0; q < q1; ++q) {
            const float* row0 = B + 2 * q * ldb + j0;
            const __m512 even = _mm512_maskz_loadu_ps(lanes, row0);
            const __m512 odd = 2 * q + 1 < k ? _mm512_maskz_loadu_ps(lanes, row0 + ldb) : _mm512_setzero_ps();
            const __m512bh h = _mm512_cvtne2ps_pbh(odd, even);
            __m512i words;
            std::memcpy(&words, &h, sizeof words);
            _mm512_storeu_si512(group + q * pair_stride, _mm512_permutexvar_epi16(interleave, words));
        }
    }
}

}  // namespace bf16_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX512BF16_TU && __AVX512BF16__ && __AVX512VL__
