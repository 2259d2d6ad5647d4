// AVX2 + FMA kernels of the GEMM kernel table, each written once as a template on the element
// type over the Avx2<T> trait (simd_avx2.h): float tiles are 6 x 16, double 6 x 8 (two vectors
// per tile row either way). This translation unit alone is compiled with -mavx2 -mfma, so
// everything here has internal linkage except gemm_avx2_kernels(), the one entry the dispatcher
// in gemm.cpp calls after checking the CPU (an inline function with external linkage could be
// merged with another TU's copy and run AVX2 code on a CPU without it; numpy#25274).
#include "lamina/gemm_kernels.h"

#if defined(LAMINA_HAVE_AVX2_TU) && defined(__AVX2__) && defined(__FMA__)
#include "lamina/simd_avx2.h"

namespace lamina {
namespace gemm_detail {
namespace {

constexpr index_t kMR = 6;  // packed A panels are this tall (BlockingF32::MR == BlockingF64::MR)

// C (M, 2 L) = alpha * a (6, k packed; rows >= M ignored) * b (k, 2 L, row stride rs_b) + beta * C.
// 2*M accumulators + 2 B vectors + 1 broadcast <= 15 of the 16 ymm registers. Rows are
// independent, so computing only the M valid rows gives them bit-for-bit the values of a full
// tile while skipping wasted FMAs (m = 1..5 problems).
// With Steps, only the listed depth steps: step p's row of b at b + steps[p] (see
// gemm_kernels.h, StepsUkr). With InPlaceA, row i of a at a + i * lda (RowsUkr). The same
// instructions otherwise.
template <typename T, int M, bool Steps, bool InPlaceA>
void tile_avx2(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c,
               index_t cs_c, index_t nr, const std::int32_t* steps, index_t lda) {
    using X = Avx2<T>;
    using V = typename X::V;
    constexpr int L = X::L, NR = 2 * L;
    V acc[M][2];
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = X::zero();
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const T* bp = Steps ? b + steps[p] : b;
        const V b0 = X::load(bp), b1 = X::load(bp + L);
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            const V ai = X::bcast(a + (InPlaceA ? i * lda : i));
            acc[i][0] = X::fma(ai, b0, acc[i][0]);
            acc[i][1] = X::fma(ai, b1, acc[i][1]);
        }
        a += InPlaceA ? 1 : kMR;
        if (!Steps) b += rs_b;
    }
    // c = alpha * acc + beta * c, row by row; c is not read when beta == 0.
    const V va = X::set1(alpha), vb = X::set1(beta);
    const bool beta0 = beta == T(0);
    auto store = [&](T* dst, index_t ld) {
#pragma GCC unroll 6
        for (int i = 0; i < M; ++i) {
            V r0 = X::mul(va, acc[i][0]), r1 = X::mul(va, acc[i][1]);
            if (!beta0) {
                r0 = X::fma(vb, X::load(dst + i * ld), r0);
                r1 = X::fma(vb, X::load(dst + i * ld + L), r1);
            }
            X::store(dst + i * ld, r0);
            X::store(dst + i * ld + L, r1);
        }
    };
    if (nr == NR && cs_c == 1) {
        store(c, rs_c);
        return;
    }
    // Edge or strided tile: same arithmetic on a stack copy, then copy the valid part out.
    alignas(64) T t[M * NR] = {};
    if (!beta0)
        for (index_t i = 0; i < M; ++i)
            for (index_t j = 0; j < nr; ++j) t[i * NR + j] = c[i * rs_c + j * cs_c];
    store(t, NR);
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) c[i * rs_c + j * cs_c] = t[i * NR + j];
}

// The tile for mr valid rows (1..6; the driver never passes more).
template <typename T, bool Steps, bool InPlaceA>
void tile_rows(index_t mr, index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c,
               index_t cs_c, index_t nr, const std::int32_t* steps, index_t lda) {
    switch (mr) {
        case 1: return tile_avx2<T, 1, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
        case 2: return tile_avx2<T, 2, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
        case 3: return tile_avx2<T, 3, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
        case 4: return tile_avx2<T, 4, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
        case 5: return tile_avx2<T, 5, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
        default: return tile_avx2<T, 6, Steps, InPlaceA>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, steps, lda);
    }
}

// C (6, 16) float / (6, 8) double micro-kernel (TileUkr).
template <typename T>
void tile_ukr(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c, index_t cs_c,
              index_t mr, index_t nr) {
    tile_rows<T, false, false>(mr, k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, nr, nullptr, 0);
}

// The same tile over the listed depth steps only (StepsUkr): b is a packed panel.
template <typename T>
void steps_ukr(index_t count, const T* a, const T* b, const std::int32_t* steps, T alpha, T beta, T* c,
               index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    tile_rows<T, true, false>(mr, count, a, b, 2 * Avx2<T>::L, alpha, beta, c, rs_c, cs_c, nr, steps, 0);
}

