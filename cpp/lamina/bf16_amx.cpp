// AMX-BF16 kernels (bf16_amx.h): a 32 x 32 TDPBF16PS micro-kernel on four 16 x 16 accumulator
// tiles and the row-major A panel packing it reads. Compiled alone with the AMX flags; internal
// linkage except the entries gemm_bf16.cpp calls after checking the CPU (numpy#25274).
#include "lamina/bf16_amx.h"

#if defined(LAMINA_HAVE_AMX_TU) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace lamina {
namespace bf16_detail {
namespace {

__mmask16 first_lanes(index_t n) {
    return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
}

// The lanes of m from x rounded to bfloat16, one per 32-bit lane (high half zero), the rest zero.
__m512i round_to_lanes(const float* x, __mmask16 m) {
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x));
    __m256i bits;
    std::memcpy(&bits, &h, sizeof bits);
    return _mm512_cvtepu16_epi32(bits);
}

// Palette 1: tmm0-3 the C tiles (16 rows x 64 bytes), tmm4-5 two A tiles (16 rows x 32
// bfloat16), tmm6-7 two B tiles (16 pairs x 16 columns x 2 bfloat16).
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

}  // namespace

void amx_begin_thread() {
    // A static object: GCC does not see LDTILECFG read its operand and drops stores into a local.
    static const TileConfig config = [] {
        TileConfig c;
        for (int t = 0; t < 8; ++t) {
            c.colsb[t] = 64;
            c.rows[t] = 16;
        }
        return c;
    }();
    _tile_loadconfig(&config);
}

void amx_end_thread() { _tile_release(); }

// dst: the A panel of bf16_amx.h. Untransposed, a row's 32-step chunks are converted straight
// into their tile rows (VCVTNE2PS2BF16). Transposed, source rows 2q and 2q + 1 hold steps 2q and
// 2q + 1 of every lane: converted and merged into one 32-bit word per lane (step 2q low, as in
// the panel) and scattered to the lanes' rows, 16 lanes (one tile half) at a time.
void amx_pack_a(const float* src, index_t ld, bool transposed, index_t valid, index_t k, index_t pp, bf16_t* dst) {
    const index_t chunks = pp / kAmxPairs;
    std::memset(dst, 0, static_cast<std::size_t>(kAmxMR * 2 * pp) * sizeof(bf16_t));
    // (lane i, step p) -> its place in the panel
    auto at = [&](index_t i, index_t p) { return ((i / 16 * chunks + p / 32) * 16 + i % 16) * 32 + p % 32; };
    if (!transposed) {
        for (index_t i = 0; i < valid; ++i)
            for (index_t p0 = 0; p0 < k; p0 += 32) {
                const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(k - p0), src + i * ld + p0);
                const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(k - p0 - 16), src + i * ld + p0 + 16);
                const __m512bh h = _mm512_cvtne2ps_pbh(hi, lo);
                __m512i words;
                std::memcpy(&words, &h, sizeof words);
                _mm512_storeu_si512(dst + at(i, p0), words);
            }
        return;
    }
    const __m512i lane_rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(16));
    for (index_t p = 0; p < k; p += 2) {
        const float* r0 = src + p * ld;
        for (index_t h = 0; h < 2 && 16 * h < valid; ++h) {
            const __mmask16 m = first_lanes(valid - 16 * h);
            const __m512i even = round_to_lanes(r0 + 16 * h, m);
            const __m512i odd = p + 1 < k ? round_to_lanes(r0 + ld + 16 * h, m) : _mm512_setzero_si512();
            // Lane 16 h + r's word sits at bfloat16 index at(16 h + r, p) = at(16 h, p) + 32 r.
            _mm512_mask_i32scatter_epi32(dst + at(16 * h, p), m, lane_rows,
                                         _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)), 4);
        }
    }
}

// dst: the B panel of bf16_amx.h (kBf16NR columns of op(B), k steps, pp pairs) as two 16-lane
// pair panels of bf16.h, each zero past its valid lanes and past k.
void amx_pack_b(const float* src, index_t ld, bool lanes_are_rows, index_t valid, index_t k, index_t pp,
                bf16_t* dst) {
    const index_t pairs = (k + 1) / 2;
    for (index_t h = 0; h < 2; ++h) {
        bf16_t* half = dst + h * pp * 32;
        const index_t lanes = valid - 16 * h < 0 ? 0 : (valid - 16 * h > 16 ? 16 : valid - 16 * h);
        const float* start = lanes_are_rows ? src + 16 * h * ld : src + 16 * h;
        bf16_pack_panel(start, ld, lanes_are_rows, 16, lanes, k, half);
        std::memset(half + pairs * 32, 0, static_cast<std::size_t>((pp - pairs) * 32) * sizeof(bf16_t));
    }
}

// C (mr, nr) = [C +] the 32 x 32 product over pairs q0 .. q0 + nq: four accumulator tiles from
// zero, one chain of TDPBF16PS per tile over the 16-pair steps in order, then stored to a stack
// tile and added to (or written into) the valid part of C.
void amx_gemm_tile(index_t nq, index_t q0, index_t pp, const bf16_t* a, const bf16_t* b, bool accumulate, float* c,
                   index_t ldc, index_t mr, index_t nr) {
    constexpr index_t kRowBytes = 64;  // every tile is 16 rows of 64 bytes, consecutive
    const index_t chunks = pp / kAmxPairs, s0 = q0 / kAmxPairs, s1 = s0 + nq / kAmxPairs;
    const bf16_t* a_lo = a;
    const bf16_t* a_hi = a + chunks * 16 * 32;
    const bf16_t* b_lo = b;
    const bf16_t* b_hi = b + pp * 32;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (index_t s = s0; s < s1; ++s) {
        _tile_loadd(4, a_lo + s * 16 * 32, kRowBytes);
        _tile_loadd(5, a_hi + s * 16 * 32, kRowBytes);
        _tile_loadd(6, b_lo + s * 16 * 32, kRowBytes);
        _tile_loadd(7, b_hi + s * 16 * 32, kRowBytes);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    if (!accumulate && mr == kAmxMR && nr == kBf16NR) {  // a whole tile: straight into C
        const index_t stride = ldc * static_cast<index_t>(sizeof(float));
        _tile_stored(0, c, stride);
        _tile_stored(1, c + 16, stride);
        _tile_stored(2, c + 16 * ldc, stride);
        _tile_stored(3, c + 16 * ldc + 16, stride);
        return;
    }
    alignas(64) float out[kAmxMR][kBf16NR];
    constexpr index_t out_stride = kBf16NR * static_cast<index_t>(sizeof(float));
    _tile_stored(0, &out[0][0], out_stride);
    _tile_stored(1, &out[0][16], out_stride);
    _tile_stored(2, &out[16][0], out_stride);
    _tile_stored(3, &out[16][16], out_stride);
    for (index_t i = 0; i < mr; ++i) {
        float* ci = c + i * ldc;
        if (accumulate)
            for (index_t j = 0; j < nr; ++j) ci[j] += out[i][j];
        else
            std::memcpy(ci, out[i], static_cast<std::size_t>(nr) * sizeof(float));
    }
}

}  // namespace bf16_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AMX_TU && __AMX_TILE__ && __AMX_BF16__
