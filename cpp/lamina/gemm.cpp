// GEMM driver: BLIS-style blocking, packing, threading and kernel dispatch.
//
//   for jc in n step NC:                      (columns of C / B)
//     for pc in k step KC:                    (depth; C accumulates across these, in order)
//       pack op(B)[pc:pc+KC, jc:jc+NC] -> NR-wide panels
//       for ic in m step MC:
//         pack op(A)[ic:ic+MC, pc:pc+KC] -> MR-tall panels
//         (each MR-tall panel of A compacted to its depth steps that are not all zero)
//         for jr in nc step NR: for ir in mc step MR: micro-kernel MR x NR
//
// A plain product (alpha 1, beta 0) with a mostly-zero, untransposed op(A) of 8 rows or more
// (Dense forward on images) goes instead row by row over each row's nonzeros (gemm_sparse_rows).
//
// Threads split either the IC loop (rows of C; B panel packed together and shared) or the JR
// loop (column panels; A block packed together and shared), whichever suits the shape; either
// way each element of C has exactly one writer.
//
// Every element of C is summed over k in the same order (KC blocks ascending, p ascending inside
// a block) by the same instructions whatever thread computes it, so the result does not depend on
// the thread count. Transposes are handled by the packing routines only.
#include "lamina/gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "lamina/gemm_kernels.h"
#include "lamina/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lamina {

using namespace gemm_detail;

