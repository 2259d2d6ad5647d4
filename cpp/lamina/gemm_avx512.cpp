// AVX-512F (+VL) kernels of the GEMM kernel table, each written once as a template on the
// element type over the Zmm<T> trait (simd_avx512.h). This translation unit alone is compiled
// with the AVX-512 flags, so everything here has internal linkage except gemm_avx512_kernels(),
// the one entry the dispatcher in gemm.cpp calls after checking the CPU (numpy#25274; see
// gemm_avx2.cpp).
//
// The tiles use the 32 zmm registers: 12 rows x 2 vectors (12 x 32 floats, 12 x 16 doubles) is
// 24 accumulators, 2 vectors of B and a broadcast. Every element of C gets the AVX2 kernels'
// arithmetic exactly (one FMA chain per depth block, p ascending; c = alpha * acc, then
// fma(beta, c, .)), so the two kernels agree bit for bit wherever the depth blocks agree, which
// they do (both use KC = 256); the dot and row-vector kernels are the AVX2 ones. A tile whose
// rows run short computes only its valid rows; a tile whose columns end inside a vector computes
// on a stack tile with the same instructions and copies the valid part out (storing such a
// partial vector to C with a mask measured several times slower with 2 threads: bench/RESULTS.md),
// as does a strided C (cs_c != 1).
#include "lamina/gemm_kernels.h"

#if defined(LAMINA_HAVE_AVX512_TU) && defined(LAMINA_HAVE_AVX2_TU) && defined(__AVX512F__) && defined(__AVX512VL__)
#include <utility>

#include "lamina/simd_avx512.h"

namespace lamina {
namespace gemm_detail {
namespace {

// Packed A panels are this tall (BlockingF32Avx512::MR == BlockingF64Avx512::MR).
constexpr index_t kMR = 12;
static_assert(BlockingF32Avx512::MR == kMR && BlockingF64Avx512::MR == kMR, "12-row tiles");
static_assert(BlockingF32Avx512::NR == 2 * Zmm<float>::L && BlockingF64Avx512::NR == 2 * Zmm<double>::L,
              "two vectors per tile row");

// C (M, nr) = alpha * a (M, k) * b (k, NV vectors, row stride rs_b) + beta * C, nr in
// ((NV - 1) L, NV L]. a is a packed panel (element (i, p) at a[p * 12 + i]). With Steps only the
// listed depth steps: step p's row of b at b + steps[p].
// M * NV accumulators; rows and vectors past the tile's valid part are not computed at all.
template <typename T, int M, int NV, bool Steps>
void tile_avx512(index_t k, const T* a, const T* b, index_t rs_b, const std::int32_t* steps,
                 T alpha, T beta, T* c, index_t rs_c, index_t cs_c, index_t nr) {
    using X = Zmm<T>;
    using V = typename X::V;
    constexpr int L = X::L;
    if (cs_c == 1) {
#pragma GCC unroll 12
        for (int i = 0; i < M; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);
    }
    V acc[M][NV];
#pragma GCC unroll 12
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = X::zero();
#pragma GCC unroll 2
    for (index_t p = 0; p < k; ++p) {
        const T* bp = Steps ? b + steps[p] : b;
        V bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) bv[v] = X::load(bp + v * L);
#pragma GCC unroll 12
        for (int i = 0; i < M; ++i) {
            const V ai = X::set1(a[i]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[i][v] = X::fma(ai, bv[v], acc[i][v]);
        }
        a += kMR;
        if (!Steps) b += rs_b;
    }
    // c = alpha * acc [+ beta * c] on the first cols lanes; c is not read when beta == 0.
    const V va = X::set1(alpha), vb = X::set1(beta);
    const bool beta0 = beta == T(0);
    auto store = [&](T* dst, index_t ld, index_t cols) {
#pragma GCC unroll 12
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) {
                const typename X::Mask m = X::first(cols - v * L);
                V r = X::mul(va, acc[i][v]);
                if (!beta0) r = X::fma(vb, X::load(m, dst + i * ld + v * L), r);
                X::store(dst + i * ld + v * L, m, r);
            }
    };
    if (cs_c == 1 && nr == NV * L) {
        store(c, rs_c, nr);
        return;
    }
    // Partial last vector or strided C: the same arithmetic on a stack tile, copied out.
    alignas(64) T t[M * NV * L] = {};
    if (!beta0)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * NV * L + j] = c[i * rs_c + j * cs_c];
    store(t, NV * L, nr);
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * NV * L + j];
}