// The same tile with A read in place (RowsUkr): b is a packed panel.
template <typename T>
void rows_ukr(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c, index_t rs_c,
              index_t cs_c, index_t mr, index_t nr) {
    tile_rows<T, false, true>(mr, k, a, b, ldb, alpha, beta, c, rs_c, cs_c, nr, nullptr, lda);
}

// C (M, nr <= 4) = alpha * a (M, k) * b (nr, k)^T + beta * C, rows of a and b contiguous.
// 3 x 4 accumulators + 3 rows of a + 1 of b = 16 ymm registers at M = 3. Missing b rows
// (nr < 4) repeat the last valid one; their sums are discarded.
template <typename T, int M>
void dot_avx2(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c, index_t rs_c,
              index_t cs_c, index_t nr) {
    using X = Avx2<T>;
    using V = typename X::V;
    constexpr int L = X::L;
    const T* br[4];
    for (int j = 0; j < 4; ++j) br[j] = b + (j < nr ? j : nr - 1) * ldb;
    V acc[M][4];
#pragma GCC unroll 3
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = X::zero();
    auto step = [&](const V* av, index_t p, __m256i mask, bool masked) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            const V bv = masked ? X::load(br[j] + p, mask) : X::load(br[j] + p);
#pragma GCC unroll 3
            for (int i = 0; i < M; ++i) acc[i][j] = X::fma(av[i], bv, acc[i][j]);
        }
    };
    index_t p = 0;
    for (; p + L <= k; p += L) {
        V av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = X::load(a + i * lda + p);
        step(av, p, _mm256_setzero_si256(), false);
    }
    if (p < k) {  // tail: masked loads read nothing past row end, and give zeros
        const __m256i mask = X::first(k - p);
        V av[M];
#pragma GCC unroll 3
        for (int i = 0; i < M; ++i) av[i] = X::load(a + i * lda + p, mask);
        step(av, p, mask, true);
    }
    for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < nr; ++j) {
            T& cij = c[i * rs_c + j * cs_c];
            const T s = alpha * X::hsum(acc[i][j]);
            cij = beta == T(0) ? s : X::fma1(beta, cij, s);
        }
}

// C (3, 4) dot kernel (DotUkr): dispatches on the number of valid rows.
template <typename T>
void dot_ukr(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c, index_t rs_c,
             index_t cs_c, index_t mr, index_t nr) {
    switch (mr) {
        case 1: return dot_avx2<T, 1>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        case 2: return dot_avx2<T, 2>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
        default: return dot_avx2<T, 3>(k, a, lda, b, ldb, alpha, beta, c, rs_c, cs_c, nr);
    }
}

// C (1, 8 L) = alpha * a (1, k; stride inc_a) * b (k, 8 L; row stride ldb) + beta * C (GemvUkr:
// 1 x 64 float, 1 x 32 double). 8 accumulators; per column the same FMA chain, alpha and beta
// steps as tile_avx2.
template <typename T>
void gemv_ukr(index_t k, const T* a, index_t inc_a, const T* b, index_t ldb, T alpha, T beta, T* c) {
    using X = Avx2<T>;
    using V = typename X::V;
    constexpr int L = X::L;
    V acc[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) acc[v] = X::zero();
    for (index_t p = 0; p < k; ++p, a += inc_a, b += ldb) {
        if (*a == 0) continue;  // a zero input adds nothing: skip its row of b (see gemm_kernels.h)
        const V ap = X::bcast(a);
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) acc[v] = X::fma(ap, X::load(b + L * v), acc[v]);
    }
    const V va = X::set1(alpha), vb = X::set1(beta);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
        V r = X::mul(va, acc[v]);
        if (beta != T(0)) r = X::fma(vb, X::load(c + L * v), r);
        X::store(c + L * v, r);
    }
}

