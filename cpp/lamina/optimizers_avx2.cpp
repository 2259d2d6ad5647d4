// RMSprop's float32 update with AVX2/FMA. 1/sqrt(v + eps) comes from vrsqrtps refined by one
// Newton step (relative error about 2e-7, float32's own rounding) instead of a square root and
// a division, which cost about three times as many cycles and bound the batch-1 step.
// Compiled with -mavx2 -mfma; everything but the entry point has internal linkage (see gemm_avx2.cpp).
#include "lamina/optimizers_avx2.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace lamina {

namespace {

inline __m256 rsqrt_newton(__m256 x) {
    const __m256 y = _mm256_rsqrt_ps(x);
    const __m256 half_x_yy = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_mul_ps(y, y));
    return _mm256_mul_ps(y, _mm256_sub_ps(_mm256_set1_ps(1.5f), half_x_yy));
}

// Eight lanes: v <- rho v + (1 - rho) g^2; w <- w - lr g / sqrt(v + eps).
inline void update8(float* w, float* v, __m256 gi, __m256i mask, bool full, __m256 rho,
                    __m256 one_minus_rho, __m256 lr, __m256 eps) {
    __m256 vi = full ? _mm256_loadu_ps(v) : _mm256_maskload_ps(v, mask);
    __m256 wi = full ? _mm256_loadu_ps(w) : _mm256_maskload_ps(w, mask);
    vi = _mm256_add_ps(_mm256_mul_ps(rho, vi), _mm256_mul_ps(one_minus_rho, _mm256_mul_ps(gi, gi)));
    const __m256 scale = rsqrt_newton(_mm256_add_ps(vi, eps));
    wi = _mm256_sub_ps(wi, _mm256_mul_ps(_mm256_mul_ps(lr, gi), scale));
    if (full) {
        _mm256_storeu_ps(v, vi);
        _mm256_storeu_ps(w, wi);
    } else {
        _mm256_maskstore_ps(v, mask, vi);
        _mm256_maskstore_ps(w, mask, wi);
    }
}

}  // namespace

void rmsprop_row_update_f32_avx2(float* w, float* v, float x, const float* dz, index_t units,
                                 float lr, float rho, float eps) {
    const __m256 vrho = _mm256_set1_ps(rho), vomr = _mm256_set1_ps(1.0f - rho);
    const __m256 vlr = _mm256_set1_ps(lr), veps = _mm256_set1_ps(eps), vx = _mm256_set1_ps(x);
    const __m256i all = _mm256_set1_epi32(-1);
    index_t j = 0;
    // g = x dz, one rounding: what rank_n_rows gives for one sample.
    for (; j + 8 <= units; j += 8)
        update8(w + j, v + j, _mm256_mul_ps(vx, _mm256_loadu_ps(dz + j)), all, true, vrho, vomr, vlr, veps);
    if (j < units) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(units - j)), lane);
        update8(w + j, v + j, _mm256_mul_ps(vx, _mm256_maskload_ps(dz + j, mask)), mask, false, vrho, vomr,
                vlr, veps);
    }
}

void rmsprop_update_f32_avx2(float* w, float* v, const float* g, index_t n, float lr, float rho,
                             float eps) {
    const __m256 vrho = _mm256_set1_ps(rho), vomr = _mm256_set1_ps(1.0f - rho);
    const __m256 vlr = _mm256_set1_ps(lr), veps = _mm256_set1_ps(eps);
    const __m256i all = _mm256_set1_epi32(-1);
    index_t i = 0;
    for (; i + 8 <= n; i += 8) update8(w + i, v + i, _mm256_loadu_ps(g + i), all, true, vrho, vomr, vlr, veps);
    if (i < n) {
        // The tail goes through the same instructions (masked), so every element is computed
        // alike wherever a span happens to end.
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
        update8(w + i, v + i, _mm256_maskload_ps(g + i, mask), mask, false, vrho, vomr, vlr, veps);
    }
}

}  // namespace lamina
#endif
