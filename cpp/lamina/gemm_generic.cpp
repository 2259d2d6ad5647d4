// Portable kernels: plain C++ the compiler vectorizes for whatever the baseline ISA is
// (SSE2 on x86-64, NEON on aarch64), each written once as a template on the element type. Same
// contracts as the AVX2 kernels (see gemm_kernels.h); they are the twins tests compare against.
#include <type_traits>

#include "lamina/gemm_kernels.h"
#include "lamina/vectorize.h"

namespace lamina {
namespace gemm_detail {
namespace {

// C (mr, nr) = alpha * a (MR, k packed) * b (k, NR, row stride rs_b) + beta * C.
// One row of the tile at a time: its NR accumulators fit in registers even with 16-byte
// vectors, and the inner j loop is a plain vectorizable loop (B rows come from L1 again for
// each row). One store loop serves full and edge tiles, so both round the same way.
// With steps, only the listed depth steps: step p's row of b at b + steps[p].
template <typename T, int MR, int NR>
void gemm_generic_ukr(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c,
                      index_t rs_c, index_t cs_c, index_t mr, index_t nr,
                      const std::int32_t* steps = nullptr, index_t lda = 0) {
    alignas(64) T acc[MR][NR];
    // Packed A: element (i, p) at a[p * MR + i]; in place (lda > 0): at a[i * lda + p].
    const index_t a_row = lda > 0 ? lda : 1, a_step = lda > 0 ? 1 : MR;
    for (index_t i = 0; i < mr; ++i) {
        T row[NR] = {};
        const T* ap = a + i * a_row;
        for (index_t p = 0; p < k; ++p, ap += a_step) {
            const T ai = *ap;
            const T* bp = steps ? b + steps[p] : b + p * rs_b;
            for (int j = 0; j < NR; ++j) row[j] += ai * bp[j];
        }
        for (int j = 0; j < NR; ++j) acc[i][j] = row[j];
    }
    for (index_t i = 0; i < mr; ++i) {
        for (index_t j = 0; j < nr; ++j) {
            T& cij = c[i * rs_c + j * cs_c];
            cij = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * cij;
        }
    }
}

// C (mr, nr) = alpha * a (mr, k) * b (nr, k)^T + beta * C, rows of a and b contiguous.
// Eight explicit partial sums per dot product let the compiler vectorize without reassociating;
// they are added up in a fixed order.
template <typename T>
void dot_generic_ukr(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha,
                     T beta, T* c, index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    constexpr int L = 8;
    for (index_t i = 0; i < mr; ++i) {
        for (index_t j = 0; j < nr; ++j) {
            const T* x = a + i * lda;
            const T* y = b + j * ldb;
            T part[L] = {};
            index_t p = 0;
            for (; p + L <= k; p += L)
                for (int l = 0; l < L; ++l) part[l] += x[p + l] * y[p + l];
            for (int l = 0; p < k; ++p, ++l) part[l] += x[p] * y[p];
            T s = 0;
            for (int l = 0; l < L; ++l) s += part[l];
            T& cij = c[i * rs_c + j * cs_c];
            cij = beta == T(0) ? alpha * s : alpha * s + beta * cij;
        }
    }
}

// C (1, W) = alpha * a (1, k; stride inc_a) * b (k, W; row stride ldb) + beta * C, written
// exactly like one row of gemm_generic_ukr so that both give the same bits.
template <typename T, int W>
void gemv_generic_row(index_t k, const T* a, index_t inc_a, const T* b, index_t ldb, T alpha,
                      T beta, T* c) {
    T row[W] = {};
    for (index_t p = 0; p < k; ++p, a += inc_a, b += ldb) {
        const T ai = *a;
        if (ai == T(0)) continue;  // as the AVX2 kernel: zero inputs skip their row of b
        for (int j = 0; j < W; ++j) row[j] += ai * b[j];
    }
    for (int j = 0; j < W; ++j) c[j] = beta == T(0) ? alpha * row[j] : alpha * row[j] + beta * c[j];
}

// The 6-row tiles of one element type (BlockingF32 / BlockingF64).
template <typename T>
using Tiles = std::conditional_t<std::is_same_v<T, float>, BlockingF32, BlockingF64>;

// C (6, 16) float / (6, 8) double micro-kernel (TileUkr).
template <typename T>
void tile_generic(index_t k, const T* a, const T* b, index_t rs_b, T alpha, T beta, T* c, index_t rs_c,
                  index_t cs_c, index_t mr, index_t nr) {
    gemm_generic_ukr<T, Tiles<T>::MR, Tiles<T>::NR>(k, a, b, rs_b, alpha, beta, c, rs_c, cs_c, mr, nr);
}

// The same tile over listed depth steps (StepsUkr).
template <typename T>
void steps_generic(index_t count, const T* a, const T* b, const std::int32_t* steps, T alpha, T beta, T* c,
                   index_t rs_c, index_t cs_c, index_t mr, index_t nr) {
    gemm_generic_ukr<T, Tiles<T>::MR, Tiles<T>::NR>(count, a, b, Tiles<T>::NR, alpha, beta, c, rs_c, cs_c, mr, nr,
                                                    steps);
}

// The same tile, A read in place (RowsUkr).
template <typename T>
void rows_generic(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T alpha, T beta, T* c, index_t rs_c,
                  index_t cs_c, index_t mr, index_t nr) {
    gemm_generic_ukr<T, Tiles<T>::MR, Tiles<T>::NR>(k, a, b, ldb, alpha, beta, c, rs_c, cs_c, mr, nr, nullptr, lda);
}

// C (1, 64) float / (1, 32) double row (GemvUkr).
template <typename T>
void gemv_generic(index_t k, const T* a, index_t inc_a, const T* b, index_t ldb, T alpha, T beta, T* c) {
    gemv_generic_row<T, std::is_same_v<T, float> ? kGemvWF32 : kGemvWF64>(k, a, inc_a, b, ldb, alpha, beta, c);
}

// Rows of the sparse-row path (gemm_kernels.h, SparseRowsUkr): c_r = [c_r +] sum_q
// vals_r[q] * b[offs_r[q] :]. W accumulators per row, like one row of gemm_generic_ukr.
template <typename T, int W>
void sparse_rows_generic(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                         index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    for (index_t r = 0; r < rows; ++r, offs += cap, vals += cap, c += ldc) {
        T row[W] = {};
        for (index_t q = 0; q < counts[r]; ++q) {
            const T v = vals[q];
            const T* bq = b + offs[q];
            for (int j = 0; j < W; ++j) row[j] += v * bq[j];
        }
        // The block's sum is added to C once, as gemm_generic_ukr does (c = acc + 1 * c).
        for (index_t j = 0; j < nr; ++j) c[j] = accumulate ? row[j] + c[j] : row[j];
    }
}

// Rows of the sparse-row path, kSparseW columns wide (SparseRowsUkr).
template <typename T>
void sparse_rows_generic_ukr(index_t rows, const index_t* counts, const std::int32_t* offs, const T* vals,
                             index_t cap, const T* b, bool accumulate, T* c, index_t ldc, index_t nr) {
    sparse_rows_generic<T, std::is_same_v<T, float> ? kSparseWF32 : kSparseWF64>(rows, counts, offs, vals, cap, b,
                                                                                accumulate, c, ldc, nr);
}

// Nonzero entries of a (gemm_kernels.h, CompressUkr). Branch-free: every entry is written at the
// next free slot, which advances only past a nonzero.
template <typename T>
index_t compress_generic(const T* a, index_t len, std::int32_t first_off, std::int32_t off_step,
                         std::int32_t* offs, T* vals) {
    index_t count = 0;
    std::int32_t off = first_off;
    for (index_t p = 0; p < len; ++p, off += off_step) {
        vals[count] = a[p];
        offs[count] = off;
        count += a[p] != T(0) ? 1 : 0;
    }
    return count;
}

// The rank-n update (RankNUkr): n axpy sweeps per row, vectorized along units.
template <typename T>
LAMINA_VECTORIZE void rank_n_generic(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n,
                                     index_t rows) {
    for (index_t i = 0; i < rows; ++i) {
        T* gi = g + i * units;
        const T a0 = x[i];
        for (index_t j = 0; j < units; ++j) gi[j] = a0 * dz[j];
        for (index_t r = 1; r < n; ++r) {
            const T a = x[r * in + i];
            if (a == T(0)) continue;
            const T* dzr = dz + r * units;
            for (index_t j = 0; j < units; ++j) gi[j] += a * dzr[j];
        }
    }
}

template <typename T>
constexpr KernelSet<T> generic_set() {
    return {&tile_generic<T>, &steps_generic<T>, &rows_generic<T>, &dot_generic_ukr<T>, &gemv_generic<T>,
            &sparse_rows_generic_ukr<T>, &compress_generic<T>, &rank_n_generic<T>,
            Tiles<T>::NR, false};
}

static_assert(BlockingF32::MR == 6 && BlockingF32::NR == 16, "6 x 16 float tile");
static_assert(BlockingF64::MR == 6 && BlockingF64::NR == 8, "6 x 8 double tile");

const GemmKernelTable kGenericKernels = {"generic", false, generic_set<float>(), generic_set<double>()};

}  // namespace

const GemmKernelTable* gemm_generic_kernels() { return &kGenericKernels; }

}  // namespace gemm_detail
}  // namespace lamina
