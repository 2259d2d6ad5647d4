// rank_n_rows with AVX2/FMA: each row of g is built 8 registers wide (64 floats / 32 doubles)
// with the n samples accumulated in registers, so g is stored once rather than loaded and
// stored n times (the plain loop is bound by those stores). Then single registers, then a
// masked tail, all with the same per-element arithmetic. Compiled with -mavx2 -mfma; everything
// but the entry points has internal linkage (see gemm_avx2.cpp).
#include "lamina/rank_update.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace lamina {

namespace {

struct F32 {
    using T = float;
    using V = __m256;
    static constexpr index_t kLanes = 8;
    static V set1(T a) { return _mm256_set1_ps(a); }
    static V load(const T* p) { return _mm256_loadu_ps(p); }
    static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static __m256i tail_mask(index_t count) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V load_masked(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void store_masked(T* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
};

struct F64 {
    using T = double;
    using V = __m256d;
    static constexpr index_t kLanes = 4;
    static V set1(T a) { return _mm256_set1_pd(a); }
    static V load(const T* p) { return _mm256_loadu_pd(p); }
    static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static __m256i tail_mask(index_t count) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static V load_masked(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void store_masked(T* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
};

// g[0 : R * lanes] of one row from the n samples' dz[:, j0 : ...]; a(r) = x[r * in].
// Masked: only the first `count` lanes of the single register are read and written.
template <class S, int R, bool Masked>
inline void row_block(typename S::T* g, const typename S::T* x, index_t in, const typename S::T* dz,
                      index_t units, index_t n, __m256i mask) {
    using V = typename S::V;
    constexpr index_t L = S::kLanes;
    auto load = [&](const typename S::T* p) { return Masked ? S::load_masked(p, mask) : S::load(p); };
    V acc[R];
    const V a0 = S::set1(x[0]);
#pragma GCC unroll 8
    for (int v = 0; v < R; ++v) acc[v] = S::mul(a0, load(dz + v * L));
    for (index_t r = 1; r < n; ++r) {
        const typename S::T a = x[r * in];
        if (a == 0) continue;
        const V ar = S::set1(a);
        const typename S::T* dzr = dz + r * units;
#pragma GCC unroll 8
        for (int v = 0; v < R; ++v) acc[v] = S::fma(ar, load(dzr + v * L), acc[v]);
    }
#pragma GCC unroll 8
    for (int v = 0; v < R; ++v) {
        if (Masked) S::store_masked(g + v * L, mask, acc[v]);
        else S::store(g + v * L, acc[v]);
    }
}

template <class S>
void rank_n_rows_avx2(typename S::T* g, const typename S::T* x, index_t in, const typename S::T* dz,
                      index_t units, index_t n, index_t rows) {
    constexpr index_t L = S::kLanes, kWide = 8 * L;
    const __m256i none = _mm256_setzero_si256();
    // Column chunks outer, rows inner: the n samples' slice of dz for one chunk stays in L1
    // while every row of the block uses it.
    index_t j = 0;
    for (; j + kWide <= units; j += kWide)
        for (index_t i = 0; i < rows; ++i) row_block<S, 8, false>(g + i * units + j, x + i, in, dz + j, units, n, none);
    for (; j + L <= units; j += L)
        for (index_t i = 0; i < rows; ++i) row_block<S, 1, false>(g + i * units + j, x + i, in, dz + j, units, n, none);
    if (j < units) {
        const __m256i mask = S::tail_mask(units - j);
        for (index_t i = 0; i < rows; ++i) row_block<S, 1, true>(g + i * units + j, x + i, in, dz + j, units, n, mask);
    }
}

}  // namespace

void rank_n_rows_f32_avx2(float* g, const float* x, index_t in, const float* dz, index_t units,
                          index_t n, index_t rows) {
    rank_n_rows_avx2<F32>(g, x, in, dz, units, n, rows);
}

void rank_n_rows_f64_avx2(double* g, const double* x, index_t in, const double* dz, index_t units,
                          index_t n, index_t rows) {
    rank_n_rows_avx2<F64>(g, x, in, dz, units, n, rows);
}

}  // namespace lamina
#endif
