// Internal to the GEMM and the rank-n update: block sizes and the table of kernels gemm.cpp and
// rank_update.cpp dispatch through. Declarations, constants and plain data only: no inline
// functions or templates with code live here, so nothing can be ODR-merged across the
// ISA-specific translation units (numpy#25274).
//
// Adding an ISA variant is a local change:
//   1. a new TU gemm_<isa>.cpp, compiled with its -m flags only (CMakeLists.txt, and the native
//      harness cpp/tests_native/run_tests.sh), holding its kernels with internal linkage: write
//      each once as a template on the element type over a SIMD trait header simd_<isa>.h that
//      only ISA TUs include, and fill a KernelSet<T> per element type (an entry may be another
//      table's, as the AVX-512 table takes AVX2's dot, row-vector, rows and rank-n kernels);
//   2. one extern function returning its GemmKernelTable, declared at the end of this file;
//   3. one line in available_tables() (gemm.cpp) with the CPU check, best tables first, and its
//      name in kTableNames there (the names LAMINA_GEMM_KERNEL accepts).
// A new kind of kernel is a new field, in KernelSet<T> (per float / double) or in GemmKernelTable
// (one that is not, such as bf16 products): its contract here and an entry in every table, the
// generic one being the portable twin tests compare against.
#pragma once
#include <cstdint>

#include "lamina/matrix.h"