// The tile for (mr, number of vectors) as a table of 24 instantiations: entry (mr - 1) * 2 + nv - 1.
template <typename T>
using TileFn = void (*)(index_t, const T*, const T*, index_t, const std::int32_t*, T, T, T*, index_t, index_t,
                        index_t);
template <typename T, bool Steps, typename Seq>
struct TileTable;
template <typename T, bool Steps, int... I>
struct TileTable<T, Steps, std::integer_sequence<int, I...>> {
    static constexpr TileFn<T> fns[sizeof...(I)] = {&tile_avx512<T, I / 2 + 1, I % 2 + 1, Steps>...};
};
template <typename T, bool Steps>
using Tiles = TileTable<T, Steps, std::make_integer_sequence<int, 2 * kMR>>;

// min / clamp of sizes, here rather than std::min / std::clamp: a library template compiled in
// this TU could be ODR-merged with other TUs' copies when not inlined (numpy#25274).
inline index_t min_of(index_t a, index_t b) { return a < b ? a : b; }
inline index_t clamp_to(index_t v, index_t lo, index_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// Entry into the table; mr and nr come from the driver (1 <= mr <= 12, 1 <= nr <= NR) and are
// clamped so that no value can index past it.
template <typename T, bool Steps>
inline void run_tile(index_t k, const T* a, const T* b, index_t rs_b, const std::int32_t* steps,
                     T alpha, T beta, T* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    const index_t rows = clamp_to(mr, 1, kMR);
    const index_t vectors = nr > Zmm<T>::L ? 2 : 1;
    Tiles<T, Steps>::fns[(rows - 1) * 2 + vectors - 1](k, a, b, rs_b, steps, alpha, beta, c, rs_c, cs_c,
                                                       min_of(nr, 2 * Zmm<T>::L));
}

// C (12, 32) float / (12, 16) double micro-kernel (gemm_kernels.h, TileUkr).
template <typename T>
void tile_ukr(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c, index_t cs_c,
              index_t mr, index_t nr) {
    run_tile<T, false>(k, a, b, rs_b, nullptr, alpha, beta, c, rs_c, cs_c, mr, nr);
}

// The same tile over listed depth steps only (StepsUkr): b is a packed panel.
template <typename T>
void steps_ukr(index_t count, const T* a, const T* b, const std::int32_t* steps, T alpha, T beta, T* c,
               index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    run_tile<T, true>(count, a, b, 0, steps, alpha, beta, c, rs_c, cs_c, mr, nr);
}

// Rows of the sparse-row path (SparseRowsUkr), two at a time: each row keeps its own NV
// accumulators and its own FMA chain in list order (so its bits are those of a row computed
// alone), and interleaving two rows gives 2 * NV independent chains to hide the FMA latency.
// nr in ((NV - 1) L, NV L]: the last vector is stored masked.
template <typename T, int NV>
struct SparseRow {
    typename Zmm<T>::V acc[NV];
};
template <typename T, int NV>
inline void sparse_step(SparseRow<T, NV>& r, const T* b, std::int32_t off, const T* val) {
    using X = Zmm<T>;
    const typename X::V a = X::set1(*val);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) r.acc[v] = X::fma(a, X::load(b + off + v * X::L), r.acc[v]);
}
template <typename T, int NV>
inline void sparse_store(const SparseRow<T, NV>& r, bool accumulate, T* c, index_t nr) {
    using X = Zmm<T>;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
        const typename X::Mask m = X::first(nr - v * X::L);
        // The block's sum is added to C once, as the micro-kernel does (c = 1 * c + acc).
        X::store(c + v * X::L, m, accumulate ? X::add(X::load(m, c + v * X::L), r.acc[v]) : r.acc[v]);
    }
}
template <typename T, int NV>
void sparse_rows_avx512_nv(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                           index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    index_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        SparseRow<T, NV> r0, r1;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) r0.acc[v] = r1.acc[v] = Zmm<T>::zero();
        const std::int32_t *o0 = offs + r * cap, *o1 = o0 + cap;
        const T *v0 = vals + r * cap, *v1 = v0 + cap;
        const index_t n0 = counts[r], n1 = counts[r + 1], both = min_of(n0, n1);
        index_t q = 0;