namespace {

// ---------------------------------------------------------------------------------------------
// Kernel dispatch: decided once, on first use.

const GemmKernelTable* select_kernels() {
    const char* env = std::getenv("LAMINA_GEMM_KERNEL");
    const bool force_generic = env != nullptr && std::strcmp(env, "generic") == 0;
#ifdef LAMINA_HAVE_AVX2_TU
    if (!force_generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return gemm_avx2_kernels();
#else
    (void)force_generic;
#endif
    return gemm_generic_kernels();
}

const GemmKernelTable& kernels() {
    static const GemmKernelTable* const table = select_kernels();
    return *table;
}

template <typename T> struct Traits;
template <> struct Traits<float> {
    using Blk = BlockingF32;
    static SgemmUkr ukr() { return kernels().sgemm_ukr; }
    static SdotUkr dot() { return kernels().sdot_ukr; }
    static SgemvUkr gemv() { return kernels().sgemv_ukr; }
    static SgemmStepsUkr steps_ukr() { return kernels().sgemm_steps_ukr; }
    static SgemmSparseRowsUkr sparse_rows() { return kernels().sgemm_sparse_rows_ukr; }
    static SCompressUkr compress() { return kernels().scompress; }
    static constexpr index_t kGemvW = kGemvWF32, kSparseW = kSparseWF32;
};
template <> struct Traits<double> {
    using Blk = BlockingF64;
    static DgemmUkr ukr() { return kernels().dgemm_ukr; }
    static DdotUkr dot() { return kernels().ddot_ukr; }
    static DgemvUkr gemv() { return kernels().dgemv_ukr; }
    static DgemmStepsUkr steps_ukr() { return kernels().dgemm_steps_ukr; }
    static DgemmSparseRowsUkr sparse_rows() { return kernels().dgemm_sparse_rows_ukr; }
    static DCompressUkr compress() { return kernels().dcompress; }
    static constexpr index_t kGemvW = kGemvWF64, kSparseW = kSparseWF64;
};

// ---------------------------------------------------------------------------------------------
// Packing buffers: one per role per thread, grown on demand and kept, so the steady state does
// not allocate. OpenMP worker threads are persistent, so their thread_locals persist too.

struct Scratch {
    void* ptr = nullptr;
    std::size_t bytes = 0;
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { std::free(ptr); }
    template <typename T>
    T* get(index_t count) {
        const std::size_t need = static_cast<std::size_t>(count) * sizeof(T);
        if (need > bytes) {
            std::free(ptr);
            ptr = nullptr;
            bytes = 0;
            const std::size_t size = (need + 4095) / 4096 * 4096;  // multiple of the alignment
            ptr = std::aligned_alloc(kPackAlign, size);
            if (ptr == nullptr) throw std::bad_alloc();
            bytes = size;
        }
        return static_cast<T*>(ptr);
    }
};
thread_local Scratch tl_own;     // private to a thread: its packed A block / B sliver
thread_local Scratch tl_shared;  // the calling thread's buffer that all threads read (packed B)
thread_local Scratch tl_own_steps, tl_shared_steps;  // step lists of the packed A panels (same roles)
thread_local Scratch tl_shared_counts;  // sparse-row path: entries per row and depth block (shared)

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-tall panels: panel r holds rows r*MR.. as
// ap[r*MR*kc + p*MR + i]; rows past mc are zero.
template <typename T, index_t MR>
void pack_a(bool ta, const T* A, index_t lda, index_t i0, index_t mc, index_t p0, index_t kc,
            T* ap) {
    for (index_t ir = 0; ir < mc; ir += MR) {
        const index_t mr = std::min(MR, mc - ir);
        T* dst = ap + ir * kc;
        if (!ta) {
            // A stored (m, k): MR rows read side by side.
            const T* src = A + (i0 + ir) * lda + p0;
            if (mr == MR) {
                for (index_t p = 0; p < kc; ++p)
                    for (index_t i = 0; i < MR; ++i) dst[p * MR + i] = src[i * lda + p];
            } else {
                for (index_t p = 0; p < kc; ++p)
                    for (index_t i = 0; i < MR; ++i)
                        dst[p * MR + i] = i < mr ? src[i * lda + p] : T(0);
            }
        } else {
            // A stored (k, m): each row of storage gives MR contiguous values.
            const T* src = A + p0 * lda + i0 + ir;
            for (index_t p = 0; p < kc; ++p)
                for (index_t i = 0; i < MR; ++i)
                    dst[p * MR + i] = i < mr ? src[p * lda + i] : T(0);
        }
    }
}

// Pack op(B)[p0:p0+kc, j0:j0+nr] (nr <= NR) into one NR-wide panel bp[p*NR + j]; columns past
// nr are zero.
template <typename T, index_t NR>
void pack_b_panel(bool tb, const T* B, index_t ldb, index_t p0, index_t kc, index_t j0,
                  index_t nr, T* bp) {
    if (!tb) {
        // B stored (k, n): a row of the panel is a contiguous piece of a row of B.
        const T* src = B + p0 * ldb + j0;
        if (nr == NR) {
            for (index_t p = 0; p < kc; ++p)
                for (index_t j = 0; j < NR; ++j) bp[p * NR + j] = src[p * ldb + j];
        } else {
            for (index_t p = 0; p < kc; ++p)
                for (index_t j = 0; j < NR; ++j) bp[p * NR + j] = j < nr ? src[p * ldb + j] : T(0);
        }
    } else {
        // B stored (n, k): read rows of storage contiguously, write panel columns.
        const T* src = B + j0 * ldb + p0;
        for (index_t j = 0; j < nr; ++j)
            for (index_t p = 0; p < kc; ++p) bp[p * NR + j] = src[j * ldb + p];
        for (index_t j = nr; j < NR; ++j)
            for (index_t p = 0; p < kc; ++p) bp[p * NR + j] = T(0);
    }
}

// Depth steps of packed A panels that are zero in every row add nothing to C (sparse inputs:
// images are half zeros). The blocked paths pack each MR-tall panel with only its nonzero steps
// and record the step list (offsets p * NR into the packed B panel), so the steps micro-kernel
// skips the rest (gemm_kernels.h, SgemmStepsUkr). A panel with no zero step is packed exactly
// as pack_a packs it (count == kc) and goes through the plain micro-kernel.
// Pack one MR-tall panel of op(A)[i0:i0+mr, p0:p0+kc] (as pack_a: element (i, step) at
// dst[step * MR + i], rows past mr zero) keeping only the depth steps not zero in all MR rows;
// offsets[q] = p * NR for the q-th kept step. Returns how many were kept. Branch-free: every
// step is written at the next free slot, and the slot is kept only if a value is nonzero.
template <typename T, index_t MR, index_t NR>
index_t pack_a_panel_steps(bool ta, const T* A, index_t lda, index_t i0, index_t mr, index_t p0,
                           index_t kc, T* dst, std::int32_t* offsets) {
    index_t kept = 0;
    for (index_t p = 0; p < kc; ++p) {
        T v[MR];
        if (!ta) {
            const T* src = A + i0 * lda + p0 + p;  // column p of the panel's rows
            for (index_t i = 0; i < MR; ++i) v[i] = i < mr ? src[i * lda] : T(0);
        } else {
            const T* src = A + (p0 + p) * lda + i0;  // MR contiguous values
            for (index_t i = 0; i < MR; ++i) v[i] = i < mr ? src[i] : T(0);
        }
        bool nonzero = false;
        for (index_t i = 0; i < MR; ++i) {
            dst[kept * MR + i] = v[i];
            nonzero |= v[i] != T(0);
        }
        offsets[kept] = static_cast<std::int32_t>(p * NR);
        kept += nonzero ? 1 : 0;
    }
    return kept;
}

// ---------------------------------------------------------------------------------------------

// The problem after argument normalisation. C element (i, j) is at C[i * rs_c + j * cs_c], so
// the same driver also computes C^T = op(B)^T op(A)^T when that shape suits the kernels better.
template <typename T>
struct Problem {
    bool ta, tb;
    index_t m, n, k;
    T alpha;
    const T* A;
    index_t lda;
    const T* B;
    index_t ldb;
    T beta;
    T* C;
    index_t rs_c, cs_c;
    const TileEpilogue<T>* epilogue = nullptr;  // blocked paths only (C untransposed there)
};

// One MR x NR tile of a blocked product over one depth block: the plain micro-kernel, or the
// steps kernel for a panel packed with fewer than kc steps; after the last depth block the
// epilogue runs on the finished tile while it is in cache. The tile is C[i0 :, j0 :] (mr x nr),
// a the packed A panel (count steps, their offsets into the packed B panel b).
template <typename T, typename Ukr, typename StepsUkr>
inline void compute_tile(const Problem<T>& P, Ukr ukr, StepsUkr steps_ukr, index_t kc, index_t count,
                         const std::int32_t* offsets, const T* a, const T* b, T beta, bool last_depth_block,
                         index_t i0, index_t j0, index_t mr, index_t nr) {
    T* c = P.C + i0 * P.rs_c + j0 * P.cs_c;
    if (count == kc)
        ukr(kc, a, b, Traits<T>::Blk::NR, P.alpha, beta, c, P.rs_c, P.cs_c, mr, nr);  // b: a packed panel
    else
        steps_ukr(count, a, b, offsets, P.alpha, beta, c, P.rs_c, P.cs_c, mr, nr);
    if (P.epilogue != nullptr && last_depth_block)
        P.epilogue->fn(P.epilogue->ctx, c, P.rs_c, i0, j0, mr, nr);
}
// Rows (after the transpose trick) up to which gemm skips the blocked path: op(A) is packed
// whole (cheap: m*k values), B is read in place where its layout allows, and threads split the
// columns of C.
constexpr index_t kSmallM = 16;

int threads_for(double flops, index_t tasks) {
    if (flops < static_cast<double>(kParallelMinFlops) || tasks < 2) return 1;
    return static_cast<int>(std::min<index_t>(current_threads(), tasks));
}

inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
inline int thread_count() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Small m with an untransposed B: C (m, n), m <= kSmallM. op(A) packed once by the caller
// (m * k values); each thread takes a range of column blocks. Full blocks are read straight
// from B; only a last partial block is packed. No depth blocking: B is streamed once.
template <typename T>
void gemm_small_m(const Problem<T>& P) {
    using Blk = typename Traits<T>::Blk;
    constexpr index_t MR = Blk::MR, NR = Blk::NR;
    const auto ukr = Traits<T>::ukr();
    const index_t m = P.m, n = P.n, k = P.k;
    T* ap = tl_shared.get<T>(ceil_div(m, MR) * MR * k);
    pack_a<T, MR>(P.ta, P.A, P.lda, 0, m, 0, k, ap);
    // Work units: for m == 1 with B in place, kGemvW-wide row-vector blocks first (see
    // gemm_kernels.h); then NR-wide micro-kernel blocks for the remaining columns.
    constexpr index_t W = Traits<T>::kGemvW;
    const bool use_gemv = m == 1 && !P.tb && P.cs_c == 1;
    const index_t wide = use_gemv ? n / W : 0, j_rest = wide * W;
    const index_t units = wide + ceil_div(n - j_rest, NR);
    const int nthreads = threads_for(2.0 * m * n * k, units);
    const auto gemv = Traits<T>::gemv();
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        const index_t tid = thread_id(), nt = thread_count();
        const index_t u0 = units * tid / nt, u1 = units * (tid + 1) / nt;
        for (index_t u = u0; u < u1; ++u) {
            if (u < wide) {
                gemv(k, ap, MR, P.B + u * W, P.ldb, P.alpha, P.beta, P.C + u * W);
                continue;
            }
            const index_t j0 = j_rest + (u - wide) * NR, nr = std::min(NR, n - j0);
            const T* b;
            index_t rs_b;
            if (!P.tb && nr == NR) {
                b = P.B + j0;
                rs_b = P.ldb;
            } else {
                T* bp = tl_own.get<T>(k * NR);
                pack_b_panel<T, NR>(P.tb, P.B, P.ldb, 0, k, j0, nr, bp);
                b = bp;
                rs_b = NR;
            }
            for (index_t ir = 0; ir < m; ir += MR)
                ukr(k, ap + ir * k, b, rs_b, P.alpha, P.beta, P.C + ir * P.rs_c + j0 * P.cs_c,
                    P.rs_c, P.cs_c, std::min(MR, m - ir), nr);
        }
    }
}

// Block sizes of one blocked call. Equal-sized depth blocks (k = 784 -> 4 x 196 rather than
// 3 x 256 + 16): a thin last block would pay the C load/store for little work.
template <typename Blk>
struct BlockPlan {
    index_t kc_max, nc_max;
    BlockPlan(index_t n, index_t k)
        : kc_max(ceil_div(k, ceil_div(k, Blk::KC))),
          nc_max(ceil_div(ceil_div(n, ceil_div(n, Blk::NC)), Blk::NR) * Blk::NR) {}
};

// Small m with a transposed B (dX = dZ W^T at batch 1..16, and the 10-unit layer after the
// transpose trick): C (i, j) is the dot product of row i of op(A) and row j of B as stored, so
// nothing big is packed. op(A) is used in place when its rows are contiguous, else copied to a
// row-major (m, k) buffer (cheap: m * k values). Threads split the columns of C.
template <typename T>
void gemm_small_m_dot(const Problem<T>& P) {
    const auto dot = Traits<T>::dot();
    const index_t m = P.m, n = P.n, k = P.k;
    const T* a = P.A;
    index_t lda = P.lda;
    if (P.ta) {
        T* at = tl_shared.get<T>(m * k);
        for (index_t p = 0; p < k; ++p)
            for (index_t i = 0; i < m; ++i) at[i * k + p] = P.A[p * P.lda + i];
        a = at;
        lda = k;
    }
    const index_t blocks = ceil_div(n, kDotNR);
    const int nthreads = threads_for(2.0 * m * n * k, blocks);
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        const index_t tid = thread_id(), nt = thread_count();
        const index_t b0 = blocks * tid / nt, b1 = blocks * (tid + 1) / nt;
        for (index_t jb = b0; jb < b1; ++jb) {
            const index_t j0 = jb * kDotNR, nr = std::min(kDotNR, n - j0);
            for (index_t i0 = 0; i0 < m; i0 += kDotMR)
                dot(k, a + i0 * lda, lda, P.B + j0 * P.ldb, P.ldb, P.alpha, P.beta,
                    P.C + i0 * P.rs_c + j0 * P.cs_c, P.rs_c, P.cs_c, std::min(kDotMR, m - i0),
                    nr);
        }
    }
}

