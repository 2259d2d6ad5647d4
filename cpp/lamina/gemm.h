// BLAS-style matrix multiply on row-major matrices:
//
//   C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C
//
// op(A) = A when trans_a is false (A stored (m, k), lda >= k), A^T when true (A stored (k, m),
// lda >= m); likewise op(B) with B stored (k, n) / (n, k). When beta == 0, C is never read, so it
// may hold NaN. Each element of C is summed over k in the same order whatever the number of
// threads, so results are bit-identical for any thread count.
#pragma once
#include <string>

#include "lamina/matrix.h"

namespace lamina {

template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
          index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc);

// The reference twin: three plain loops, no blocking, no threads. Tests compare against it.
template <typename T>
void gemm_naive(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
                index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc);

// Which micro-kernel gemm() dispatches to ("avx2_fma" or "generic").
std::string gemm_kernel_name();

}  // namespace lamina
