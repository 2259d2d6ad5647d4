// The blocked, threaded bfloat16 product (gemm_bf16.h).
//
// Two phases in one parallel region: pack every row panel of op(A) and every column panel of
// op(B) (kBf16NR columns) over the whole depth once; then compute the tiles. A panel over the
// whole depth is also the packing of each depth block, because blocks start at even steps: block
// b's pairs begin at pair b * kBf16KC / 2. Work items are (column panel, group of row panels);
// inside one, depth blocks are the outer loop so a block of B stays in L1 while it meets every
// row panel of the group. Each tile of C has one writer.
//
// Kernels: VDPBF16PS (or its portable twin) on 12 x 32 tiles of pair panels (bf16.h), or AMX's
// TDPBF16PS on 32 x 32 tiles (bf16_amx.h), whose panels round the pairs up to 16.
#include "lamina/gemm_bf16.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "lamina/aligned_vector.h"
#include "lamina/bf16_amx.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"

namespace lamina {

namespace {

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// The CPU has AMX-TILE and AMX-BF16 (CPUID.7.0:EDX bits 24 and 22) and Linux lets this process
// use tile data (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, once per process).
bool amx_available() {
#if defined(LAMINA_HAVE_AMX_TU) && defined(__linux__) && defined(SYS_arch_prctl)
    static const bool ok = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
        if (!((d >> 24) & 1u) || !((d >> 22) & 1u)) return false;
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
#else
    return false;
#endif
}

// A kept B (Bf16PackedB) of at least this many values splits a product between threads even for
// one row of A: what is left of the work is reading B.
constexpr index_t kParallelKeptB = index_t(1) << 17;

using PackPanel = void (*)(const float*, index_t, bool, index_t, index_t, index_t, bf16_t*);

// Pairs q0 .. q1 (q1 <= pp) of every column panel of op(B) = B (k, n), untransposed: panel jp
// (columns kBf16NR jp ..) at dst + jp * panel_stride, the same bytes a panel-at-a-time packing
// writes, but a few rows of B at a time across all its columns, so each row is read while in
// cache (a panel at a time walks all k rows for 32 columns, a 2-row stride no prefetcher
// follows). A panel is one kBf16NR-lane pair panel (bf16.h), or for AMX two 16-lane halves, pp
// pairs each (bf16_amx.h).
void pack_b_pairs(bool amx, PackPanel pack, const float* B, index_t ldb, index_t n, index_t k, index_t pp,
                  index_t q0, index_t q1, bf16_t* dst, index_t panel_stride) {
    const index_t width = amx ? 16 : kBf16NR, parts = kBf16NR / width;
    const index_t pairs = (k + 1) / 2, filled = std::min(q1, pairs);  // pairs [filled, q1) are zero
    for (index_t jp = 0; jp < ceil_div(n, kBf16NR); ++jp)
        for (index_t h = 0; h < parts; ++h) {
            bf16_t* part = dst + jp * panel_stride + h * pp * 2 * width;
            const index_t j0 = jp * kBf16NR + h * width, lanes = std::clamp<index_t>(n - j0, 0, width);
            if (filled > q0)
                pack(B + 2 * q0 * ldb + (lanes > 0 ? j0 : 0), ldb, false, width, lanes,
                     std::min(k, 2 * filled) - 2 * q0, part + q0 * 2 * width);
            const index_t z0 = std::max(q0, filled);
            if (q1 > z0) std::fill(part + z0 * 2 * width, part + q1 * 2 * width, bf16_t(0));
        }
}

// C (m, n) = op(A) (m, k) op(B) (k, n) with the given kernel.
void run(Bf16Kernel kernel, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A,
         index_t lda, const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue,
         Bf16PackedB* packed_b) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (index_t i = 0; i < m; ++i) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
        if (epilogue) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, m, n);
        return;
    }
    const bool amx = kernel == Bf16Kernel::amx;
    const bool portable = kernel == Bf16Kernel::portable;
    const index_t mr_panel = amx ? kAmxMR : kBf16MR;
    const index_t pairs = ceil_div(k, 2);
    const index_t pp = amx ? ceil_div(pairs, kAmxPairs) * kAmxPairs : pairs;  // pairs held per panel
    const index_t row_panels = ceil_div(m, mr_panel), col_panels = ceil_div(n, kBf16NR);
    const index_t a_panel = pp * 2 * mr_panel, b_panel = pp * 2 * kBf16NR;  // bfloat16 values per panel
    // Grows to the largest product seen on this thread, then is reused (no allocation per step).
    thread_local AlignedVector<bf16_t> ap, bp;
    if (static_cast<index_t>(ap.size()) < row_panels * a_panel) ap.resize(static_cast<std::size_t>(row_panels * a_panel));
    // A kept B: used as it is when it holds this B for this kernel, else B is packed into it.
    if (trans_b) packed_b = nullptr;
    const bool reuse_b = packed_b != nullptr && packed_b->valid && packed_b->k == k && packed_b->n == n &&
                         packed_b->amx == amx && packed_b->portable == portable;
    AlignedVector<bf16_t>& b_store = packed_b != nullptr ? packed_b->data : bp;
    if (!reuse_b && packed_b != nullptr) {  // filled below, valid once the product is done
        packed_b->valid = false;
        packed_b->k = k;
        packed_b->n = n;
        packed_b->pairs_held = pp;
        packed_b->panel_values = b_panel;
        packed_b->amx = amx;
        packed_b->portable = portable;
    }
    if (static_cast<index_t>(b_store.size()) < col_panels * b_panel)
        b_store.resize(static_cast<std::size_t>(col_panels * b_panel));
    bf16_t* apd = ap.data();
    bf16_t* bpd = b_store.data();
    const PackPanel pack = portable ? &bf16_pack_panel_portable : &bf16_pack_panel;

    const int threads = region_threads();
    // AMX is far faster per product than the vector kernels, so its small products (a 10-unit
    // layer at batch 128) stay on one thread: waking the others and two barriers would dominate.
    const index_t min_flops = (amx ? 64 : 8) * kParallelMinFlops;
    // A kept B leaves only reading it: when large, that is worth two threads even for one row.
    const bool parallel = threads > 1 && (2 * m * n * k >= min_flops || (reuse_b && n * k >= kParallelKeptB));
    // Enough work items for the threads even when there are few column panels (a 10-unit layer).
    const index_t groups = parallel && col_panels < 2 * threads
                               ? std::min(row_panels, ceil_div(2 * threads, col_panels)) : 1;
    const index_t group_panels = ceil_div(row_panels, groups);
    // AMX keeps its accumulators in tiles over the whole depth (one block), so a 32 x 32 tile
    // never makes a round trip through C between depth blocks.
    const index_t block_pairs = amx ? pp : kBf16KC / 2;
    const index_t items = col_panels * groups, blocks = ceil_div(pp, block_pairs);
    // An untransposed B (the forward's W, dW's dZ) is packed a few rows at a time across all its
    // panels (pack_b_pairs); a transposed one a panel at a time.
    constexpr index_t kPackPairs = 8;
    const index_t b_tasks = reuse_b ? 0 : trans_b ? col_panels : ceil_div(pp, kPackPairs);

    parallel_region(parallel ? threads : 1, [&](TeamThread& team) {
        // Pack: op(A) rows i0.. are A's rows (lanes along rows) or A^T's (A's columns); op(B)
        // columns j0.. are B's columns (lanes along columns) or B^T's (B's rows).
        team.for_each(row_panels + b_tasks, [&](index_t p) {
            if (p < row_panels) {
                const index_t i0 = p * mr_panel, mr = std::min(mr_panel, m - i0);
                const float* src = trans_a ? A + i0 : A + i0 * lda;
                if (amx)
                    bf16_detail::amx_pack_a(src, lda, trans_a, mr, k, pp, apd + p * a_panel);
                else
                    pack(src, lda, !trans_a, kBf16MR, mr, k, apd + p * a_panel);
            } else if (!trans_b) {
                const index_t q0 = (p - row_panels) * kPackPairs, q1 = std::min(pp, q0 + kPackPairs);
                pack_b_pairs(amx, pack, B, ldb, n, k, pp, q0, q1, bpd, b_panel);
            } else {
                const index_t q = p - row_panels, j0 = q * kBf16NR, nr = std::min(kBf16NR, n - j0);
                if (amx)
                    bf16_detail::amx_pack_b(B + j0 * ldb, ldb, true, nr, k, pp, bpd + q * b_panel);
                else
                    pack(B + j0 * ldb, ldb, true, kBf16NR, nr, k, bpd + q * b_panel);
            }
        });  // (for_each ends with the barrier: every panel is packed before any tile starts)
        if (amx) bf16_detail::amx_begin_thread();
        for (index_t item = team.begin_of(items), end = team.end_of(items); item < end; ++item) {
            const index_t jp = item / groups, g = item % groups;
            const index_t j0 = jp * kBf16NR, nr = std::min(kBf16NR, n - j0);
            const index_t ip0 = g * group_panels, ip1 = std::min(row_panels, ip0 + group_panels);
            const bf16_t* bpanel = bpd + jp * b_panel;
            for (index_t b = 0; b < blocks; ++b) {
                const index_t q0 = b * block_pairs, nq = std::min(block_pairs, pp - q0);
                for (index_t ip = ip0; ip < ip1; ++ip) {
                    const index_t i0 = ip * mr_panel, mr = std::min(mr_panel, m - i0);
                    const bf16_t* apanel = apd + ip * a_panel;
                    float* c = C + i0 * ldc + j0;
                    if (amx)
                        bf16_detail::amx_gemm_tile(nq, q0, pp, apanel, bpanel, b > 0, c, ldc, mr, nr);
                    else
                        (portable ? &bf16_gemm_tile_portable : &bf16_gemm_tile)(
                            2 * nq, apanel + q0 * 2 * kBf16MR, bpanel + q0 * 2 * kBf16NR, b > 0, c, ldc, mr, nr);
                    if (epilogue && b == blocks - 1) epilogue->fn(epilogue->ctx, c, ldc, i0, j0, mr, nr);
                }
            }
        }
        if (amx) bf16_detail::amx_end_thread();
    });
    if (packed_b != nullptr) packed_b->valid = true;
}

