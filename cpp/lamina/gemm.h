// BLAS-style matrix multiply on row-major matrices:
//
//   C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C
//
// op(A) = A when trans_a is false (A stored (m, k), lda >= k), A^T when true (A stored (k, m),
// lda >= m); likewise op(B) with B stored (k, n) / (n, k). When beta == 0, C is never read, so it
// may hold NaN. Every element of C is summed the same way whatever the path, the shape, the other
// rows and columns, or the number of threads: over equal depth blocks of at most KC steps, one
// multiply-add chain (FMA in the AVX2 and AVX-512 kernels, so those two agree bit for bit) from zero per block with p ascending, then C = alpha s_0 [+ beta C] and
// C = C + alpha s_b for the later blocks in order (gemm.cpp, depth_block). So a row of the
// forward product X W is bit-identical whatever batch it is in. Terms whose op(A) factor is
// zero are skipped where that is cheap to know (zero entries of a single-row A; depth steps that
// are zero in a whole packed 6-row panel; every zero of a mostly-zero A in a plain product
// C = A B, which is then computed row by row from each row's nonzeros): sparse inputs such as
// images do less work, and since an exact zero adds exactly nothing to a finite sum, the bits
// are the same. Only a non-finite B value met solely by zeros behaves differently (0 * inf is not
// added, as in reference BLAS's xGEMV), and a sum that underflows to -0 may become +0.
// The one exception to the common order is the small-m product with an untransposed A and a
// transposed B (dX = dZ W^T at batch <= 16), which sums dot products in vector lanes; the
// forward product never takes it.
#pragma once
#include <string>
#include <vector>

#include "lamina/matrix.h"

namespace lamina {

// Work done on each finished tile of C while it is still in cache (Dense forward: bias and
// activation, so they cost no extra pass over C). fn(ctx, c, ldc, i0, j0, rows, cols) gets the
// block C[i0 : i0 + rows, j0 : j0 + cols], c pointing at C(i0, j0). Tiles are disjoint and come
// from any of gemm's threads, so fn must be elementwise and must not start threads; paths that
// do not work in tiles (small m, k == 0) call it once on the whole of C, giving the same result.
template <typename T>
struct TileEpilogue {
    void (*fn)(const void* ctx, T* c, index_t ldc, index_t i0, index_t j0, index_t rows, index_t cols);
    const void* ctx;
};

template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
          index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
          const TileEpilogue<T>* epilogue = nullptr);

// How gemm() computes a product, decided before anything runs by a pure function of the problem
// (shape, flags, scalars, the thread setting, and for the sparse-row path a sample of A's zeros).
// Every path gives each element of C the same arithmetic (see above), so the plan decides speed
// only. split says which dimension the threads divide (none with one thread); transposed that
// C^T = op(B)^T op(A)^T is computed (few columns, many rows).
enum class GemmPath { scale, small_m, small_m_dot, narrow, sparse_rows, blocked };
enum class GemmSplit { none, columns, rows };
struct GemmPlan {
    GemmPath path;
    GemmSplit split;
    int threads;
    bool transposed;
};
template <typename T>
GemmPlan gemm_plan(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
                   index_t lda, const T* B, index_t ldb, T beta);
const char* gemm_path_name(GemmPath path);
const char* gemm_split_name(GemmSplit split);

// The reference twin: three plain loops, no blocking, no threads. Tests compare against it.
template <typename T>
void gemm_naive(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
                index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc);

// Which kernel table gemm() dispatches to: "avx512", "avx2" or "generic". The best this build
// and CPU have, unless LAMINA_GEMM_KERNEL names one; decided on first use. Throws
// std::invalid_argument when LAMINA_GEMM_KERNEL is not one of the three names or names a table
// this CPU (or build) lacks; the Python module calls this on import, so the error surfaces there.
std::string gemm_kernel_name();

// The kernel tables this build has and this CPU can run, best first (always ends with "generic").
std::vector<std::string> gemm_kernels_available();

// Whether the AVX2/FMA kernels or better are in use (avx512 or avx2): the CPU has AVX2 and FMA,
// and LAMINA_GEMM_KERNEL does not force the portable ones. Every hand-vectorized kernel (GEMM, the rank-n update, the
// RMSprop rule) follows this one choice, so one switch exercises every portable twin.
bool avx2_kernels();

}  // namespace lamina