// c (1, W) = [c +] sum_q vals[q] * b[offs[q] :], one full row of the sparse-row path
// (gemm_kernels.h): 8 accumulators of L lanes (W = 8 * L columns), one FMA chain per column as
// in tile_avx2. Each listed step costs a broadcast, an offset load and 8 loads of b, so this
// runs below the 6-row tile's FMA rate, but does no work for any zero of A.
template <typename T>
void sparse_row_avx2_full(index_t count, const std::int32_t* offs, const T* vals, const T* b, bool accumulate, T* c) {
    using X = Avx2<T>;
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

// The rows of the sparse-row path, one after another (SparseRowsUkr).
template <typename T>
void sparse_rows_ukr(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals, index_t cap,
                     const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    constexpr index_t W = 8 * Avx2<T>::L;
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

// Nonzero entries of a (CompressUkr), L at a time: compare, pack the nonzeros and their offsets
// to the front (Avx2<T>::compress_store), advance by their count; the entries after the whole
// vectors branch-free, as the portable twin.
template <typename T>
index_t compress_ukr(const T* a, index_t len, std::int32_t first_off, std::int32_t off_step, std::int32_t* offs,
                     T* vals) {
    using X = Avx2<T>;
    index_t count = 0, p = 0;
    typename X::Offs off = X::offs_iota(first_off, off_step);
    for (; p + X::L <= len; p += X::L) {
        count += X::compress_store(X::load(a + p), off, vals + count, offs + count);
        off = X::offs_add(off, X::L * off_step);
    }
    std::int32_t o = first_off + static_cast<std::int32_t>(p) * off_step;
    for (; p < len; ++p, o += off_step) {
        vals[count] = a[p];
        offs[count] = o;
        count += a[p] != T(0) ? 1 : 0;
    }
    return count;
}

// g[0 : R * L] of one row of the rank-n update from the n samples' dz[:, j0 : ...]; a(r) = x[r * in].
// Masked: only the lanes of mask are read and written (one register).
template <typename T, int R, bool Masked>
inline void rank_n_block(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, __m256i mask) {
    using X = Avx2<T>;
    using V = typename X::V;
    constexpr index_t L = X::L;
    auto load = [&](const T* p) { return Masked ? X::load(p, mask) : X::load(p); };
    V acc[R];
    const V a0 = X::set1(x[0]);
#pragma GCC unroll 8
    for (int v = 0; v < R; ++v) acc[v] = X::mul(a0, load(dz + v * L));
    for (index_t r = 1; r < n; ++r) {
        const T a = x[r * in];
        if (a == 0) continue;
        const V ar = X::set1(a);
        const T* dzr = dz + r * units;
#pragma GCC unroll 8
        for (int v = 0; v < R; ++v) acc[v] = X::fma(ar, load(dzr + v * L), acc[v]);
    }
#pragma GCC unroll 8
    for (int v = 0; v < R; ++v) {
        if (Masked) X::store(g + v * L, mask, acc[v]);
        else X::store(g + v * L, acc[v]);
    }
}

// The rank-n update (RankNUkr): each row of g is built 8 registers wide (64 floats / 32
// doubles) with the n samples accumulated in registers, so g is stored once rather than loaded
// and stored n times (the portable loop is bound by those stores). Then single registers, then a
// masked tail, all with the same per-element arithmetic.
template <typename T>
void rank_n_ukr(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows) {
    constexpr index_t L = Avx2<T>::L, kWide = 8 * L;
    const __m256i none = _mm256_setzero_si256();
    // Column chunks outer, rows inner: the n samples' slice of dz for one chunk stays in L1
    // while every row of the block uses it.
    index_t j = 0;
    for (; j + kWide <= units; j += kWide)
        for (index_t i = 0; i < rows; ++i) rank_n_block<T, 8, false>(g + i * units + j, x + i, in, dz + j, units, n, none);
    for (; j + L <= units; j += L)
        for (index_t i = 0; i < rows; ++i) rank_n_block<T, 1, false>(g + i * units + j, x + i, in, dz + j, units, n, none);
    if (j < units) {
        const __m256i mask = Avx2<T>::first(units - j);
        for (index_t i = 0; i < rows; ++i) rank_n_block<T, 1, true>(g + i * units + j, x + i, in, dz + j, units, n, mask);
    }
}

template <typename T>
constexpr KernelSet<T> avx2_set() {
    return {&tile_ukr<T>, &steps_ukr<T>, &rows_ukr<T>, &dot_ukr<T>, &gemv_ukr<T>,
            &sparse_rows_ukr<T>, &compress_ukr<T>, &rank_n_ukr<T>, 2 * Avx2<T>::L, false};
}

static_assert(kGemvWF32 == 8 * Avx2<float>::L && kGemvWF64 == 8 * Avx2<double>::L, "row-vector kernels are 8 vectors wide");
static_assert(kSparseWF32 == 8 * Avx2<float>::L && kSparseWF64 == 8 * Avx2<double>::L, "sparse-row kernels are 8 vectors wide");
static_assert(kDotMR == 3 && kDotNR == 4, "dot kernels are 3 x 4");
static_assert(BlockingF32::MR == kMR && BlockingF32::NR == 2 * Avx2<float>::L, "6 x 16 float tile");
static_assert(BlockingF64::MR == kMR && BlockingF64::NR == 2 * Avx2<double>::L, "6 x 8 double tile");

const GemmKernelTable kAvx2Kernels = {"avx2", false, avx2_set<float>(), avx2_set<double>()};

}  // namespace

const GemmKernelTable* gemm_avx2_kernels() { return &kAvx2Kernels; }

}  // namespace gemm_detail
}  // namespace lamina

#endif  // LAMINA_HAVE_AVX2_TU && __AVX2__ && __FMA__
