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
// The five loops are written once (gemm_blocked), templated on a split policy that the plan picks
// by shape: threads split either the IC loop (rows of C; B panel packed together and shared) or
// the JR loop (column panels; A block packed together and shared); either way each element of C
// has exactly one writer.
//
// Every element of C is summed over k in the same order (the same KC blocks ascending, p ascending
// inside a block; depth_block) by the same instructions whatever path or thread computes it, so
// the result depends neither on the thread count nor on the rest of the batch (the small-m dot
// path for dX is the one exception; gemm.h). Transposes are handled by the packing routines only.
#include "lamina/gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#include "lamina/gemm_kernels.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"


namespace lamina {

using namespace gemm_detail;

namespace {

// ---------------------------------------------------------------------------------------------
// Kernel dispatch: decided once, on first use. The best table this build and CPU have
// (avx512 -> avx2 -> generic), or the one LAMINA_GEMM_KERNEL names.

// Every table name LAMINA_GEMM_KERNEL may give, whether or not this build or CPU has it.
constexpr const char* kTableNames[] = {"avx512", "avx2", "generic"};

// The tables this build has and this CPU can run, best first.
std::vector<const GemmKernelTable*> available_tables() {
    std::vector<const GemmKernelTable*> out;
#if defined(LAMINA_HAVE_AVX512_TU) && defined(LAMINA_HAVE_AVX2_TU)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        out.push_back(gemm_avx512_kernels());  // it borrows AVX2 kernels (gemm_avx512.cpp)
#endif
#ifdef LAMINA_HAVE_AVX2_TU
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(gemm_avx2_kernels());
#endif
    out.push_back(gemm_generic_kernels());
    return out;
}

std::string joined_names(const std::vector<const GemmKernelTable*>& tables) {
    std::string out;
    for (const GemmKernelTable* t : tables) out += (out.empty() ? "" : ", ") + std::string(t->name);
    return out;
}

const GemmKernelTable* select_kernels() {
    const std::vector<const GemmKernelTable*> tables = available_tables();
    const char* env = std::getenv("LAMINA_GEMM_KERNEL");
    if (env == nullptr || *env == '\0') return tables.front();
    for (const GemmKernelTable* t : tables)
        if (std::strcmp(env, t->name) == 0) return t;
    std::string known;
    bool is_known = false;
    for (const char* name : kTableNames) {
        known += (known.empty() ? "" : ", ") + std::string(name);
        is_known |= std::strcmp(env, name) == 0;
    }
    if (is_known)
        throw std::invalid_argument("LAMINA_GEMM_KERNEL=" + std::string(env) +
                                    ", but this CPU or build cannot run it; available here: " +
                                    joined_names(tables));
    throw std::invalid_argument("LAMINA_GEMM_KERNEL must be one of " + known + " (or unset), received '" +
                                std::string(env) + "'");
}

const GemmKernelTable& kernels() {
    static const GemmKernelTable* const table = select_kernels();
    return *table;
}

// The blockings, widths and kernels of one element type.
template <typename T> struct Traits;
template <> struct Traits<float> {
    using Blk = BlockingF32;
    using Avx512Blk = BlockingF32Avx512;
    static const KernelSet<float>& k() { return kernels().f32; }
    static constexpr index_t kGemvW = kGemvWF32, kSparseW = kSparseWF32;
};
template <> struct Traits<double> {
    using Blk = BlockingF64;
    using Avx512Blk = BlockingF64Avx512;
    static const KernelSet<double>& k() { return kernels().f64; }
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

// dst[0:n] = src[0:n] for n < 128, as at most seven copies of constant size (inlined, no call).
template <typename T>
inline void copy_short(const T* src, index_t n, T* dst) {
    index_t i = 0;
    if (n & 64) { std::memcpy(dst + i, src + i, 64 * sizeof(T)); i += 64; }
    if (n & 32) { std::memcpy(dst + i, src + i, 32 * sizeof(T)); i += 32; }
    if (n & 16) { std::memcpy(dst + i, src + i, 16 * sizeof(T)); i += 16; }
    if (n & 8) { std::memcpy(dst + i, src + i, 8 * sizeof(T)); i += 8; }
    if (n & 4) { std::memcpy(dst + i, src + i, 4 * sizeof(T)); i += 4; }
    if (n & 2) { std::memcpy(dst + i, src + i, 2 * sizeof(T)); i += 2; }
    if (n & 1) dst[i] = src[i];
}

// Pack op(B)[p0:p0+kc, j0:j0+nr] (nr <= NR) into one NR-wide panel bp[p*NR + j]; columns past
// nr are zero.
template <typename T, index_t NR>
void pack_b_panel(bool tb, const T* B, index_t ldb, index_t p0, index_t kc, index_t j0,
                  index_t nr, T* bp) {
    static_assert(NR < 128, "copy_short copies edge rows of fewer than 128 values");
    if (!tb) {
        // B stored (k, n): a row of the panel is a contiguous piece of a row of B.
        const T* src = B + p0 * ldb + j0;
        if (nr == NR) {
            for (index_t p = 0; p < kc; ++p)
                for (index_t j = 0; j < NR; ++j) bp[p * NR + j] = src[p * ldb + j];
        } else {
            // Edge panel: zero each row, then copy its nr valid values, both with copies of
            // constant size the compiler inlines (a per-element select does not vectorize, and a
            // library call per short row costs more than the row: a 10-unit layer at batch 1
            // packs its 512-row panel every step).
            for (index_t p = 0; p < kc; ++p) {
                T* row = bp + p * NR;
                for (index_t j = 0; j < NR; ++j) row[j] = T(0);
                copy_short(src + p * ldb, nr, row);
            }
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
// skips the rest (gemm_kernels.h, StepsUkr). A panel with no zero step is packed exactly
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
    bool transposed;  // computing C^T (the caller's C is (n, m) here)
    const TileEpilogue<T>* epilogue = nullptr;  // blocked paths only (C untransposed there)
};

// One MR x NR tile of a blocked product over one depth block: the plain micro-kernel, or the
// steps kernel for a panel packed with fewer than kc steps; after the last depth block the
// epilogue runs on the finished tile while it is in cache. The tile is C[i0 :, j0 :] (mr x nr),
// a the packed A panel (count steps, their offsets into the packed B panel b).
template <typename T, typename Blk, typename Ukr, typename StepsUkr>
inline void compute_tile(const Problem<T>& P, Ukr ukr, StepsUkr steps_ukr, index_t kc, index_t count,
                         const std::int32_t* offsets, const T* a, const T* b, T beta, bool last_depth_block,
                         index_t i0, index_t j0, index_t mr, index_t nr) {
    T* c = P.C + i0 * P.rs_c + j0 * P.cs_c;
    if (count == kc)
        ukr(kc, a, b, Blk::NR, P.alpha, beta, c, P.rs_c, P.cs_c, mr, nr);  // b: a packed panel
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
    return static_cast<int>(std::min<index_t>(region_threads(), tasks));
}


// The depth blocks, the same for every path: each element of C is summed as
//   s_b = ((0 + a_p0 b_p0) + a_p0+1 b_p0+1) + ...   (one FMA chain over block b, p ascending)
//   C = alpha s_0 [+ beta C],  then C = C + alpha s_b for b = 1, 2, ... in order,
// so a row of C gets the same bits whichever path computes it, and so whatever the batch it is
// in (zeros of A may be skipped: they add exactly nothing to a finite sum). Equal-sized blocks
// (k = 784 -> 4 x 196 rather than 3 x 256 + 16): a thin last block would pay the C load/store
// for little work. Block b covers [b * kc_max, min(k, (b + 1) * kc_max)).
template <typename Blk>
inline index_t depth_block(index_t k) { return ceil_div(k, ceil_div(k, Blk::KC)); }

// Block sizes of one blocked call.
template <typename Blk>
struct BlockPlan {
    index_t kc_max, nc_max;
    BlockPlan(index_t n, index_t k)
        : kc_max(depth_block<Blk>(k)),
          nc_max(ceil_div(ceil_div(n, ceil_div(n, Blk::NC)), Blk::NR) * Blk::NR) {}
};

// Small m: C (m, n), m <= kSmallM. op(A) packed once by the caller (m * k values); each thread
// takes a range of column blocks. With an untransposed B full blocks are read straight from B;
// other blocks are packed (a thread's own NR-wide sliver). B is streamed once.
template <typename T, typename Blk>
void gemm_small_m(const Problem<T>& P, int nthreads) {
    constexpr index_t MR = Blk::MR, NR = Blk::NR;
    const auto ukr = Traits<T>::k().tile;
    const index_t m = P.m, n = P.n, k = P.k;
    const index_t kc_max = depth_block<Blk>(k);
    // Work units: for m == 1 with B in place, kGemvW-wide row-vector blocks first (see
    // gemm_kernels.h); then NR-wide micro-kernel blocks for the remaining columns.
    constexpr index_t W = Traits<T>::kGemvW;
    const bool use_gemv = m == 1 && !P.tb && P.cs_c == 1;
    const index_t wide = use_gemv ? n / W : 0, j_rest = wide * W;
    // A row vector that only row-vector blocks read is read where it is (step p at A + p);
    // otherwise op(A) is packed, panel r at ap + r * MR * k, step p at + p * MR.
    const bool a_in_place = use_gemv && !P.ta && j_rest == n;
    T* ap = a_in_place ? nullptr : tl_shared.get<T>(ceil_div(m, MR) * MR * k);
    if (!a_in_place) pack_a<T, MR>(P.ta, P.A, P.lda, 0, m, 0, k, ap);
    const T* a_vec = a_in_place ? P.A : ap;
    const index_t inc_a = a_in_place ? 1 : MR;
    const index_t units = wide + ceil_div(n - j_rest, NR);
    const auto gemv = Traits<T>::k().gemv;
    parallel_region(nthreads, [&](TeamThread& team) {
        const index_t tid = team.id(), nt = team.count();
        const index_t u0 = units * tid / nt, u1 = units * (tid + 1) / nt;
        for (index_t u = u0; u < u1; ++u) {
            if (u < wide) {
                for (index_t pc = 0; pc < k; pc += kc_max)
                    gemv(std::min(kc_max, k - pc), a_vec + pc * inc_a, inc_a, P.B + pc * P.ldb + u * W, P.ldb,
                         P.alpha, pc == 0 ? P.beta : T(1), P.C + u * W);
                continue;
            }
            const index_t j0 = j_rest + (u - wide) * NR, nr = std::min(NR, n - j0);
            const bool in_place = !P.tb && nr == NR;
            const T* b = P.B + j0;
            const index_t rs_b = in_place ? P.ldb : NR;
            if (!in_place) {
                T* bp = tl_own.get<T>(k * NR);
                pack_b_panel<T, NR>(P.tb, P.B, P.ldb, 0, k, j0, nr, bp);
                b = bp;
            }
            for (index_t pc = 0; pc < k; pc += kc_max) {
                const index_t kc = std::min(kc_max, k - pc);
                const T beta = pc == 0 ? P.beta : T(1);  // later depth blocks accumulate
                for (index_t ir = 0; ir < m; ir += MR)
                    ukr(kc, ap + ir * k + pc * MR, b + pc * rs_b, rs_b, P.alpha, beta,
                        P.C + ir * P.rs_c + j0 * P.cs_c, P.rs_c, P.cs_c, std::min(MR, m - ir), nr);
            }
        }
    });
}

// Few columns, many rows, nothing transposed (a 10-unit layer's forward, X W2 (m, 10)): A read
// in place by the rows micro-kernel, since packing A would cost more than the product; op(B)
// packed once into NR-wide panels (k * NR values each), or read in place too by a kernel that
// reads only the valid columns (rows_masked_b); threads split the rows of C.
template <typename T, typename Blk>
void gemm_narrow(const Problem<T>& P, int nthreads) {
    constexpr index_t MR = Blk::MR;
    const KernelSet<T>& kernels = Traits<T>::k();
    const auto ukr = kernels.rows;
    const index_t NR = kernels.rows_nr;  // Blk::NR, or 16 (AVX-512 doubles)
    const index_t m = P.m, n = P.n, k = P.k;
    const index_t kc_max = depth_block<Blk>(k);
    const index_t col_panels = ceil_div(n, NR);  // 1 or 2 (n <= kSmallM)
    const bool in_place = kernels.rows_masked_b && !P.tb;
    const T* b = P.B;  // panel jp at b + jp * panel, step p at + p * ldb
    index_t ldb = P.ldb, panel = NR;
    if (!in_place) {
        T* bp = tl_shared.get<T>(col_panels * k * NR);
        for (index_t jp = 0; jp < col_panels; ++jp) {
            const index_t j0 = jp * NR, nr = std::min(NR, n - j0);
            if (NR == 16)
                pack_b_panel<T, 16>(P.tb, P.B, P.ldb, 0, k, j0, nr, bp + jp * k * NR);
            else if (NR == 8)
                pack_b_panel<T, 8>(P.tb, P.B, P.ldb, 0, k, j0, nr, bp + jp * k * NR);
            else
                throw std::logic_error("gemm_narrow: a rows kernel panel width other than 8 or 16");
        }
        b = bp;
        ldb = NR;
        panel = k * NR;
    }
    const index_t row_panels = ceil_div(m, MR);
    parallel_region(nthreads, [&](TeamThread& team) {
        const index_t tid = team.id(), nt = team.count();
        const index_t r0 = row_panels * tid / nt, r1 = row_panels * (tid + 1) / nt;
        for (index_t r = r0; r < r1; ++r) {
            const index_t i0 = r * MR, mr = std::min(MR, m - i0);
            for (index_t jp = 0; jp < col_panels; ++jp)
                for (index_t pc = 0; pc < k; pc += kc_max)
                    ukr(std::min(kc_max, k - pc), P.A + i0 * P.lda + pc, P.lda, b + jp * panel + pc * ldb, ldb,
                        P.alpha, pc == 0 ? P.beta : T(1), P.C + i0 * P.rs_c + jp * NR, P.rs_c, P.cs_c, mr,
                        std::min(NR, n - jp * NR));
        }
    });
}

// Small m with an untransposed A and a transposed B (dX = dZ W^T at batch 1..16; never the
// forward product, which after the transpose trick has both transposed): C (i, j) is the dot product of row i of op(A) and row j of B as stored, so
// nothing is packed: A and B are read in place. Threads split the columns of C.
template <typename T>
void gemm_small_m_dot(const Problem<T>& P, int nthreads) {
    const auto dot = Traits<T>::k().dot;
    const index_t m = P.m, n = P.n, k = P.k;
    const T* a = P.A;
    const index_t lda = P.lda;
    const index_t blocks = ceil_div(n, kDotNR);
    parallel_region(nthreads, [&](TeamThread& team) {
        const index_t tid = team.id(), nt = team.count();
        const index_t b0 = blocks * tid / nt, b1 = blocks * (tid + 1) / nt;
        for (index_t jb = b0; jb < b1; ++jb) {
            const index_t j0 = jb * kDotNR, nr = std::min(kDotNR, n - j0);
            for (index_t i0 = 0; i0 < m; i0 += kDotMR)
                dot(k, a + i0 * lda, lda, P.B + j0 * P.ldb, P.ldb, P.alpha, P.beta,
                    P.C + i0 * P.rs_c + j0 * P.cs_c, P.rs_c, P.cs_c, std::min(kDotMR, m - i0),
                    nr);
        }
    });
}

// for (i = begin; i < end; ++i) body(i), divided among the team when Shared (the loop ends with
// the team's barrier: all of the result is there for everyone), else by this thread alone (no
// barrier: only it reads what it packs). Called inside the parallel region.
template <bool Shared, typename Body>
inline void pack_loop(TeamThread& team, index_t begin, index_t end, Body body) {
    if constexpr (Shared) {
        team.for_each(end - begin, [&](index_t i) { body(begin + i); });
    } else {
        for (index_t i = begin; i < end; ++i) body(i);
    }
}

// The five loops (the file's header), once for both splits. The split policy says which loop
// the team divides, and so which packed operand the threads build together and share:
//   rows (the IC loop): each thread owns a run of MR-tall row panels and packs its own A
//     blocks; all pack each B panel together and share it. Best when m is large (dW = X^T dZ).
//   columns (the JR loop, also the one-thread case): each thread owns a run of NR-wide column
//     panels and packs and reads only its own B panels (they stay in its private L2); all pack
//     each A block together and share it. Best for batch-sized m (128), where it beats the IC
//     split (bench/RESULTS.md, "Figures behind code comments").
// Either way each element of C has exactly one writer, and gets the same depth blocks in the
// same order from the same kernels: the split changes who computes a tile, never how.
template <typename T, typename Blk, GemmSplit Split>
void gemm_blocked(const Problem<T>& P, int nthreads) {
    static_assert(Split == GemmSplit::rows || Split == GemmSplit::columns, "a blocked split");
    constexpr bool share_b = Split == GemmSplit::rows;  // else the A block is shared
    constexpr index_t MR = Blk::MR, NR = Blk::NR;
    constexpr index_t kPanels = Blk::MC / MR;
    const auto ukr = Traits<T>::k().tile;
    const auto steps_ukr = Traits<T>::k().steps;
    const index_t m = P.m, n = P.n, k = P.k;
    const BlockPlan<Blk> plan(n, k);
    // The shared buffers are the calling thread's: the B panel (with the columns split, each
    // thread writes and reads only its own panels of it), then the A block when it is shared.
    const index_t b_size = plan.kc_max * plan.nc_max, a_size = Blk::MC * plan.kc_max;
    T* bp = tl_shared.get<T>(b_size + (share_b ? 0 : a_size));
    // 64-byte aligned: nc_max * sizeof(T) is a multiple of NR * sizeof(T) = 64.
    T* const shared_ap = share_b ? nullptr : bp + b_size;
    std::int32_t* const shared_offsets =
        share_b ? nullptr : tl_shared_steps.get<std::int32_t>(kPanels * plan.kc_max);
    index_t shared_counts[kPanels];  // each panel's count written by the thread that packs it
    const index_t row_panels = ceil_div(m, MR);
    parallel_region(nthreads, [&](TeamThread& team) {
        const index_t tid = team.id(), nt = team.count();
        T* ap = share_b ? tl_own.get<T>(a_size) : shared_ap;
        std::int32_t* offsets = share_b ? tl_own_steps.get<std::int32_t>(kPanels * plan.kc_max) : shared_offsets;
        index_t own_counts[kPanels];
        index_t* counts = share_b ? own_counts : shared_counts;
        // This thread's rows: a contiguous run of MR-tall panels, or all of them.
        const index_t i_begin = share_b ? std::min(m, row_panels * tid / nt * MR) : 0;
        const index_t i_end = share_b ? std::min(m, row_panels * (tid + 1) / nt * MR) : m;
        for (index_t jc = 0; jc < n; jc += plan.nc_max) {
            const index_t nc = std::min(plan.nc_max, n - jc);
            const index_t col_panels = ceil_div(nc, NR);
            // This thread's column panels: all of them, or a contiguous run.
            const index_t jp_begin = share_b ? 0 : col_panels * tid / nt;
            const index_t jp_end = share_b ? col_panels : col_panels * (tid + 1) / nt;
            for (index_t pc = 0; pc < k; pc += plan.kc_max) {
                const index_t kc = std::min(plan.kc_max, k - pc);
                const T beta = pc == 0 ? P.beta : T(1);  // later depth blocks accumulate
                pack_loop<share_b>(team, jp_begin, jp_end, [&](index_t jp) {
                    pack_b_panel<T, NR>(P.tb, P.B, P.ldb, pc, kc, jc + jp * NR, std::min(NR, nc - jp * NR),
                                        bp + jp * NR * kc);
                });
                for (index_t ic = i_begin; ic < i_end; ic += Blk::MC) {
                    const index_t mc = std::min(Blk::MC, i_end - ic);
                    pack_loop<!share_b>(team, 0, ceil_div(mc, MR), [&](index_t r) {
                        counts[r] = pack_a_panel_steps<T, MR, NR>(P.ta, P.A, P.lda, ic + r * MR,
                                                                  std::min(MR, mc - r * MR), pc, kc,
                                                                  ap + r * MR * kc, offsets + r * kc);
                    });
                    for (index_t jp = jp_begin; jp < jp_end; ++jp) {
                        const index_t jr = jp * NR, nr = std::min(NR, nc - jr);
                        for (index_t ir = 0; ir < mc; ir += MR) {
                            compute_tile<T, Blk>(P, ukr, steps_ukr, kc, counts[ir / MR], offsets + ir / MR * kc,
                                                 ap + ir * kc, bp + jr * kc, beta, pc + kc == k, ic + ir, jc + jr,
                                                 std::min(MR, mc - ir), nr);
                        }
                    }
                    if constexpr (!share_b) {
                        team.barrier();  // everyone is done with this A block before it is overwritten
                    }
                }
                if constexpr (share_b) {
                    team.barrier();  // everyone is done with this B panel before it is overwritten
                }
            }
        }
    });
}

// Sparse-row path (gemm_kernels.h, SparseRowsUkr): for an untransposed, mostly-zero op(A)
// in a plain product (alpha 1, beta 0: Dense forward). Taken when a sample of rows is at most
// kSparseMaxDensity nonzero: faster than the blocked path on images with many zero pixels, on
// par with zeros scattered at random (bench/RESULTS.md, "Figures behind code comments").
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
// panel's rows) and, for each depth block, packs that kc x W block of op(B) into a small
// private buffer (it stays in L1/L2; B is read once per chunk and never written back) and runs the
// sparse-row kernel for its rows of the chunk over it. A row's arithmetic depends only on k and
// its own values, not on the thread, the chunk or the part it falls in.
template <typename T>
void gemm_sparse_rows(const Problem<T>& P, int nthreads) {
    constexpr index_t W = Traits<T>::kSparseW;
    const auto kernel = Traits<T>::k().sparse_rows;
    const auto compress = Traits<T>::k().compress;
    const index_t m = P.m, n = P.n, k = P.k;
    const index_t kc_max = depth_block<typename Traits<T>::Blk>(k), blocks = ceil_div(k, kc_max);
    const index_t cap = kc_max;  // list capacity per row and depth block
    // Offsets are relative to a packed block: below KC * W, so int32 always holds them.
    const index_t panels = ceil_div(n, W);
    const index_t row_bytes = blocks * cap * static_cast<index_t>(sizeof(T) + sizeof(std::int32_t));
    const index_t chunk = std::min(m, std::clamp(kSparseListBytes / row_bytes, kSparseMinRows, kSparseChunk));
    T* vals = tl_shared.get<T>(chunk * blocks * cap);
    std::int32_t* offs = tl_shared_steps.get<std::int32_t>(chunk * blocks * cap);
    index_t* counts = tl_shared_counts.get<index_t>(chunk * blocks);
    parallel_region(nthreads, [&](TeamThread& team) {
        const index_t tid = team.id(), nt = team.count();
        // Tasks (panel jp, part of the chunk's rows): one part per panel when there are at least
        // as many panels as threads, else enough parts for every thread to get work.
        const index_t parts = ceil_div(nt, panels), tasks = panels * parts;
        const index_t task_begin = tasks * tid / nt, task_end = tasks * (tid + 1) / nt;
        T* block = tl_own.get<T>(kc_max * W);
        for (index_t i0 = 0; i0 < m; i0 += chunk) {
            const index_t rows = std::min(chunk, m - i0);
            // List (depth block kb, row r) at (kb * rows + r) * cap, offsets relative to the
            // packed block: one block's lists of the chunk lie together, read in that order.
            team.for_each(rows, [&](index_t r) {
                const T* a = P.A + (i0 + r) * P.lda;
                for (index_t kb = 0; kb < blocks; ++kb) {
                    const index_t p0 = kb * kc_max, len = std::min(kc_max, k - p0);
                    const index_t at = (kb * rows + r) * cap;
                    counts[kb * rows + r] = compress(a + p0, len, 0, static_cast<std::int32_t>(W), offs + at, vals + at);
                }
            });  // (for_each ends with the barrier: the chunk is listed)
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
            team.barrier();  // everyone is done with the chunk's lists before they are overwritten
        }
    });
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

// The problem as the drivers see it. Few columns, many rows (n == 1, dX of a narrow layer):
// compute C^T = op(B)^T op(A)^T so the short side lands on the kernel's rows; a plain product
// C = A B with few columns (a 10-unit layer's forward) takes the narrow path instead. The choice depends
// on the shape only, and changes no element's arithmetic (a * b == b * a, same depth order).
template <typename T>
Problem<T> normalize(bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, const T* A, index_t lda,
                     const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    if (n <= kSmallM && m > n && !(m > kSmallM && !ta && !tb))  // that one goes to the narrow path
        return Problem<T>{!tb, !ta, n, m, k, alpha, B, ldb, A, lda, beta, C, 1, ldc, true};
    return Problem<T>{ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 1, false};
}

// The plan: a pure function of the normalized problem (its shape, flags and scalars, the thread
// setting, and for the sparse-row test a sample of A's zeros). Each element's arithmetic is the
// same whichever path and split it picks (gemm.h), so the plan only decides speed.
template <typename T, typename Blk>
GemmPlan plan_for(const Problem<T>& P) {
    const double flops = 2.0 * P.m * P.n * P.k;
    const bool transposed = P.transposed;
    auto make = [&](GemmPath path, GemmSplit split, index_t tasks) {
        const int threads = threads_for(flops, tasks);
        return GemmPlan{path, threads > 1 ? split : GemmSplit::none, threads, transposed};
    };
    if (sparse_rows_suit(P)) return make(GemmPath::sparse_rows, GemmSplit::columns, ceil_div(P.n, Traits<T>::kSparseW) * P.m);
    // Few columns, nothing transposed: the narrow path, for many rows and also for rows no more
    // than columns (the 10-unit layer at batch 1 packs a 6-row tile's 16-wide panel, not the
    // AVX-512 tile's 32-wide one).
    if (P.n <= kSmallM && (P.m > kSmallM || (P.m <= P.n && !P.transposed)) && !P.ta && !P.tb)
        return make(GemmPath::narrow, GemmSplit::rows, ceil_div(P.m, Traits<T>::Blk::MR));  // 6-row tiles, see execute
    if (P.m <= kSmallM && P.tb && !P.ta) return make(GemmPath::small_m_dot, GemmSplit::columns, ceil_div(P.n, kDotNR));
    if (P.m <= kSmallM) {
        constexpr index_t W = Traits<T>::kGemvW;
        const index_t wide = P.m == 1 && !P.tb && P.cs_c == 1 ? P.n / W : 0;
        return make(GemmPath::small_m, GemmSplit::columns, wide + ceil_div(P.n - wide * W, Blk::NR));
    }
    // Threads split the column panels (JR) for batch-sized m, the rows of C (IC) for larger m.
    if (P.m <= 2 * Blk::MC) return make(GemmPath::blocked, GemmSplit::columns, ceil_div(P.n, Blk::NR));
    return make(GemmPath::blocked, GemmSplit::rows, ceil_div(P.m, Blk::MR));
}

// Run the plan for P with the tiles of Blk (those of the kernel table in use). C (m, n) with
// ldc is the caller's, for the epilogue of the paths that do not hand out tiles.
template <typename T, typename Blk>
void execute(Problem<T> P, const TileEpilogue<T>* epilogue, T* C, index_t ldc, index_t m, index_t n) {
    const GemmPlan plan = plan_for<T, Blk>(P);
    const bool tiled = plan.path == GemmPath::blocked || plan.path == GemmPath::sparse_rows;
    if (tiled) P.epilogue = epilogue;  // only these paths hand out tiles
    switch (plan.path) {
        case GemmPath::sparse_rows: gemm_sparse_rows(P, plan.threads); break;
        case GemmPath::small_m_dot: gemm_small_m_dot(P, plan.threads); break;
        case GemmPath::small_m: gemm_small_m<T, Blk>(P, plan.threads); break;
        // The narrow path always takes the 6-row tiles and the table's rows kernel for them (the
        // AVX-512 one is 6 x 16 and reads B in place; a 12 x 32 version had run 3x slower with 2
        // threads at 128x10x512, bench/RESULTS.md). Same arithmetic either way.
        case GemmPath::narrow: gemm_narrow<T, typename Traits<T>::Blk>(P, plan.threads); break;
        case GemmPath::blocked:
            // The plan's split picks the policy; one thread runs the columns one, as a team of one.
            if (plan.split == GemmSplit::rows) gemm_blocked<T, Blk, GemmSplit::rows>(P, plan.threads);
            else gemm_blocked<T, Blk, GemmSplit::columns>(P, plan.threads);
            break;
        case GemmPath::scale: break;  // handled by gemm()
    }
    if (!tiled && epilogue != nullptr) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, m, n);
}

}  // namespace

const GemmKernelTable& gemm_detail::active_kernels() { return kernels(); }

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
    const Problem<T> P = normalize(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    if (kernels().avx512_tiles)
        execute<T, typename Traits<T>::Avx512Blk>(P, epilogue, C, ldc, m, n);
    else
        execute<T, typename Traits<T>::Blk>(P, epilogue, C, ldc, m, n);
}

template <typename T>
GemmPlan gemm_plan(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* A,
                   index_t lda, const T* B, index_t ldb, T beta) {
    if (m <= 0 || n <= 0 || k <= 0 || alpha == T(0)) return GemmPlan{GemmPath::scale, GemmSplit::none, 1, false};
    const Problem<T> P = normalize<T>(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, nullptr, n);
    return kernels().avx512_tiles ? plan_for<T, typename Traits<T>::Avx512Blk>(P) : plan_for<T, typename Traits<T>::Blk>(P);
}

const char* gemm_path_name(GemmPath path) {
    switch (path) {
        case GemmPath::scale: return "scale";
        case GemmPath::small_m: return "small_m";
        case GemmPath::narrow: return "narrow";
        case GemmPath::small_m_dot: return "small_m_dot";
        case GemmPath::sparse_rows: return "sparse_rows";
        case GemmPath::blocked: return "blocked";
    }
    return "?";
}

const char* gemm_split_name(GemmSplit split) {
    switch (split) {
        case GemmSplit::none: return "none";
        case GemmSplit::columns: return "columns";
        case GemmSplit::rows: return "rows";
    }
    return "?";
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

std::vector<std::string> gemm_kernels_available() {
    std::vector<std::string> out;
    for (const GemmKernelTable* t : available_tables()) out.emplace_back(t->name);
    return out;
}

bool avx2_kernels() { return &kernels() != gemm_generic_kernels(); }

#define LAMINA_INSTANTIATE_GEMM(T)                                                          \
    template void gemm<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t,      \
                          const T*, index_t, T, T*, index_t, const TileEpilogue<T>*);      \
    template void gemm_naive<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t, \
                                const T*, index_t, T, T*, index_t);                       \
    template GemmPlan gemm_plan<T>(bool, bool, index_t, index_t, index_t, T, const T*, index_t, \
                                   const T*, index_t, T);
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
