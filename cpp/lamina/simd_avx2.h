// The AVX2 + FMA operations the kernels use, one trait per element type: Avx2<float> (8 lanes)
// and Avx2<double> (4 lanes) give the same names, so gemm_avx2.cpp writes each kernel once as a
// template on T. Include this ONLY from translation units compiled with -mavx2 -mfma: all of it
// has internal linkage (an anonymous namespace), so no AVX2 copy of an inline function can be
// merged with another TU's (numpy#25274). No std:: templates here for the same reason.
#pragma once
#if !defined(__AVX2__) || !defined(__FMA__)
#error "simd_avx2.h belongs to the translation units compiled with -mavx2 -mfma"
#endif
#include <immintrin.h>

#include <cstdint>

#include "lamina/matrix.h"

namespace lamina {
namespace gemm_detail {
namespace {

// For each 8-bit mask of nonzero lanes, the lane indices of the set bits first (a permutation
// that packs the nonzeros of 8 floats to the front), and how many bits are set (no POPCNT
// needed beyond AVX2).
struct CompressTable8 {
    alignas(32) std::int32_t lanes[256][8];
    std::int32_t count[256];
};
constexpr CompressTable8 make_compress_table8() {
    CompressTable8 t{};
    for (int mask = 0; mask < 256; ++mask) {
        int out = 0;
        for (int lane = 0; lane < 8; ++lane)
            if (mask >> lane & 1) t.lanes[mask][out++] = lane;
        t.count[mask] = out;
    }
    return t;
}
constexpr CompressTable8 kCompressTable8 = make_compress_table8();

// The same for 4 doubles: each double moves as a pair of 32-bit lanes; its offset (an int32)
// moves with the 4-lane indices.
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

template <typename T>
struct Avx2;

template <>
struct Avx2<float> {
    using V = __m256;
    using Offs = __m256i;  // one int32 offset per lane
    static constexpr int L = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    // Lanes [0, n) of a mask for the masked loads and stores, 0 <= n <= L.
    static __m256i first(index_t n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V load(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
    // Sum of the lanes, in a fixed order.
    static float hsum(V v) {
        __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        x = _mm_add_ss(x, _mm_movehdup_ps(x));
        return _mm_cvtss_f32(x);
    }
    // x * y + z rounded once (not std::fma: a library function compiled here could be merged).
    static float fma1(float x, float y, float z) {
        return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(x), _mm_set_ss(y), _mm_set_ss(z)));
    }
    // Offsets first + l * step in lane l; every lane plus d.
    static Offs offs_iota(std::int32_t first, std::int32_t step) {
        return _mm256_add_epi32(_mm256_set1_epi32(first),
                                _mm256_mullo_epi32(_mm256_set1_epi32(step), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    }
    static Offs offs_add(Offs o, std::int32_t d) { return _mm256_add_epi32(o, _mm256_set1_epi32(d)); }
    // The nonzero lanes of x (unordered not-equal: NaN counts) and their offsets, packed to the
    // front and stored whole at vals / offs; returns how many there are.
    static int compress_store(V x, Offs off, float* vals, std::int32_t* offs) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompressTable8.lanes[mask]));
        _mm256_storeu_ps(vals, _mm256_permutevar8x32_ps(x, perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(offs), _mm256_permutevar8x32_epi32(off, perm));
        return kCompressTable8.count[mask];
    }
};

template <>
struct Avx2<double> {
    using V = __m256d;
    using Offs = __m128i;
    static constexpr int L = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static __m256i first(index_t n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static V load(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void store(double* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
    static double hsum(V v) {
        __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
        return _mm_cvtsd_f64(x);
    }
    static double fma1(double x, double y, double z) {
        return _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(x), _mm_set_sd(y), _mm_set_sd(z)));
    }
    static Offs offs_iota(std::int32_t first, std::int32_t step) {
        return _mm_add_epi32(_mm_set1_epi32(first), _mm_mullo_epi32(_mm_set1_epi32(step), _mm_setr_epi32(0, 1, 2, 3)));
    }
    static Offs offs_add(Offs o, std::int32_t d) { return _mm_add_epi32(o, _mm_set1_epi32(d)); }
    static int compress_store(V x, Offs off, double* vals, std::int32_t* offs) {
        const int mask = _mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NEQ_UQ));
        const __m256i pairs = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompressTable4.pairs[mask]));
        const __m128i lanes = _mm_load_si128(reinterpret_cast<const __m128i*>(kCompressTable4.lanes[mask]));
        _mm256_storeu_pd(vals, _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(x), pairs)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(offs), _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(off), lanes)));
        return kCompressTable4.count[mask];
    }
};

}  // namespace
}  // namespace gemm_detail
}  // namespace lamina
