// AMX-BF16 kernels for gemm_bf16 (Intel AMX: TDPBF16PS on 16 x 16 float32 tiles). Declarations
// only, so plain translation units can include it; the code is in bf16_amx.cpp, compiled alone
// with -mamx-tile -mamx-bf16 (only when LAMINA_HAVE_AMX_TU). Call only after gemm_bf16.cpp has
// checked the CPU and obtained the kernel's permission to use tile data (amx_available()).
//
// Panels (pairs rounded up to pp, a multiple of kAmxPairs; everything past k is zero), laid out
// so every tile the kernel loads is 1 KB of consecutive memory (16 rows of 64 bytes):
//   A panel: kAmxMR rows of op(A) as two halves of 16 rows; half h, chunk s (steps 32 s ..
//            32 s + 31), row r, step t at dst[((h * pp / 16 + s) * 16 + r) * 32 + t]; rows past
//            the valid ones zero.
//   B panel: kBf16NR columns as two halves of 16, each the pair panel of bf16.h 16 lanes wide:
//            half h, pair q, column j, step s at dst[h * pp * 32 + q * 32 + 2 * j + s].
// Arithmetic: TDPBF16PS, with bfloat16 inputs and float32 accumulation, subnormals as zero, round
// to nearest even. Its order of additions inside one instruction is the hardware's and is not the
// VDPBF16PS chain the portable twin spells out, so AMX results agree with the twin within float32
// summation error, not bit for bit. Each element is still computed the same way whatever m, the
// other rows and the thread count (a row's dot products never mix with another row's).
#pragma once
#include "lamina/bf16.h"

namespace lamina {

constexpr index_t kAmxMR = 32;     // rows per A panel: two 16-row tiles
constexpr index_t kAmxPairs = 16;  // pairs per tile step (32 depth steps)

namespace bf16_detail {

// Loads the tile configuration on the calling thread (before its first tile) / releases it.
void amx_begin_thread();
void amx_end_thread();

// A panel (above) of op(A) rows from src: op(A) row i is src row i (src (valid, k), row stride
// ld), or with transposed src column i (src (k, valid)). row (2 pp) is scratch.
void amx_pack_a(const float* src, index_t ld, bool transposed, index_t valid, index_t k, index_t pp, bf16_t* dst);
// B panel (above) of op(B) columns from src: lanes_are_rows as in bf16_pack_panel.
void amx_pack_b(const float* src, index_t ld, bool lanes_are_rows, index_t valid, index_t k, index_t pp,
                bf16_t* dst);

// C (mr, nr) = [C +] a (kAmxMR rows, pairs q0 .. q0 + nq of its panel) b (the same pairs, kBf16NR
// columns): nq a multiple of kAmxPairs, mr <= kAmxMR, nr <= kBf16NR.
void amx_gemm_tile(index_t nq, index_t q0, index_t pp, const bf16_t* a, const bf16_t* b, bool accumulate, float* c,
                   index_t ldc, index_t mr, index_t nr);

}  // namespace bf16_detail
}  // namespace lamina