Bf16Kernel choose_kernel() {
    const char* env = std::getenv("LAMINA_BF16_AMX");
    if (env != nullptr && std::string(env) != "0" && std::string(env) != "1")
        throw std::invalid_argument("LAMINA_BF16_AMX must be 0 or 1 (or unset), received '" + std::string(env) + "'");
    if (!bf16_kernels()) return Bf16Kernel::portable;
    const bool allowed = env == nullptr || std::string(env) == "1";
    return allowed && amx_available() ? Bf16Kernel::amx : Bf16Kernel::avx512_bf16;
}

}  // namespace

Bf16Kernel bf16_gemm_kernel() {
    static const Bf16Kernel kernel = choose_kernel();
    return kernel;
}

const char* bf16_gemm_kernel_name(Bf16Kernel kernel) {
    switch (kernel) {
        case Bf16Kernel::amx: return "amx";
        case Bf16Kernel::avx512_bf16: return "avx512_bf16";
        case Bf16Kernel::portable: return "portable";
    }
    return "portable";
}

bool bf16_gemm_kernel_available(Bf16Kernel kernel) {
    switch (kernel) {
        case Bf16Kernel::amx: return bf16_kernels() && amx_available();
        case Bf16Kernel::avx512_bf16: return bf16_kernels();
        case Bf16Kernel::portable: return true;
    }
    return false;
}

