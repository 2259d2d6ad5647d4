#include "lamina/gemm.h"

#include <algorithm>

#include "lamina/threading.h"

namespace lamina {

namespace {

// Element accessors for op(A) (m, k) and op(B) (k, n).
template <typename T>
inline T at_a(bool trans, const T* A, index_t lda, index_t i, index_t p) {
    return trans ? A[p * lda + i] : A[i * lda + p];
}
template <typename T>
inline T at_b(bool trans, const T* B, index_t ldb, index_t p, index_t j) {
    return trans ? B[j * ldb + p] : B[p * ldb + j];
}

constexpr index_t kRowTile = 4;    // rows of C per task
constexpr index_t kColTile = 256;  // columns of C per task

// One (rows, cols) tile of C = alpha * op(A) op(B) + beta * C, summing over p in ascending order.
template <typename T>
void gemm_tile(bool ta, bool tb, index_t i0, index_t i1, index_t j0, index_t j1, index_t k,
               T alpha, const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
               index_t ldc) {
    T acc[kColTile];
    for (index_t i = i0; i < i1; ++i) {
        const index_t w = j1 - j0;
        std::fill(acc, acc + w, T(0));
        if (!tb) {
            // acc (w) += a_ip * B[p, j0:j1]: contiguous rows of B, vectorizes.
            for (index_t p = 0; p < k; ++p) {
                const T a = at_a(ta, A, lda, i, p);
                const T* b = B + p * ldb + j0;
                for (index_t j = 0; j < w; ++j) acc[j] += a * b[j];
            }
        } else {
            for (index_t j = 0; j < w; ++j) {
                const T* b = B + (j0 + j) * ldb;
                T s = 0;
                if (!ta) {
                    const T* a = A + i * lda;
                    for (index_t p = 0; p < k; ++p) s += a[p] * b[p];
                } else {
                    for (index_t p = 0; p < k; ++p) s += A[p * lda + i] * b[p];
                }
                acc[j] = s;
            }
        }
        T* c = C + i * ldc + j0;
        if (beta == T(0)) {
            for (index_t j = 0; j < w; ++j) c[j] = alpha * acc[j];
        } else {
            for (index_t j = 0; j < w; ++j) c[j] = alpha * acc[j] + beta * c[j];
        }
    }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
          index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    if (m <= 0 || n <= 0) return;
    const index_t row_tiles = (m + kRowTile - 1) / kRowTile;
    const index_t col_tiles = (n + kColTile - 1) / kColTile;
    const index_t tiles = row_tiles * col_tiles;
    const bool parallel = 2 * m * n * k >= kParallelMinFlops && tiles > 1;
#pragma omp parallel for schedule(static) if (parallel)
    for (index_t t = 0; t < tiles; ++t) {
        const index_t i0 = (t / col_tiles) * kRowTile, j0 = (t % col_tiles) * kColTile;
        gemm_tile(trans_a, trans_b, i0, std::min(m, i0 + kRowTile), j0, std::min(n, j0 + kColTile),
                  k, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

template <typename T>
void gemm_naive(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
                index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    for (index_t i = 0; i < m; ++i) {
        for (index_t j = 0; j < n; ++j) {
            T s = 0;
            for (index_t p = 0; p < k; ++p)
                s += at_a(trans_a, A, lda, i, p) * at_b(trans_b, B, ldb, p, j);
            T& c = C[i * ldc + j];
            c = beta == T(0) ? alpha * s : alpha * s + beta * c;
        }
    }
}

std::string gemm_kernel_name() { return "generic"; }

#define LAMINA_INSTANTIATE_GEMM(T)                                                          \
    template void gemm<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t,      \
                          const T*, index_t, T, T*, index_t);                              \
    template void gemm_naive<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t, \
                                const T*, index_t, T, T*, index_t);
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
