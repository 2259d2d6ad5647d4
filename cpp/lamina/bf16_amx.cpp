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

constexpr index_t kRowChunk = 512;  // amx_pack_a converts a row this many steps at a time (a multiple of 32)

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

// dst: the A panel of bf16_amx.h. A row is converted whole into `row`, then its 64-byte chunks go
// to their tiles; transposed, a source row holds one step of every lane.
void amx_pack_a(const float* src, index_t ld, bool transposed, index_t valid, index_t k, index_t pp, bf16_t* dst) {
    const index_t width = 2 * pp, chunks = pp / kAmxPairs;
    std::memset(dst, 0, static_cast<std::size_t>(kAmxMR * width) * sizeof(bf16_t));
    auto at = [&](index_t i, index_t p) { return ((i / 16 * chunks + p / 32) * 16 + i % 16) * 32 + p % 32; };
    if (!transposed) {
        alignas(64) bf16_t row[kRowChunk];
        for (index_t i = 0; i < valid; ++i)
            for (index_t p0 = 0; p0 < k; p0 += kRowChunk) {
                const index_t n = k - p0 < kRowChunk ? k - p0 : kRowChunk;
                bf16_round(src + i * ld + p0, n, row);
                for (index_t t = 0; t < n; t += 32)
                    std::memcpy(dst + at(i, p0 + t), row + t,
                                static_cast<std::size_t>(n - t < 32 ? n - t : 32) * sizeof(bf16_t));
            }
        return;
    }
    bf16_t lanes[kAmxMR];
    for (index_t p = 0; p < k; ++p) {
        bf16_round(src + p * ld, valid, lanes);
        for (index_t i = 0; i < valid; ++i) dst[at(i, p)] = lanes[i];
    }
}

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