// The five loops, threads splitting the rows of C (the IC loop): all threads pack the B panel
// together and share it; each packs its own A blocks. Best when m is large (dW = X^T dZ).
template <typename T>
void gemm_blocked_ic(const Problem<T>& P, int nthreads) {
    using Blk = typename Traits<T>::Blk;
    constexpr index_t MR = Blk::MR, NR = Blk::NR;
    const auto ukr = Traits<T>::ukr();
    const auto steps_ukr = Traits<T>::steps_ukr();
    const index_t m = P.m, n = P.n, k = P.k;
    const BlockPlan<Blk> plan(n, k);
    T* bp = tl_shared.get<T>(plan.kc_max * plan.nc_max);
    const index_t row_panels = ceil_div(m, MR);
    constexpr index_t kPanels = Blk::MC / MR;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        const index_t tid = thread_id(), nt = thread_count();
        // This thread's rows: a contiguous run of MR-tall panels.
        const index_t i_begin = std::min(m, row_panels * tid / nt * MR);
        const index_t i_end = std::min(m, row_panels * (tid + 1) / nt * MR);
        T* ap = tl_own.get<T>(Blk::MC * plan.kc_max);
        std::int32_t* offsets = tl_own_steps.get<std::int32_t>(kPanels * plan.kc_max);
        index_t counts[kPanels];
        for (index_t jc = 0; jc < n; jc += plan.nc_max) {
            const index_t nc = std::min(plan.nc_max, n - jc);
            const index_t col_panels = ceil_div(nc, NR);
            for (index_t pc = 0; pc < k; pc += plan.kc_max) {
                const index_t kc = std::min(plan.kc_max, k - pc);
                const T beta = pc == 0 ? P.beta : T(1);  // later depth blocks accumulate
#pragma omp for schedule(static)
                for (index_t jp = 0; jp < col_panels; ++jp)
                    pack_b_panel<T, NR>(P.tb, P.B, P.ldb, pc, kc, jc + jp * NR,
                                        std::min(NR, nc - jp * NR), bp + jp * NR * kc);
                // (implicit barrier: the whole B panel is packed)
                for (index_t ic = i_begin; ic < i_end; ic += Blk::MC) {
                    const index_t mc = std::min(Blk::MC, i_end - ic);
                    for (index_t r = 0; r < ceil_div(mc, MR); ++r)
                        counts[r] = pack_a_panel_steps<T, MR, NR>(P.ta, P.A, P.lda, ic + r * MR,
                                                                  std::min(MR, mc - r * MR), pc, kc,
                                                                  ap + r * MR * kc, offsets + r * kc);
                    for (index_t jr = 0; jr < nc; jr += NR) {
                        const index_t nr = std::min(NR, nc - jr);
                        for (index_t ir = 0; ir < mc; ir += MR) {
                            compute_tile(P, ukr, steps_ukr, kc, counts[ir / MR], offsets + ir / MR * kc,
                                         ap + ir * kc, bp + jr * kc, beta, pc + kc == k, ic + ir, jc + jr,
                                         std::min(MR, mc - ir), nr);
                        }
                    }
                }
#pragma omp barrier
                // (everyone is done with this B panel before it is overwritten)
            }
        }
    }
}