namespace lamina {
namespace gemm_detail {

// Block sizes, in one place. MR x NR is the register tile of C, MC x KC the packed A block (L2),
// KC x NC the packed B panel (L3). Float: BLIS's zen3 values. Double: same bytes per tile row.
struct BlockingF32 {
    static constexpr index_t MR = 6, NR = 16, MC = 144, KC = 256, NC = 4080;
};
struct BlockingF64 {
    static constexpr index_t MR = 6, NR = 8, MC = 72, KC = 256, NC = 4080;
};
// The AVX-512 kernels' tiles: 12 rows x 2 zmm vectors (24 of the 32 registers accumulate); the
// float A block twice the AVX2 one (of MC 144 / 288 / 432, 288 was fastest; bench/RESULTS.md). KC
// is the same for every kernel table, so the depth blocks, and with them every element's
// summation order, do not depend on the kernel (gemm.cpp, depth_block).
struct BlockingF32Avx512 {
    static constexpr index_t MR = 12, NR = 32, MC = 288, KC = 256, NC = 4080;
};
struct BlockingF64Avx512 {
    static constexpr index_t MR = 12, NR = 16, MC = 144, KC = 256, NC = 4080;
};
static_assert(BlockingF32::KC == BlockingF32Avx512::KC && BlockingF64::KC == BlockingF64Avx512::KC,
              "one depth blocking for every kernel table");

// Packed buffers are aligned to this many bytes.
constexpr index_t kPackAlign = 64;

// Micro-kernel: one MR x NR tile of C over a depth of k.
//
//   C (mr, nr) = alpha * a (MR, k) * b (k, NR) + beta * C,   mr <= MR, nr <= NR
//
// a is packed: element (i, p) at a[p * MR + i], rows >= mr zero-padded.
// b is row-major with row stride rs_b: element (p, j) at b[p * rs_b + j], all NR columns
// readable (a packed panel has rs_b == NR; gemm.cpp may also pass unpacked rows of B).
// C element (i, j) sits at c[i * rs_c + j * cs_c]. beta == 0: C is not read.
// Full tiles with cs_c == 1 are written directly; edge tiles are computed into a stack tile by
// the very same instructions and the valid part copied out (the AVX-512 kernels compute a tile
// with fewer rows directly, on its valid rows only), so a C element's value never depends on
// which tile (full or edge) it fell into.
template <typename T>
using TileUkr = void (*)(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c,
                         index_t cs_c, index_t mr, index_t nr);

// Micro-kernel over listed depth steps only, for packed A panels with all-zero steps (sparse
// inputs such as images, where some depth steps are zero in every row of a panel):
//
//   C (mr, nr) = alpha * sum_q a(:, q) b(steps[q], :) + beta * C
//
// a holds only the listed steps, packed as above (element (i, q) at a[q * MR + i]); step q's
// row of b is b + steps[q] (an element offset; b packed with rs_b == NR). A zero step adds
// 0 * b, so leaving it out gives the micro-kernel's sums exactly, in the same order (for finite
// b). Same C handling as the micro-kernel.
template <typename T>
using StepsUkr = void (*)(index_t count, const T* a, const T* b, const std::int32_t* steps, T alpha, T beta, T* c,
                          index_t rs_c, index_t cs_c, index_t mr, index_t nr);

// Micro-kernel with A read in place, for narrow products (n <= NR, many rows: a 10-unit layer)
// where packing A would cost more than the product itself:
//
//   C (mr, nr) = alpha * a (mr, k) * b (k, NR) + beta * C
//
// row i of a at a + i * lda, k contiguous values; only the mr valid rows are read. Row p of b at
// b + p * ldb: a packed panel (ldb == NR, columns past nr zero), or, for a kernel that reads only
// the nr valid columns (rows_masked_b), op(B) in place. The very
// micro-kernel's arithmetic (same FMA chain per element), so no C element can tell the two apart.
// Every table's rows kernel takes MR = 6 rows (BlockingF32 / BlockingF64's tiles); its panel
// width NR is the table's rows_nr: BlockingF*'s NR, or the AVX-512 kernel's 16 for both types
// (for doubles two zmm, so a 10-unit layer's columns take one pass, not two panels of 8).
template <typename T>
using RowsUkr = void (*)(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c,
                         index_t rs_c, index_t cs_c, index_t mr, index_t nr);

// Dot-product kernel for small m with a transposed B (rows of op(A) and columns of op(B) both
// contiguous in memory):
//
//   C (mr, nr) = alpha * a (mr, k) * b (nr, k)^T + beta * C,   mr <= kDotMR, nr <= kDotNR
//
// Row i of a at a + i * lda, row j of b at b + j * ldb, each k contiguous values; only the mr
// and nr valid rows are read. Sums over k in vector lanes, then across lanes in a fixed order.
constexpr index_t kDotMR = 3, kDotNR = 4;
template <typename T>
using DotUkr = void (*)(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c,
                        index_t rs_c, index_t cs_c, index_t mr, index_t nr);

// Row-vector kernel for m == 1 with B read in place:
//
//   C (1, W) = alpha * a (1, k) * b (k, W) + beta * C,   W = kGemvW<type>
//
// a(p) at a[p * inc_a]; b row-major with row stride ldb, all W columns readable; C contiguous.
// Walking W contiguous columns of each row of B suits the cache far better than the
// micro-kernel's NR columns when a single row of A gives no reuse. Every column gets exactly
// the micro-kernel's arithmetic, so mixing the two for one C changes no bits. Zero entries of a
// skip their row of b (adding 0 * b changes no finite sum): sparse inputs such as images, about
// half zeros, read half the weights. Only a non-finite b could tell (0 * inf is not added).
constexpr index_t kGemvWF32 = 64, kGemvWF64 = 32;
template <typename T>
using GemvUkr = void (*)(index_t k, const T* a, index_t inc_a, const T* b, index_t ldb, T alpha, T beta, T* c);

// Sparse-row path (mostly-zero op(A), e.g. a batch of images: many pixels are zero, but far fewer
// depth steps are zero in all six rows of a packed panel). Each row of
// A is listed as its nonzero entries, and each row of C is computed from its row's list alone, so
// every zero is skipped, not only those shared by a panel. For rows r = 0 .. rows - 1:
//
//   c_r (1, nr) = [c_r +] sum_q vals_r[q] * b[offs_r[q] : offs_r[q] + nr],   nr <= W = kSparseW<type>
//
// with row r's list of counts[r] entries at offs + r * cap, vals + r * cap and its row of C at
// c + r * ldc (nr valid columns, read only if accumulate). b is a packed W-wide block of op(B)
// (depth step p at b + p * W; offs_r[q] = p * W for the q-th listed step p of row r). One depth
// block at a time, the blocked paths' blocks: a row's block sum starts from zero and is then
// added to C (accumulate) in one rounding, as the micro-kernel adds a later block
// (c = 1 * c + acc), so every path gives a row of C the same bits.
constexpr index_t kSparseWF32 = 64, kSparseWF64 = 32;
template <typename T>
using SparseRowsUkr = void (*)(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                               index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr);

// List the nonzero entries of a (len contiguous values): for each a[p] != 0, in order of p,
// vals[q] = a[p] and offs[q] = first_off + p * off_step. Returns the count. Writes past the count
// (whole vectors are stored) but never past entry len - 1: buffers of len entries suffice.
// NaN counts as nonzero (it must reach C).
template <typename T>
using CompressUkr = index_t (*)(const T* a, index_t len, std::int32_t first_off, std::int32_t off_step,
                                std::int32_t* offs, T* vals);

// The kernel gradient of a small batch (the fused small-batch update, rank_update.h):
//
//   g (rows, units) = x[:, 0:rows]^T dz,   x (n, >= rows) with row stride in, dz (n, units) and g contiguous
//
// Each element sums its samples in order (g = x0 dz0, then g += x_r dz_r), skipping samples
// whose input is zero (they add nothing; images are about half zeros).
template <typename T>
using RankNUkr = void (*)(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows);

// One table's kernels for one element type.
template <typename T>
struct KernelSet {
    TileUkr<T> tile;
    StepsUkr<T> steps;
    RowsUkr<T> rows;
    DotUkr<T> dot;
    GemvUkr<T> gemv;
    SparseRowsUkr<T> sparse_rows;
    CompressUkr<T> compress;
    RankNUkr<T> rank_n;
    index_t rows_nr;     // the panel width of b the rows kernel takes (RowsUkr)
    bool rows_masked_b;  // it reads only the nr valid columns of b, so b may be op(B) in place
};

struct GemmKernelTable {
    const char* name;
    bool avx512_tiles;  // the tile and steps kernels take BlockingF*Avx512's tiles, else BlockingF*'s
    KernelSet<float> f32;
    KernelSet<double> f64;
};

// The table every GEMM and rank-n update of this process runs (gemm.cpp, decided on first use).
const GemmKernelTable& active_kernels();

// Defined in gemm_avx2.cpp (only when LAMINA_HAVE_AVX2_TU; call only if the CPU has AVX2+FMA).
const GemmKernelTable* gemm_avx2_kernels();
// Defined in gemm_avx512.cpp (only when LAMINA_HAVE_AVX512_TU; call only if the CPU has
// AVX-512F and AVX-512VL).
const GemmKernelTable* gemm_avx512_kernels();
// Defined in gemm_generic.cpp: plain C++, runs everywhere.
const GemmKernelTable* gemm_generic_kernels();

}  // namespace gemm_detail
}  // namespace lamina
