// The AVX-512F (+VL) operations the kernels use, one trait per element type: Zmm<float> (16
// lanes) and Zmm<double> (8 lanes) give the same names, so gemm_avx512.cpp writes each kernel
// once as a template on T. Include this ONLY from translation units compiled with the AVX-512
// flags: all of it has internal linkage (an anonymous namespace), so no AVX-512 copy of an
// inline function can be merged with another TU's (numpy#25274). No std:: templates here for
// the same reason.
#pragma once
#if !defined(__AVX512F__) || !defined(__AVX512VL__)
#error "simd_avx512.h belongs to the translation units compiled with -mavx512f -mavx512vl"
#endif
#include <immintrin.h>

#include <cstdint>

#include "lamina/matrix.h"

namespace lamina {
namespace gemm_detail {
namespace {

template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
    using V = __m512;
    using Mask = __mmask16;
    using Offs = __m512i;  // one int32 offset per lane
    static constexpr int L = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    // a * b + c in the lanes of k, c elsewhere (c's lanes outside k are not changed at all).
    static V fma_where(Mask k, V a, V b, V c) { return _mm512_mask3_fmadd_ps(a, b, c, k); }
    // Lanes [0, n) set, n clamped to [0, L].
    static Mask first(index_t n) { return static_cast<Mask>(n >= L ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u); }
    // Lanes (of valid) that are not zero: unordered not-equal, so NaN counts as nonzero.
    static Mask nonzero(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
    static Mask nonzero(Mask valid, V x) { return _mm512_mask_cmp_ps_mask(valid, x, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
    static V compress(Mask m, V x) { return _mm512_maskz_compress_ps(m, x); }
    // Offsets first + l * step in lane l; every lane plus d; the lanes of m packed to the front.
    static Offs offs_iota(std::int32_t first, std::int32_t step) {
        return _mm512_add_epi32(_mm512_set1_epi32(first),
                                _mm512_mullo_epi32(_mm512_set1_epi32(step),
                                                   _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                                     14, 15)));
    }
    static Offs offs_add(Offs o, std::int32_t d) { return _mm512_add_epi32(o, _mm512_set1_epi32(d)); }
    static Offs offs_compress(Mask m, Offs o) { return _mm512_maskz_compress_epi32(m, o); }
    static void offs_store(std::int32_t* p, Offs o) { _mm512_storeu_si512(p, o); }
    static void offs_store(std::int32_t* p, Mask m, Offs o) { _mm512_mask_storeu_epi32(p, m, o); }
};

template <>
struct Zmm<double> {
    using V = __m512d;
    using Mask = __mmask8;
    using Offs = __m256i;
    static constexpr int L = 8;
    static V zero() { return _mm512_setzero_pd(); }
    static V set1(double x) { return _mm512_set1_pd(x); }
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static V load(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static void store(double* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static V fma_where(Mask k, V a, V b, V c) { return _mm512_mask3_fmadd_pd(a, b, c, k); }
    static Mask first(index_t n) { return static_cast<Mask>(n >= L ? 0xFFu : n <= 0 ? 0u : (1u << n) - 1u); }
    static Mask nonzero(V x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NEQ_UQ); }
    static Mask nonzero(Mask valid, V x) { return _mm512_mask_cmp_pd_mask(valid, x, _mm512_setzero_pd(), _CMP_NEQ_UQ); }
    static V compress(Mask m, V x) { return _mm512_maskz_compress_pd(m, x); }
    static Offs offs_iota(std::int32_t first, std::int32_t step) {
        return _mm256_add_epi32(_mm256_set1_epi32(first),
                                _mm256_mullo_epi32(_mm256_set1_epi32(step), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    }
    static Offs offs_add(Offs o, std::int32_t d) { return _mm256_add_epi32(o, _mm256_set1_epi32(d)); }
    static Offs offs_compress(Mask m, Offs o) { return _mm256_maskz_compress_epi32(m, o); }
    static void offs_store(std::int32_t* p, Offs o) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), o); }
    static void offs_store(std::int32_t* p, Mask m, Offs o) { _mm256_mask_storeu_epi32(p, m, o); }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace lamina
