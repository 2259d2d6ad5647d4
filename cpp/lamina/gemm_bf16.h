// The bfloat16 product behind dtype="mixed_bfloat16": C (float32) = op(A) op(B) with both operands
// rounded to bfloat16 (round-to-nearest-even, bf16.h) as their panels are packed, and the
// products accumulated in float32 by a tile kernel (AMX, VDPBF16PS or its portable twin; below).
//
//   C (m, n) = op(A) (m, k) * op(B) (k, n)
//
// op(A) = A (stored (m, k), lda >= k) or A^T (trans_a: stored (k, m), lda >= m); likewise op(B)
// with B stored (k, n) / (n, k). The transposes are taken while packing, so the three products of
// a Dense layer need no copy: forward X W, dW = X^T dZ, dX = dZ W^T. C is never read (beta = 0).
//
// Summation order, fixed for each element whatever m, n, the other rows and columns of the batch
// or the thread count: VDPBF16PS and its twin cut the depth into blocks of kBf16KC steps (even,
// so a block holds whole pairs), each one float32 chain over its pairs in order from zero
// (bf16.h); C = s_0, then C = C + s_b for the later blocks in order. AMX accumulates over the
// whole depth in its tiles, 32 steps per instruction in the hardware's order. Either way a row of
// X W has the same bits in any batch, and threads only decide who computes which tile.
#pragma once
#include "lamina/aligned_vector.h"
#include "lamina/bf16.h"
#include "lamina/gemm.h"
#include "lamina/matrix.h"

namespace lamina {

constexpr index_t kBf16KC = 256;  // depth block: a 12 (or 32) x 256 A block and a 256 x 32 B block fit in L1

// An untransposed op(B) = B (k, n) as gemm_bf16's kernel packs it, kept for later products with
// the same B: mixed_bfloat16 keeps each Dense kernel W so between updates (Network), and the
// small-batch update repacks only the rows it changes (repack_rows). The bytes are those gemm_bf16
// would pack, so a product from it has the same bits.
struct Bf16PackedB {
    AlignedVector<bf16_t> data;
    index_t k = 0, n = 0;
    index_t pairs_held = 0;    // pairs per panel (AMX rounds them up)
    index_t panel_values = 0;  // bfloat16 values per column panel
    bool amx = false, portable = false;
    bool valid = false;        // false: the next product packs B into it
    // Rows [r0, r1) of B (ldb) changed: the pairs holding them are packed again. Threads may
    // repack disjoint ranges of pairs at once. Nothing to do while not valid.
    void repack_rows(const float* B, index_t ldb, index_t r0, index_t r1);
};

// epilogue (gemm.h): called on each finished tile, after its last depth block, from the thread
// that computed it (with k == 0, once on the whole of C, which is zero). packed_b (untransposed
// B only): taken instead of packing B when it is valid for this kernel and shape, else B is
// packed into it, which then becomes valid.
void gemm_bf16(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
               const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue = nullptr,
               Bf16PackedB* packed_b = nullptr);

// The tile kernels, best first: AMX's TDPBF16PS on 32 x 32 tiles (bf16_amx.h), VDPBF16PS on
// 12 x 32 tiles (bf16.h), and the portable twin of VDPBF16PS, which gives its bits exactly. AMX
// adds in its own order inside an instruction, so its results are within float32 summation error
// of the other two, not bit-identical (bf16_amx.h); each kernel on its own keeps the order above.
enum class Bf16Kernel { amx, avx512_bf16, portable };

// The kernel gemm_bf16 uses, decided on first use: amx when the CPU has AMX-BF16, the OS grants
// tile data and bf16_kernels() (LAMINA_GEMM_KERNEL=avx512 or unset); avx512_bf16 when only
// bf16_kernels(), or when LAMINA_BF16_AMX=0; otherwise the portable twin. Throws
// std::invalid_argument when LAMINA_BF16_AMX is set to anything but 0 or 1.
Bf16Kernel bf16_gemm_kernel();
const char* bf16_gemm_kernel_name(Bf16Kernel kernel);
bool bf16_gemm_kernel_available(Bf16Kernel kernel);

// The same product with a given kernel (the tests compare them); throws std::invalid_argument
// when this CPU or build lacks it.
void gemm_bf16_with(Bf16Kernel kernel, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A,
                    index_t lda, const float* B, index_t ldb, float* C, index_t ldc);

}  // namespace lamina