// The five loops, threads splitting the NR-wide column panels (the JR loop): each thread packs
// and reads only its own B panels (they stay in its private L2); all threads pack each A block
// together and share it. Best for batch-sized m (128): measured 10-15% faster than the IC split
// on 2 Zen 3 cores at 128x512x784 and 128x784x512.
template <typename T>
void gemm_blocked_jr(const Problem<T>& P, int nthreads) {
    using Blk = typename Traits<T>::Blk;
    constexpr index_t MR = Blk::MR, NR = Blk::NR;
    const auto ukr = Traits<T>::ukr();
    const auto steps_ukr = Traits<T>::steps_ukr();
    const index_t m = P.m, n = P.n, k = P.k;
    const BlockPlan<Blk> plan(n, k);
    T* bp = tl_shared.get<T>(plan.kc_max * plan.nc_max + Blk::MC * plan.kc_max);
    T* ap = bp + plan.kc_max * plan.nc_max;  // 64-byte aligned: nc_max * sizeof(T) is a multiple of NR * sizeof(T) = 64
    constexpr index_t kPanels = Blk::MC / MR;
    std::int32_t* offsets = tl_shared_steps.get<std::int32_t>(kPanels * plan.kc_max);
    index_t counts[kPanels];  // shared by the team: each panel's count written by the thread that packs it
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        const index_t tid = thread_id(), nt = thread_count();
        for (index_t jc = 0; jc < n; jc += plan.nc_max) {
            const index_t nc = std::min(plan.nc_max, n - jc);
            const index_t col_panels = ceil_div(nc, NR);
            // This thread's column panels.
            const index_t jp_begin = col_panels * tid / nt, jp_end = col_panels * (tid + 1) / nt;
            for (index_t pc = 0; pc < k; pc += plan.kc_max) {
                const index_t kc = std::min(plan.kc_max, k - pc);
                const T beta = pc == 0 ? P.beta : T(1);  // later depth blocks accumulate
                // No barrier needed: only this thread reads these panels.
                for (index_t jp = jp_begin; jp < jp_end; ++jp)
                    pack_b_panel<T, NR>(P.tb, P.B, P.ldb, pc, kc, jc + jp * NR,
                                        std::min(NR, nc - jp * NR), bp + jp * NR * kc);
                for (index_t ic = 0; ic < m; ic += Blk::MC) {
                    const index_t mc = std::min(Blk::MC, m - ic);
#pragma omp for schedule(static)
                    for (index_t r = 0; r < ceil_div(mc, MR); ++r)
                        counts[r] = pack_a_panel_steps<T, MR, NR>(P.ta, P.A, P.lda, ic + r * MR,
                                                                  std::min(MR, mc - r * MR), pc, kc,
                                                                  ap + r * MR * kc, offsets + r * kc);
                    // (implicit barrier: the whole A block is packed)
                    for (index_t jp = jp_begin; jp < jp_end; ++jp) {
                        const index_t jr = jp * NR, nr = std::min(NR, nc - jr);
                        for (index_t ir = 0; ir < mc; ir += MR) {
                            compute_tile(P, ukr, steps_ukr, kc, counts[ir / MR], offsets + ir / MR * kc,
                                         ap + ir * kc, bp + jr * kc, beta, pc + kc == k, ic + ir, jc + jr,
                                         std::min(MR, mc - ir), nr);
                        }
                    }
#pragma omp barrier
                    // (everyone is done with this A block before it is overwritten)
                }
            }
        }
    }
}

