// The bfloat16 product behind dtype="mixed_bfloat16": C (float32) = op(A) op(B) with both operands
// rounded to bfloat16 (round-to-nearest-even, bf16.h) as their panels are packed, and the
// products accumulated in float32 by bf16_gemm_tile (VDPBF16PS, or its bit-identical portable twin).
//
//   C (m, n) = op(A) (m, k) * op(B) (k, n)
//
// op(A) = A (stored (m, k), lda >= k) or A^T (trans_a: stored (k, m), lda >= m); likewise op(B)
// with B stored (k, n) / (n, k). The transposes are taken while packing, so the three products of
// a Dense layer need no copy: forward X W, dW = X^T dZ, dX = dZ W^T. C is never read (beta = 0).
//
// Summation order, fixed for each element whatever m, n, the other rows and columns of the batch
// or the thread count: depth is cut into blocks of kBf16KC steps (even, so a block holds whole
// pairs); within a block one float32 chain over the pairs in order (bf16.h, bf16_gemm_tile),
// from zero; C = s_0, then C = C + s_b for the later blocks in order. A row of X W therefore has
// the same bits in any batch, and threads only decide who computes which tile.
#pragma once
#include "lamina/bf16.h"
#include "lamina/gemm.h"
#include "lamina/matrix.h"

namespace lamina {

constexpr index_t kBf16KC = 256;  // depth block: a 12 x 256 A block and a 256 x 32 B block fit in L1

// epilogue (gemm.h): called on each finished tile, after its last depth block, from the thread
// that computed it (with k == 0, once on the whole of C, which is zero).
void gemm_bf16(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
               const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue = nullptr);

// The same product through the portable packing and tile twins whatever the CPU (the tests'
// reference for the VDPBF16PS path: the bits must agree).
void gemm_bf16_portable(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
                        const float* B, index_t ldb, float* C, index_t ldc);

}  // namespace lamina
