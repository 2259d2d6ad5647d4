// AVX2 + FMA micro-kernels. This translation unit alone is compiled with -mavx2 -mfma, so
// everything here has internal linkage except gemm_avx2_kernels(), the one entry the dispatcher
// in gemm.cpp calls after checking the CPU (an inline function with external linkage could be
// merged with another TU's copy and run AVX2 code on a CPU without it; numpy#25274).
#include "lamina/gemm_kernels.h"

#if defined(LAMINA_HAVE_AVX2_TU) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <type_traits>

namespace lamina {
namespace gemm_detail {
namespace {

// C (M, 16) = alpha * a (6, k packed; rows >= M ignored) * b (k, 16, row stride rs_b) + beta * C.
// 2*M accumulators + 2 B vectors + 1 broadcast <= 15 of the 16 ymm registers. Rows are
// independent, so computing only the M valid rows gives them bit-for-bit the values of a full
// tile while skipping wasted FMAs (m = 1..5 problems).
// With Steps, only the listed depth steps: step p's row of b at b + steps[p] (see
// gemm_kernels.h, SgemmStepsUkr); the same instructions otherwise.
template <int M, bool Steps = false, bool InPlaceA = false>
void sgemm_avx2_rows(index_t k, const float* a, const float* b, index_t rs_b, float alpha,
                     float beta, float* c, index_t rs_c, index_t cs_c, index_t nr,
                     const std::int32_t* steps = nullptr, index_t lda = 0) {
    __m256 acc[M][2];
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const float* bp = Steps ? b + steps[p] : b;
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + (InPlaceA ? i * lda : i));
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += InPlaceA ? 1 : 6;
        if (!Steps) b += rs_b;
    }
    // c = alpha * acc + beta * c, row by row; c is not read when beta == 0.
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    auto store = [&](float* dst, index_t ld) {
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (!beta0) {
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(dst + i * ld), r0);
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(dst + i * ld + 8), r1);
            }
            _mm256_storeu_ps(dst + i * ld, r0);
            _mm256_storeu_ps(dst + i * ld + 8, r1);
        }
    };
    if (nr == 16 && cs_c == 1) {
        store(c, rs_c);
        return;
    }
    // Edge or strided tile: same arithmetic on a stack copy, then copy the valid part out.
    alignas(64) float t[M * 16] = {};
    if (!beta0)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * 16 + j] = c[i * rs_c + j * cs_c];
    store(t, 16);
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * 16 + j];
}

// C (6, 16) float micro-kernel: dispatches on the number of valid rows.
void sgemm_avx2_6x16(index_t k, const float* a, const float* b, index_t rs_b, float alpha,
                     float beta, float* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return sgemm_avx2_rows<1>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return sgemm_avx2_rows<2>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 3: return sgemm_avx2_rows<3>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 4: return sgemm_avx2_rows<4>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 5: return sgemm_avx2_rows<5>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        default: return sgemm_avx2_rows<6>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// C (M, 8) = alpha * a (6, k packed) * b (k, 8, row stride rs_b) + beta * C: the float kernel's
// register layout with 4 doubles per vector.
template <int M, bool Steps = false, bool InPlaceA = false>
void dgemm_avx2_rows(index_t k, const double* a, const double* b, index_t rs_b, double alpha,
                     double beta, double* c, index_t rs_c, index_t cs_c, index_t nr,
                     const std::int32_t* steps = nullptr, index_t lda = 0) {
    __m256d acc[M][2];
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const double* bp = Steps ? b + steps[p] : b;
        const __m256d b0 = _mm256_loadu_pd(bp), b1 = _mm256_loadu_pd(bp + 4);
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            const __m256d ai = _mm256_broadcast_sd(a + (InPlaceA ? i * lda : i));
            acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
        }
        a += InPlaceA ? 1 : 6;
        if (!Steps) b += rs_b;
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    const bool beta0 = beta == 0.0;
    auto store = [&](double* dst, index_t ld) {
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            __m256d r0 = _mm256_mul_pd(va, acc[i][0]), r1 = _mm256_mul_pd(va, acc[i][1]);
            if (!beta0) {
                r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(dst + i * ld), r0);
                r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(dst + i * ld + 4), r1);
            }
            _mm256_storeu_pd(dst + i * ld, r0);
            _mm256_storeu_pd(dst + i * ld + 4, r1);
        }
    };
    if (nr == 8 && cs_c == 1) {
        store(c, rs_c);
        return;
    }
    alignas(64) double t[M * 8] = {};
    if (!beta0)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * 8 + j] = c[i * rs_c + j * cs_c];
    store(t, 8);
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * 8 + j];
}