// Pick the thread split. Either way each C element gets the same arithmetic, so the choice
// (and the thread count) never changes the result.
template <typename T>
void gemm_blocked(const Problem<T>& P) {
    using Blk = typename Traits<T>::Blk;
    const double flops = 2.0 * P.m * P.n * P.k;
    if (P.m <= 2 * Blk::MC)
        gemm_blocked_jr(P, threads_for(flops, ceil_div(P.n, Blk::NR)));
    else
        gemm_blocked_ic(P, threads_for(flops, ceil_div(P.m, Blk::MR)));
}

// Sparse-row path (gemm_kernels.h, SgemmSparseRowsUkr): for an untransposed, mostly-zero op(A)
// in a plain product (alpha 1, beta 0: Dense forward). Taken when a sample of rows is at most
// kSparseMaxDensity nonzero. Layer-1 forward on Fashion-MNIST (half zeros), effective GFLOP/s,
// blocked -> sparse rows: 10 rows 99 -> 131, 32 rows 150 -> 185, 1024 rows 195 -> 228. With
// zeros scattered at random (none shared by a panel) both paths run alike at density 0.6.
constexpr index_t kSparseMinRows = 8;       // fewer rows: the small-m paths are as fast (on par at 6)
constexpr double kSparseMaxDensity = 0.6;
constexpr index_t kSparseSampleRows = 16;   // rows looked at to estimate the density
constexpr index_t kSparseChunk = 256;       // rows listed at a time, at most
constexpr index_t kSparseListBytes = index_t(2) << 20;  // and at most this much list (wide inputs)

