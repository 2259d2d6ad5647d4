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

// dst (kAmxMR rows, 2 pp steps): row i = op(A) row i rounded to bfloat16, zero past k and past
// valid. transposed: op(A) row i is src column i (src (k, valid)), read one source row at a time.
void amx_pack_a(const float* src, index_t ld, bool transposed, index_t valid, index_t k, index_t pp, bf16_t* dst) {
    const index_t width = 2 * pp;
    std::memset(dst, 0, static_cast<std::size_t>(kAmxMR * width) * sizeof(bf16_t));
    if (!transposed) {
        for (index_t i = 0; i < valid; ++i) bf16_round(src + i * ld, k, dst + i * width);
        return;
    }
    bf16_t row[kAmxMR];
    for (index_t p = 0; p < k; ++p) {
        bf16_round(src + p * ld, valid, row);
        for (index_t i = 0; i < valid; ++i) dst[i * width + p] = row[i];
    }
}

// C (mr, nr) = [C +] the 32 x 32 product over pairs q0 .. q0 + nq: four accumulator tiles from
// zero, one chain of TDPBF16PS per tile over the 16-pair steps in order, then stored to a stack
// tile and added to (or written into) the valid part of C.
void amx_gemm_tile(index_t nq, index_t q0, index_t pp, const bf16_t* a, const bf16_t* b, bool accumulate, float* c,
                   index_t ldc, index_t mr, index_t nr) {
    const index_t a_stride = 2 * pp * static_cast<index_t>(sizeof(bf16_t));      // bytes per A row
    const index_t b_stride = 2 * kBf16NR * static_cast<index_t>(sizeof(bf16_t));  // bytes per pair
    const bf16_t* a_lo = a + 2 * q0;
    const bf16_t* a_hi = a_lo + 16 * 2 * pp;
    const bf16_t* b0 = b + q0 * 2 * kBf16NR;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (index_t s = 0; s < nq; s += kAmxPairs) {
        _tile_loadd(4, a_lo + 2 * s, a_stride);
        _tile_loadd(5, a_hi + 2 * s, a_stride);
        _tile_loadd(6, b0 + s * 2 * kBf16NR, b_stride);
        _tile_loadd(7, b0 + s * 2 * kBf16NR + 32, b_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
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