// C (6, 8) double micro-kernel: dispatches on the number of valid rows.
void dgemm_avx2_6x8(index_t k, const double* a, const double* b, index_t rs_b, double alpha,
                    double beta, double* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return dgemm_avx2_rows<1>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return dgemm_avx2_rows<2>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 3: return dgemm_avx2_rows<3>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 4: return dgemm_avx2_rows<4>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        case 5: return dgemm_avx2_rows<5>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
        default: return dgemm_avx2_rows<6>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// C (6, 16) float tile over the listed depth steps only (gemm_kernels.h, SgemmStepsUkr).
void sgemm_avx2_6x16_steps(index_t count, const float* a, const float* b, const std::int32_t* steps, float alpha,
                           float beta, float* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return sgemm_avx2_rows<1, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 2: return sgemm_avx2_rows<2, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 3: return sgemm_avx2_rows<3, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 4: return sgemm_avx2_rows<4, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 5: return sgemm_avx2_rows<5, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
        default: return sgemm_avx2_rows<6, true>(count, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, steps);
    }
}

// C (6, 8) double tile over the listed depth steps only (gemm_kernels.h, DgemmStepsUkr).
void dgemm_avx2_6x8_steps(index_t count, const double* a, const double* b, const std::int32_t* steps, double alpha,
                          double beta, double* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return dgemm_avx2_rows<1, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 2: return dgemm_avx2_rows<2, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 3: return dgemm_avx2_rows<3, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 4: return dgemm_avx2_rows<4, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
        case 5: return dgemm_avx2_rows<5, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
        default: return dgemm_avx2_rows<6, true>(count, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, steps);
    }
}

// C (6, 16) float / (6, 8) double tile with A read in place (gemm_kernels.h, SgemmRowsUkr):
// dispatches on the number of valid rows.
template <typename T>
void gemm_avx2_in_place_a(index_t k, const T* a, index_t lda, const T* b, T alpha, T beta, T* c, index_t rs_c,
                          index_t cs_c, index_t mr, index_t nr) {
    auto run = [&](auto rows) {
        constexpr int M = decltype(rows)::value;
        if constexpr (std::is_same_v<T, float>)
            sgemm_avx2_rows<M, false, true>(k, a, b, 16, alpha, beta, c, rs_c, cs_c, nr, nullptr, lda);
        else
            dgemm_avx2_rows<M, false, true>(k, a, b, 8, alpha, beta, c, rs_c, cs_c, nr, nullptr, lda);
    };
    switch (mr) {
        case 1: return run(std::integral_constant<int, 1>{});
        case 2: return run(std::integral_constant<int, 2>{});
        case 3: return run(std::integral_constant<int, 3>{});
        case 4: return run(std::integral_constant<int, 4>{});
        case 5: return run(std::integral_constant<int, 5>{});
        default: return run(std::integral_constant<int, 6>{});
    }
}

// x * y + z rounded once. (Not std::fma: an inline library function compiled here could be
// merged with other TUs' copies.)
inline float fma_scalar(float x, float y, float z) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(x), _mm_set_ss(y), _mm_set_ss(z)));
}
inline double fma_scalar(double x, double y, double z) {
    return _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(x), _mm_set_sd(y), _mm_set_sd(z)));
}