template <typename T>
bool sparse_rows_suit(const Problem<T>& P) {
    if (P.ta || P.cs_c != 1 || P.alpha != T(1) || P.beta != T(0) || P.m < kSparseMinRows ||
        P.n < Traits<T>::kSparseW)
        return false;
    index_t nonzero = 0;
    for (index_t s = 0; s < kSparseSampleRows; ++s) {
        const T* a = P.A + (s * P.m / kSparseSampleRows) * P.lda;
        for (index_t p = 0; p < P.k; ++p) nonzero += a[p] != T(0) ? 1 : 0;
    }
    return static_cast<double>(nonzero) <= kSparseMaxDensity * static_cast<double>(kSparseSampleRows * P.k);
}

// C (m, n) = op(A) op(B) row by row from each row's nonzero entries, a chunk of rows at a time:
// all threads list the chunk's nonzeros per depth block (rows split between them), then each
// thread takes its own W-wide column panels (or, with fewer panels than threads, its part of a
// panel's rows) and, for each depth block, packs that kSparseKC x W block of op(B) into a small
// private buffer (it stays in L1; B is read once per chunk and never written back) and runs the
// sparse-row kernel for its rows of the chunk over it. A row's arithmetic depends only on k and
// its own values, not on the thread, the chunk or the part it falls in.
template <typename T>
void gemm_sparse_rows(const Problem<T>& P) {
    constexpr index_t W = Traits<T>::kSparseW;
    const auto kernel = Traits<T>::sparse_rows();
    const auto compress = Traits<T>::compress();
    const index_t m = P.m, n = P.n, k = P.k;
    const index_t blocks = ceil_div(k, kSparseKC), kc_max = ceil_div(k, blocks);  // equal depth blocks
    const index_t cap = kc_max;  // list capacity per row and depth block
    // Offsets are relative to a packed block: below kSparseKC * W, so int32 always holds them.
    const index_t panels = ceil_div(n, W);
    const index_t row_bytes = blocks * cap * static_cast<index_t>(sizeof(T) + sizeof(std::int32_t));
    const index_t chunk = std::min(m, std::clamp(kSparseListBytes / row_bytes, kSparseMinRows, kSparseChunk));
    T* vals = tl_shared.get<T>(chunk * blocks * cap);
    std::int32_t* offs = tl_shared_steps.get<std::int32_t>(chunk * blocks * cap);
    index_t* counts = tl_shared_counts.get<index_t>(chunk * blocks);
    const int nthreads = threads_for(2.0 * m * n * k, panels * m);
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        const index_t tid = thread_id(), nt = thread_count();
        // Tasks (panel jp, part of the chunk's rows): one part per panel when there are at least
        // as many panels as threads, else enough parts for every thread to get work.
        const index_t parts = ceil_div(nt, panels), tasks = panels * parts;
        const index_t task_begin = tasks * tid / nt, task_end = tasks * (tid + 1) / nt;
        T* block = tl_own.get<T>(kc_max * W);
        for (index_t i0 = 0; i0 < m; i0 += chunk) {
            const index_t rows = std::min(chunk, m - i0);
            // List (depth block kb, row r) at (kb * rows + r) * cap, offsets relative to the
            // packed block: one block's lists of the chunk lie together, read in that order.
#pragma omp for schedule(static)
            for (index_t r = 0; r < rows; ++r) {
                const T* a = P.A + (i0 + r) * P.lda;
                for (index_t kb = 0; kb < blocks; ++kb) {
                    const index_t p0 = kb * kc_max, len = std::min(kc_max, k - p0);
                    const index_t at = (kb * rows + r) * cap;
                    counts[kb * rows + r] = compress(a + p0, len, 0, static_cast<std::int32_t>(W), offs + at, vals + at);
                }
            }
            // (implicit barrier: the chunk is listed)
            for (index_t task = task_begin; task < task_end; ++task) {
                const index_t jp = task / parts, part = task % parts;
                const index_t r0 = rows * part / parts, r1 = rows * (part + 1) / parts;
                if (r0 == r1) continue;
                const index_t j0 = jp * W, nr = std::min(W, n - j0);
                for (index_t kb = 0; kb < blocks; ++kb) {
                    const index_t p0 = kb * kc_max, len = std::min(kc_max, k - p0);
                    pack_b_panel<T, W>(P.tb, P.B, P.ldb, p0, len, j0, nr, block);
                    const index_t at = (kb * rows + r0) * cap;
                    kernel(r1 - r0, counts + kb * rows + r0, offs + at, vals + at, cap, block, kb > 0,
                           P.C + (i0 + r0) * P.rs_c + j0, P.rs_c, nr);
                }
                if (P.epilogue != nullptr)
                    P.epilogue->fn(P.epilogue->ctx, P.C + (i0 + r0) * P.rs_c + j0, P.rs_c, i0 + r0, j0, r1 - r0, nr);
            }
#pragma omp barrier
            // (everyone is done with the chunk's lists before they are overwritten)
        }
    }
}