#pragma GCC unroll 2
        for (; q < both; ++q) {
            sparse_step(r0, b, o0[q], v0 + q);
            sparse_step(r1, b, o1[q], v1 + q);
        }
        for (index_t q0 = q; q0 < n0; ++q0) sparse_step(r0, b, o0[q0], v0 + q0);
        for (index_t q1 = q; q1 < n1; ++q1) sparse_step(r1, b, o1[q1], v1 + q1);
        sparse_store(r0, accumulate, c + r * ldc, nr);
        sparse_store(r1, accumulate, c + (r + 1) * ldc, nr);
    }
    if (r < rows) {
        SparseRow<T, NV> r0;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) r0.acc[v] = Zmm<T>::zero();
        for (index_t q = 0; q < counts[r]; ++q) sparse_step(r0, b, offs[r * cap + q], vals + r * cap + q);
        sparse_store(r0, accumulate, c + r * ldc, nr);
    }
}
template <typename T>
void sparse_rows_ukr(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                        index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    constexpr index_t L = Zmm<T>::L;
    switch ((clamp_to(nr, 1, 4 * L) + L - 1) / L) {
        case 1: return sparse_rows_avx512_nv<T, 1>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
        case 2: return sparse_rows_avx512_nv<T, 2>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
        case 3: return sparse_rows_avx512_nv<T, 3>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
        default: return sparse_rows_avx512_nv<T, 4>(rows, counts, offs, vals, cap, b, accumulate, c, ldc, nr);
    }
}

// Nonzero entries of a (CompressUkr) with vcompressps / vcompresspd: compare a vector with
// zero (NaN counts as nonzero), compress the values and their offsets to the front, store the
// whole vector at count, advance by the number of set bits. The last partial vector is read and
// stored masked (nothing at or past len is touched).
template <typename T>
index_t compress_ukr(const T* a, index_t len, std::int32_t first_off, std::int32_t off_step, std::int32_t* offs,
                     T* vals) {
    using X = Zmm<T>;
    constexpr int L = X::L;
    index_t count = 0, p = 0;
    typename X::Offs off = X::offs_iota(first_off, off_step);
    for (; p + L <= len; p += L) {
        const typename X::V x = X::load(a + p);
        const typename X::Mask nz = X::nonzero(x);
        X::store(vals + count, X::compress(nz, x));
        X::offs_store(offs + count, X::offs_compress(nz, off));
        count += _mm_popcnt_u32(nz);
        off = X::offs_add(off, L * off_step);
    }
    if (p < len) {
        const typename X::Mask valid = X::first(len - p);
        const typename X::V x = X::load(valid, a + p);
        const typename X::Mask nz = X::nonzero(valid, x);
        const int kept = _mm_popcnt_u32(nz);
        const typename X::Mask out = X::first(kept);
        X::store(vals + count, out, X::compress(nz, x));
        X::offs_store(offs + count, out, X::offs_compress(nz, off));
        count += kept;
    }
    return count;
}

static_assert(kSparseWF32 == 4 * 16 && kSparseWF64 == 4 * 8, "sparse-row kernels are 4 vectors wide");