// Sum of the 8 lanes, in a fixed order.
inline float hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}
inline double hsum(__m256d v) {
    __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
    return _mm_cvtsd_f64(x);
}

// C (M, nr <= 4) = alpha * a (M, k) * b (nr, k)^T + beta * C, rows of a and b contiguous.
// 3 x 4 accumulators + 3 rows of a + 1 of b = 16 ymm registers at M = 3. Missing b rows
// (nr < 4) repeat the last valid one; their sums are discarded.
template <int M>
void sdot_avx2_rows(index_t k, const float* a, index_t lda, const float* b, index_t ldb,
                    float alpha, float beta, float* c, index_t rs_c, index_t cs_c, index_t nr) {
    const float* br[4];
    for (int j = 0; j < 4; ++j) br[j] = b + (j < nr ? j : nr - 1) * ldb;
    __m256 acc[M][4];
#pragma GCC unroll 3
    for (int i = 0; i < M; ++i)
        acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm256_setzero_ps();
    auto step = [&](const __m256* av, index_t p, __m256i mask, bool masked) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            const __m256 bv = masked ? _mm256_maskload_ps(br[j] + p, mask) : _mm256_loadu_ps(br[j] + p);
#pragma GCC unroll 3
            for (int i = 0; i < M; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    };
    index_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = _mm256_loadu_ps(a + i * lda + p);
        step(av, p, _mm256_setzero_si256(), false);
    }
    if (p < k) {  // tail: masked loads read nothing past row end, and give zeros
        const __m256i mask =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k - p)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = _mm256_maskload_ps(a + i * lda + p, mask);
        step(av, p, mask, true);
    }
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) {
            float& cij = c[i * rs_c + j * cs_c];
            const float s = alpha * hsum(acc[i][j]);
            cij = beta == 0.0f ? s : fma_scalar(beta, cij, s);
        }
}

// C (3, 4) float dot kernel: dispatches on the number of valid rows.
void sdot_avx2_3x4(index_t k, const float* a, index_t lda, const float* b, index_t ldb,
                   float alpha, float beta, float* c, index_t rs_c, index_t cs_c, index_t mr,
                   index_t nr) {
    switch (mr) {
        case 1: return sdot_avx2_rows<1>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return sdot_avx2_rows<2>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        default: return sdot_avx2_rows<3>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// C (M, nr <= 4) = alpha * a (M, k) * b (nr, k)^T + beta * C: the float dot kernel, 4 doubles
// per vector.
template <int M>
void ddot_avx2_rows(index_t k, const double* a, index_t lda, const double* b, index_t ldb,
                    double alpha, double beta, double* c, index_t rs_c, index_t cs_c, index_t nr) {
    const double* br[4];
    for (int j = 0; j < 4; ++j) br[j] = b + (j < nr ? j : nr - 1) * ldb;
    __m256d acc[M][4];
#pragma GCC unroll 3
    for (int i = 0; i < M; ++i)
        acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm256_setzero_pd();
    auto step = [&](const __m256d* av, index_t p, __m256i mask, bool masked) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            const __m256d bv = masked ? _mm256_maskload_pd(br[j] + p, mask) : _mm256_loadu_pd(br[j] + p);
#pragma GCC unroll 3
            for (int i = 0; i < M; ++i) acc[i][j] = _mm256_fmadd_pd(av[i], bv, acc[i][j]);
        }
    };
    index_t p = 0;
    for (; p + 4 <= k; p += 4) {
        __m256d av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = _mm256_loadu_pd(a + i * lda + p);
        step(av, p, _mm256_setzero_si256(), false);
    }
    if (p < k) {
        const __m256i mask =
            _mm256_cmpgt_epi64(_mm256_set1_epi64x(k - p), _mm256_setr_epi64x(0, 1, 2, 3));
        __m256d av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = _mm256_maskload_pd(a + i * lda + p, mask);
        step(av, p, mask, true);
    }
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) {
            double& cij = c[i * rs_c + j * cs_c];
            const double s = alpha * hsum(acc[i][j]);
            cij = beta == 0.0 ? s : fma_scalar(beta, cij, s);
        }
}