// C = beta * C, for k == 0 or alpha == 0 (beta == 0 writes zeros without reading C).
template <typename T>
void scale_c(index_t m, index_t n, T beta, T* C, index_t ldc) {
    for (index_t i = 0; i < m; ++i) {
        T* c = C + i * ldc;
        if (beta == T(0))
            std::fill(c, c + n, T(0));
        else
            for (index_t j = 0; j < n; ++j) c[j] *= beta;
    }
}

// Element accessors for the naive twin: op(A) (m, k) and op(B) (k, n).
template <typename T>
inline T at_a(bool trans, const T* A, index_t lda, index_t i, index_t p) {
    return trans ? A[p * lda + i] : A[i * lda + p];
}
template <typename T>
inline T at_b(bool trans, const T* B, index_t ldb, index_t p, index_t j) {
    return trans ? B[j * ldb + p] : B[p * ldb + j];
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
          index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc,
          const TileEpilogue<T>* epilogue) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == T(0)) {
        scale_c(m, n, beta, C, ldc);
        if (epilogue != nullptr) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, m, n);
        return;
    }
    Problem<T> P{trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 1};
    // Few columns, many rows (a 10-unit layer, or n == 1): compute C^T = op(B)^T op(A)^T so the
    // short side lands on the kernel's rows. The choice depends on the shape only.
    if (n <= kSmallM && m > n)
        P = Problem<T>{!trans_b, !trans_a, n, m, k, alpha, B, ldb, A, lda, beta, C, 1, ldc};
    const bool tiled = P.m > kSmallM;  // only the blocked paths hand out tiles
    if (tiled) P.epilogue = epilogue;
    if (sparse_rows_suit(P))
        gemm_sparse_rows(P);
    else if (P.m <= kSmallM && P.tb)
        gemm_small_m_dot(P);
    else if (P.m <= kSmallM)
        gemm_small_m(P);
    else
        gemm_blocked(P);
    if (!tiled && epilogue != nullptr) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, m, n);
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

std::string gemm_kernel_name() { return kernels().name; }

bool avx2_kernels() { return &kernels() != gemm_generic_kernels(); }

#define LAMINA_INSTANTIATE_GEMM(T)                                                          \
    template void gemm<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t,      \
                          const T*, index_t, T, T*, index_t, const TileEpilogue<T>*);      \
    template void gemm_naive<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t, \
                                const T*, index_t, T, T*, index_t);
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