// Rows (1 or 2) rows of the rank-n update, each R vectors wide: g[rr * units + 0 : R * L] =
// sum_r x[r * in + rr] dz[r * units + 0 : R * L]. Two rows share each load of dz; each row
// keeps its own accumulators and skips its own zero inputs (a masked FMA leaves the
// accumulator untouched), so every element gets the AVX2 kernel's arithmetic: a product for
// sample 0, then one FMA per nonzero input in sample order. Masked: only lanes of `lanes`.
template <typename T, int R, int Rows, bool Masked>
inline void rank_n_block(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n,
                         typename Zmm<T>::Mask lanes) {
    using X = Zmm<T>;
    using V = typename X::V;
    using Mask = typename X::Mask;
    constexpr index_t L = X::L;
    auto load = [&](const T* p) { return Masked ? X::load(lanes, p) : X::load(p); };
    V acc[Rows][R];
#pragma GCC unroll 2
    for (int rr = 0; rr < Rows; ++rr) {
        const V a0 = X::set1(x[rr]);
#pragma GCC unroll 8
        for (int v = 0; v < R; ++v) acc[rr][v] = X::mul(a0, load(dz + v * L));
    }
    for (index_t r = 1; r < n; ++r) {
        const T* xr = x + r * in;
        T a[Rows];
        bool any = false;
#pragma GCC unroll 2
        for (int rr = 0; rr < Rows; ++rr) {
            a[rr] = xr[rr];
            any = any || a[rr] != T(0);
        }
        if (!any) continue;
        V ar[Rows];
        Mask keep[Rows];
#pragma GCC unroll 2
        for (int rr = 0; rr < Rows; ++rr) {
            ar[rr] = X::set1(a[rr]);
            keep[rr] = a[rr] != T(0) ? static_cast<Mask>(~Mask(0)) : Mask(0);
        }
        const T* dzr = dz + r * units;
#pragma GCC unroll 8
        for (int v = 0; v < R; ++v) {
            const V d = load(dzr + v * L);
#pragma GCC unroll 2
            for (int rr = 0; rr < Rows; ++rr) acc[rr][v] = X::fma_where(keep[rr], ar[rr], d, acc[rr][v]);
        }
    }
#pragma GCC unroll 2
    for (int rr = 0; rr < Rows; ++rr)
#pragma GCC unroll 8
        for (int v = 0; v < R; ++v) {
            if (Masked) X::store(g + rr * units + v * L, lanes, acc[rr][v]);
            else X::store(g + rr * units + v * L, acc[rr][v]);
        }
}

// The rank-n update (RankNUkr), g (rows, units) = x[:, :rows]^T dz: column chunks 8 vectors
// wide (128 floats / 64 doubles), then single vectors, then a masked tail; within a chunk,
// rows two at a time. Bit-identical to the AVX2 kernel.
template <typename T, int R, bool Masked>
inline void rank_n_columns(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows,
                           typename Zmm<T>::Mask lanes) {
    index_t i = 0;
    for (; i + 2 <= rows; i += 2) rank_n_block<T, R, 2, Masked>(g + i * units, x + i, in, dz, units, n, lanes);
    if (i < rows) rank_n_block<T, R, 1, Masked>(g + i * units, x + i, in, dz, units, n, lanes);
}
template <typename T>
void rank_n_ukr(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows) {
    using X = Zmm<T>;
    constexpr index_t L = X::L, kWide = 8 * L;
    const typename X::Mask all = X::first(L);
    // Column chunks outer, rows inner: the n samples' slice of dz for one chunk stays in L1
    // while every row of the block uses it.
    index_t j = 0;
    for (; j + kWide <= units; j += kWide) rank_n_columns<T, 8, false>(g + j, x, in, dz + j, units, n, rows, all);
    for (; j + L <= units; j += L) rank_n_columns<T, 1, false>(g + j, x, in, dz + j, units, n, rows, all);
    if (j < units) rank_n_columns<T, 1, true>(g + j, x, in, dz + j, units, n, rows, X::first(units - j));
}