// C (3, 4) double dot kernel: dispatches on the number of valid rows.
void ddot_avx2_3x4(index_t k, const double* a, index_t lda, const double* b, index_t ldb,
                   double alpha, double beta, double* c, index_t rs_c, index_t cs_c, index_t mr,
                   index_t nr) {
    switch (mr) {
        case 1: return ddot_avx2_rows<1>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return ddot_avx2_rows<2>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        default: return ddot_avx2_rows<3>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// C (1, 8 * V) = alpha * a (1, k; stride inc_a) * b (k, 8 * V floats; row stride ldb) + beta * C.
// V accumulators; per column the same FMA chain, alpha and beta steps as sgemm_avx2_rows.
template <int V>
void sgemv_avx2_row(index_t k, const float* a, index_t inc_a, const float* b, index_t ldb,
                    float alpha, float beta, float* c) {
    __m256 acc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
    for (index_t p = 0; p < k; ++p, a += inc_a, b += ldb) {
        if (*a == 0) continue;  // a zero input adds nothing: skip its row of b (see gemm_kernels.h)
        const __m256 ap = _mm256_broadcast_ss(a);
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[v] = _mm256_fmadd_ps(ap, _mm256_loadu_ps(b + 8 * v), acc[v]);
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
        __m256 r = _mm256_mul_ps(va, acc[v]);
        if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8 * v), r);
        _mm256_storeu_ps(c + 8 * v, r);
    }
}

// C (1, 64) float row-vector kernel.
void sgemv_avx2_1x64(index_t k, const float* a, index_t inc_a, const float* b, index_t ldb,
                     float alpha, float beta, float* c) {
    sgemv_avx2_row<8>(k, a, inc_a, b, ldb, alpha, beta, c);
}

// C (1, 4 * V) doubles: the float row-vector kernel with 4 doubles per vector.
template <int V>
void dgemv_avx2_row(index_t k, const double* a, index_t inc_a, const double* b, index_t ldb,
                    double alpha, double beta, double* c) {
    __m256d acc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_pd();
    for (index_t p = 0; p < k; ++p, a += inc_a, b += ldb) {
        if (*a == 0) continue;  // a zero input adds nothing: skip its row of b (see gemm_kernels.h)
        const __m256d ap = _mm256_broadcast_sd(a);
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[v] = _mm256_fmadd_pd(ap, _mm256_loadu_pd(b + 4 * v), acc[v]);
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
        __m256d r = _mm256_mul_pd(va, acc[v]);
        if (beta != 0.0) r = _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + 4 * v), r);
        _mm256_storeu_pd(c + 4 * v, r);
    }
}

// C (1, 32) double row-vector kernel.
void dgemv_avx2_1x32(index_t k, const double* a, index_t inc_a, const double* b, index_t ldb,
                     double alpha, double beta, double* c) {
    dgemv_avx2_row<8>(k, a, inc_a, b, ldb, alpha, beta, c);
}

// c (1, W) = [c +] sum_q vals[q] * b[offs[q] :], one full row of the sparse-row path
// (gemm_kernels.h): 8 accumulators of L lanes (W = 8 * L columns), one FMA chain per column as
// in sgemm_avx2_rows. Each listed step costs a broadcast, an offset load and 8 loads of b, so
// this runs below the 6 x 16 kernel's FMA rate, but does no work for any zero of A.
template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
    using V = __m256;
    static constexpr int L = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Lanes<double> {
    using V = __m256d;
    static constexpr int L = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};