void gemm_bf16(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
               const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue,
               Bf16PackedB* packed_b) {
    run(bf16_gemm_kernel(), trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, epilogue, packed_b);
}

// Pair q's words: AMX panels hold two 16-lane halves of pairs_held pairs each (bf16_amx.h), the
// vector kernels' one 32-lane pair panel (bf16.h).
void Bf16PackedB::repack_rows(const float* B, index_t ldb, index_t r0, index_t r1) {
    if (!valid) return;
    const index_t q0 = std::max<index_t>(0, r0 / 2), q1 = std::min(ceil_div(k, 2), ceil_div(r1, 2));
    if (q1 <= q0) return;
    const auto pack = portable ? &bf16_pack_pair_groups_portable : &bf16_pack_pair_groups;
    if (amx)
        pack(B, ldb, k, n, q0, q1, data.data(), 32, panel_values, pairs_held * 32);
    else
        pack(B, ldb, k, n, q0, q1, data.data(), 2 * kBf16NR, panel_values, 32);
}

void gemm_bf16_with(Bf16Kernel kernel, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A,
                    index_t lda, const float* B, index_t ldb, float* C, index_t ldc) {
    if (!bf16_gemm_kernel_available(kernel))
        throw std::invalid_argument(std::string("the ") + bf16_gemm_kernel_name(kernel) +
                                    " bfloat16 kernel is not available on this CPU or build");
    run(kernel, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, nullptr, nullptr);
}

}  // namespace lamina