// The narrow path's rows kernel (RowsUkr, up to kNarrowNR = 16 columns: one zmm of floats, two of
// doubles): C (M <= 6, nr <= 16) = alpha * a (M rows read in place, row stride lda) * b (k, nr;
// row p at b + p * ldb, only its nr columns read, so B is taken in place, unpacked) [+ beta * C].
// Per step one masked load of b per vector and one broadcast per row; C's partial vector is
// stored masked too. A 10-unit layer's columns
// take one pass, where the AVX2 kernel takes two ymm per row (and, for doubles, two panels, so
// A is read twice). Each element gets the AVX2 kernel's arithmetic (one FMA chain over the depth
// block, then alpha * acc [+ beta * c] in one FMA), so every table gives the same bits.
constexpr index_t kNarrowNR = 16;
template <typename T, int M>
void narrow_rows(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c, index_t rs_c,
                 index_t cs_c, index_t nr) {
    using X = Zmm<T>;
    using V = typename X::V;
    constexpr index_t L = X::L;
    constexpr int NV = kNarrowNR / L;
    typename X::Mask mask[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) mask[v] = X::first(nr - v * L);
    V acc[M][NV];
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[i][v] = X::zero();
#pragma GCC unroll 2
    for (index_t p = 0; p < k; ++p) {
        V bv[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) bv[v] = X::load(mask[v], b + p * ldb + v * L);
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            const V ai = X::set1(a[i * lda + p]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[i][v] = X::fma(ai, bv[v], acc[i][v]);
        }
    }
    const V va = X::set1(alpha), vb = X::set1(beta);
    const bool beta0 = beta == T(0);
    auto store = [&](T* dst, index_t ld) {
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) {
                V r = X::mul(va, acc[i][v]);
                if (!beta0) r = X::fma(vb, X::load(mask[v], dst + i * ld + v * L), r);
                X::store(dst + i * ld + v * L, mask[v], r);
            }
    };
    if (cs_c == 1) {
        store(c, rs_c);
        return;
    }
    // Strided C: the same arithmetic on a stack tile, copied out.
    alignas(64) T t[M * kNarrowNR] = {};
    if (!beta0)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * kNarrowNR + j] = c[i * rs_c + j * cs_c];
    store(t, kNarrowNR);
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * kNarrowNR + j];
}
template <typename T>
void narrow_rows_ukr(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c,
                     index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return narrow_rows<T, 1>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return narrow_rows<T, 2>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 3: return narrow_rows<T, 3>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 4: return narrow_rows<T, 4>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 5: return narrow_rows<T, 5>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        default: return narrow_rows<T, 6>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// The small-m dot products (dX at batch <= 16) and the m == 1 row-vector kernel are bound by
// loads and latency, not by FMA width: zmm versions of them measured slower than the AVX2 ones
// on Sapphire Rapids (bench/RESULTS.md), so this table takes those two from the AVX2 table, and
// the narrow path takes the 6-row one above (a 12 x 32 one was slower, bench/RESULTS.md; gemm.cpp
// runs that path on 6-row tiles whatever the table). That keeps every path bit-identical to the
// AVX2 kernels, the dot path and the rank-n update included.
template <typename T>
KernelSet<T> avx512_set(const KernelSet<T>& avx2) {
    return {&tile_ukr<T>, &steps_ukr<T>, &narrow_rows_ukr<T>, avx2.dot, avx2.gemv, &sparse_rows_ukr<T>,
            &compress_ukr<T>, &rank_n_ukr<T>, kNarrowNR, true};
}

GemmKernelTable make_avx512_table() {
    const GemmKernelTable* avx2 = gemm_avx2_kernels();
    return {"avx512", true, avx512_set<float>(avx2->f32), avx512_set<double>(avx2->f64)};
}

}  // namespace

const GemmKernelTable* gemm_avx512_kernels() {
    static const GemmKernelTable table = make_avx512_table();
    return &table;
}

}  // namespace gemm_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX512_TU && LAMINA_HAVE_AVX2_TU && __AVX512F__ && __AVX512VL__