// One full row of W = 8 * L columns at c.
template <typename T>
void sparse_row_avx2_full(index_t count, const std::int32_t* offs, const T* vals, const T* b,
                          bool accumulate, T* c) {
    using X = Lanes<T>;
    constexpr int L = X::L;
    typename X::V acc[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) acc[v] = X::zero();
#pragma GCC unroll 4
    for (index_t q = 0; q < count; ++q) {
        const T* bq = b + offs[q];
        const typename X::V a = X::bcast(vals + q);
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) acc[v] = X::fma(a, X::load(bq + L * v), acc[v]);
    }
    // The block's sum is added to C once, as the micro-kernel does (c = 1 * c + acc).
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) X::store(c + L * v, accumulate ? X::add(X::load(c + L * v), acc[v]) : acc[v]);
}

// The rows of the sparse-row path, one after another (gemm_kernels.h, SgemmSparseRowsUkr).
template <typename T>
void sparse_rows_avx2(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                      index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    constexpr index_t W = 8 * Lanes<T>::L;
    if (nr == W) {
        for (index_t r = 0; r < rows; ++r, offs += cap, vals += cap, c += ldc)
            sparse_row_avx2_full(counts[r], offs, vals, b, accumulate, c);
        return;
    }
    // Edge panel: the same arithmetic on a stack row, valid part copied out.
    for (index_t r = 0; r < rows; ++r, offs += cap, vals += cap, c += ldc) {
        alignas(32) T edge[W] = {};
        if (accumulate)
            for (index_t j = 0; j < nr; ++j) edge[j] = c[j];
        sparse_row_avx2_full(counts[r], offs, vals, b, accumulate, edge);
        for (index_t j = 0; j < nr; ++j) c[j] = edge[j];
    }
}

void sgemm_avx2_sparse_rows(index_t rows, const index_t* counts, const std::int32_t* offs, const float* vals,
                            index_t cap, const float* b, bool accumulate, float* c, index_t ldc, index_t nr) {
    sparse_rows_avx2<float>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
}
void dgemm_avx2_sparse_rows(index_t rows, const index_t* counts, const std::int32_t* offs, const double* vals,
                            index_t cap, const double* b, bool accumulate, double* c, index_t ldc, index_t nr) {
    sparse_rows_avx2<double>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
}

// The entries p .. len - 1 after the whole vectors, appended at count: branch-free, as the
// portable twin. Returns the final count.
template <typename T>
index_t compress_tail(const T* a, index_t p, index_t len, std::int32_t first_off, std::int32_t off_step,
                      std::int32_t* offs, T* vals, index_t count) {
    std::int32_t o = first_off + static_cast<std::int32_t>(p) * off_step;
    for (; p < len; ++p, o += off_step) {
        vals[count] = a[p];
        offs[count] = o;
        count += a[p] != T(0) ? 1 : 0;
    }
    return count;
}

// For each 8-bit mask of nonzero lanes, the lane indices of the set bits first (a permutation
// that packs the nonzeros of 8 floats to the front), and how many bits are set (no POPCNT
// needed beyond AVX2).
struct CompressTable {
    alignas(32) std::int32_t lanes[256][8];
    std::int32_t count[256];
};
constexpr CompressTable make_compress_table() {
    CompressTable t{};
    for (int mask = 0; mask < 256; ++mask) {
        int out = 0;
        for (int lane = 0; lane < 8; ++lane)
            if (mask >> lane & 1) t.lanes[mask][out++] = lane;
        t.count[mask] = out;
    }
    return t;
}
constexpr CompressTable kCompressTable = make_compress_table();

