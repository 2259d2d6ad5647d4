// AVX2 + FMA micro-kernels. This translation unit alone is compiled with -mavx2 -mfma, so
// everything here has internal linkage except gemm_avx2_kernels(), the one entry the dispatcher
// in gemm.cpp calls after checking the CPU (an inline function with external linkage could be
// merged with another TU's copy and run AVX2 code on a CPU without it; numpy#25274).
#include "lamina/gemm_kernels.h"

#if defined(LAMINA_HAVE_AVX2_TU) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace lamina {
namespace gemm_detail {
namespace {

// One row of a float tile: c[0:16] = alpha * (r0, r1) + beta * c[0:16]; c not read if beta0.
inline void sstore_row(__m256 r0, __m256 r1, __m256 va, __m256 vb, bool beta0, float* c) {
    r0 = _mm256_mul_ps(va, r0);
    r1 = _mm256_mul_ps(va, r1);
    if (!beta0) {
        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), r1);
    }
    _mm256_storeu_ps(c, r0);
    _mm256_storeu_ps(c + 8, r1);
}

// C (6, 16) = alpha * a (6, k packed) * b (k, 16, row stride rs_b) + beta * C.
// 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers.
void sgemm_avx2_6x16(index_t k, const float* a, const float* b, index_t rs_b, float alpha,
                     float beta, float* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40);
        c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50);
        c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += 6;
        b += rs_b;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    if (mr == 6 && nr == 16 && cs_c == 1) {
        sstore_row(c00, c01, va, vb, beta0, c + 0 * rs_c);
        sstore_row(c10, c11, va, vb, beta0, c + 1 * rs_c);
        sstore_row(c20, c21, va, vb, beta0, c + 2 * rs_c);
        sstore_row(c30, c31, va, vb, beta0, c + 3 * rs_c);
        sstore_row(c40, c41, va, vb, beta0, c + 4 * rs_c);
        sstore_row(c50, c51, va, vb, beta0, c + 5 * rs_c);
        return;
    }
    // Edge or strided tile: same arithmetic on a stack copy, then copy the valid part out.
    alignas(64) float t[6 * 16] = {};
    if (!beta0)
        for (index_t i = 0; i < mr; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * 16 + j] = c[i * rs_c + j * cs_c];
    sstore_row(c00, c01, va, vb, beta0, t + 0 * 16);
    sstore_row(c10, c11, va, vb, beta0, t + 1 * 16);
    sstore_row(c20, c21, va, vb, beta0, t + 2 * 16);
    sstore_row(c30, c31, va, vb, beta0, t + 3 * 16);
    sstore_row(c40, c41, va, vb, beta0, t + 4 * 16);
    sstore_row(c50, c51, va, vb, beta0, t + 5 * 16);
    for (index_t i = 0; i < mr; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * 16 + j];
}

// One row of a double tile: c[0:8] = alpha * (r0, r1) + beta * c[0:8]; c not read if beta0.
inline void dstore_row(__m256d r0, __m256d r1, __m256d va, __m256d vb, bool beta0, double* c) {
    r0 = _mm256_mul_pd(va, r0);
    r1 = _mm256_mul_pd(va, r1);
    if (!beta0) {
        r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c), r0);
        r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + 4), r1);
    }
    _mm256_storeu_pd(c, r0);
    _mm256_storeu_pd(c + 4, r1);
}

// C (6, 8) = alpha * a (6, k packed) * b (k, 8, row stride rs_b) + beta * C. Same shape of
// register use as the float kernel.
void dgemm_avx2_6x8(index_t k, const double* a, const double* b, index_t rs_b, double alpha,
                    double beta, double* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
        __m256d ai = _mm256_broadcast_sd(a + 0);
        c00 = _mm256_fmadd_pd(ai, b0, c00);
        c01 = _mm256_fmadd_pd(ai, b1, c01);
        ai = _mm256_broadcast_sd(a + 1);
        c10 = _mm256_fmadd_pd(ai, b0, c10);
        c11 = _mm256_fmadd_pd(ai, b1, c11);
        ai = _mm256_broadcast_sd(a + 2);
        c20 = _mm256_fmadd_pd(ai, b0, c20);
        c21 = _mm256_fmadd_pd(ai, b1, c21);
        ai = _mm256_broadcast_sd(a + 3);
        c30 = _mm256_fmadd_pd(ai, b0, c30);
        c31 = _mm256_fmadd_pd(ai, b1, c31);
        ai = _mm256_broadcast_sd(a + 4);
        c40 = _mm256_fmadd_pd(ai, b0, c40);
        c41 = _mm256_fmadd_pd(ai, b1, c41);
        ai = _mm256_broadcast_sd(a + 5);
        c50 = _mm256_fmadd_pd(ai, b0, c50);
        c51 = _mm256_fmadd_pd(ai, b1, c51);
        a += 6;
        b += rs_b;
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    const bool beta0 = beta == 0.0;
    if (mr == 6 && nr == 8 && cs_c == 1) {
        dstore_row(c00, c01, va, vb, beta0, c + 0 * rs_c);
        dstore_row(c10, c11, va, vb, beta0, c + 1 * rs_c);
        dstore_row(c20, c21, va, vb, beta0, c + 2 * rs_c);
        dstore_row(c30, c31, va, vb, beta0, c + 3 * rs_c);
        dstore_row(c40, c41, va, vb, beta0, c + 4 * rs_c);
        dstore_row(c50, c51, va, vb, beta0, c + 5 * rs_c);
        return;
    }
    alignas(64) double t[6 * 8] = {};
    if (!beta0)
        for (index_t i = 0; i < mr; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * 8 + j] = c[i * rs_c + j * cs_c];
    dstore_row(c00, c01, va, vb, beta0, t + 0 * 8);
    dstore_row(c10, c11, va, vb, beta0, t + 1 * 8);
    dstore_row(c20, c21, va, vb, beta0, t + 2 * 8);
    dstore_row(c30, c31, va, vb, beta0, t + 3 * 8);
    dstore_row(c40, c41, va, vb, beta0, t + 4 * 8);
    dstore_row(c50, c51, va, vb, beta0, t + 5 * 8);
    for (index_t i = 0; i < mr; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * 8 + j];
}

static_assert(BlockingF32::MR == 6 && BlockingF32::NR == 16, "sgemm_avx2_6x16 tile");
static_assert(BlockingF64::MR == 6 && BlockingF64::NR == 8, "dgemm_avx2_6x8 tile");

const GemmKernelTable kAvx2Kernels = {"avx2_fma", &sgemm_avx2_6x16, &dgemm_avx2_6x8};

}  // namespace

const GemmKernelTable* gemm_avx2_kernels() { return &kAvx2Kernels; }

}  // namespace gemm_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX2_TU && __AVX2__ && __FMA__