// Nonzero entries of 8 floats at a time (gemm_kernels.h, SCompressUkr): compare, look up the
// packing permutation, store all 8 permuted values and offsets, advance by the nonzero count.
index_t scompress_avx2(const float* a, index_t len, std::int32_t first_off, std::int32_t off_step,
                       std::int32_t* offs, float* vals) {
    index_t count = 0, p = 0;
    __m256i off = _mm256_add_epi32(_mm256_set1_epi32(first_off),
                                   _mm256_mullo_epi32(_mm256_set1_epi32(off_step),
                                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const __m256i off_8 = _mm256_set1_epi32(8 * off_step);
    for (; p + 8 <= len; p += 8) {
        const __m256 x = _mm256_loadu_ps(a + p);
        // Unordered not-equal: NaN counts as nonzero.
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompressTable.lanes[mask]));
        _mm256_storeu_ps(vals + count, _mm256_permutevar8x32_ps(x, perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(offs + count), _mm256_permutevar8x32_epi32(off, perm));
        count += kCompressTable.count[mask];
        off = _mm256_add_epi32(off, off_8);
    }
    return compress_tail(a, p, len, first_off, off_step, offs, vals, count);
}

// The same for 4 doubles: each double moves as a pair of 32-bit lanes; the offsets (4 int32)
// move with the 4-lane indices.
struct CompressTable4 {
    alignas(32) std::int32_t pairs[16][8];
    alignas(16) std::int32_t lanes[16][4];
    std::int32_t count[16];
};
constexpr CompressTable4 make_compress_table4() {
    CompressTable4 t{};
    for (int mask = 0; mask < 16; ++mask) {
        int out = 0;
        for (int lane = 0; lane < 4; ++lane)
            if (mask >> lane & 1) {
                t.pairs[mask][2 * out] = 2 * lane;
                t.pairs[mask][2 * out + 1] = 2 * lane + 1;
                t.lanes[mask][out++] = lane;
            }
        t.count[mask] = out;
    }
    return t;
}
constexpr CompressTable4 kCompressTable4 = make_compress_table4();

index_t dcompress_avx2(const double* a, index_t len, std::int32_t first_off, std::int32_t off_step,
                       std::int32_t* offs, double* vals) {
    index_t count = 0, p = 0;
    __m128i off = _mm_add_epi32(_mm_set1_epi32(first_off),
                                _mm_mullo_epi32(_mm_set1_epi32(off_step), _mm_setr_epi32(0, 1, 2, 3)));
    const __m128i off_4 = _mm_set1_epi32(4 * off_step);
    for (; p + 4 <= len; p += 4) {
        const __m256d x = _mm256_loadu_pd(a + p);
        const int mask = _mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NEQ_UQ));
        const __m256i pairs = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompressTable4.pairs[mask]));
        const __m128i lanes = _mm_load_si128(reinterpret_cast<const __m128i*>(kCompressTable4.lanes[mask]));
        _mm256_storeu_pd(vals + count, _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(x), pairs)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(offs + count),
                         _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(off), lanes)));
        count += kCompressTable4.count[mask];
        off = _mm_add_epi32(off, off_4);
    }
    return compress_tail(a, p, len, first_off, off_step, offs, vals, count);
}

static_assert(kGemvWF32 == 64 && kGemvWF64 == 32, "row-vector kernels are 1 x 64 / 1 x 32");
static_assert(kSparseWF32 == 64 && kSparseWF64 == 32, "sparse-row kernels are 8 vectors wide");
static_assert(kDotMR == 3 && kDotNR == 4, "dot kernels are 3 x 4");
static_assert(BlockingF32::MR == 6 && BlockingF32::NR == 16, "sgemm_avx2_6x16 tile");
static_assert(BlockingF64::MR == 6 && BlockingF64::NR == 8, "dgemm_avx2_6x8 tile");

const GemmKernelTable kAvx2Kernels = {"avx2", false, &sgemm_avx2_6x16, &dgemm_avx2_6x8,
                                       &sdot_avx2_3x4, &ddot_avx2_3x4,
                                       &sgemv_avx2_1x64, &dgemv_avx2_1x32,
                                       &sgemm_avx2_6x16_steps, &dgemm_avx2_6x8_steps,
                                       &sgemm_avx2_sparse_rows, &dgemm_avx2_sparse_rows,
                                       &scompress_avx2, &dcompress_avx2,
                                       &gemm_avx2_in_place_a<float>, &gemm_avx2_in_place_a<double>};

}  // namespace

const GemmKernelTable* gemm_avx2_kernels() { return &kAvx2Kernels; }

}  // namespace gemm_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX2_TU && __AVX2__ && __FMA__
