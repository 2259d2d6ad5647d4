// The blocked, threaded bfloat16 product (gemm_bf16.h).
//
// Two phases in one parallel region: pack every row panel of op(A) (kBf16MR rows, all of k) and
// every column panel of op(B) (kBf16NR columns, all of k) once; then compute the tiles. A packed
// panel over the whole depth is also the packing of each depth block, because blocks start at
// even steps: block b's pairs begin at pair b * kBf16KC / 2. Work items are (column panel, group
// of row panels); inside one, depth blocks are the outer loop so a 256 x 32 block of B stays in
// L1 while it meets every row panel of the group. Each tile of C has one writer.
#include "lamina/gemm_bf16.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "lamina/threading.h"

namespace lamina {

namespace {

struct Kernels {
    void (*pack)(const float*, index_t, bool, index_t, index_t, index_t, bf16_t*);
    void (*tile)(index_t, const bf16_t*, const bf16_t*, bool, float*, index_t, index_t, index_t);
};

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// C (m, n) = op(A) (m, k) op(B) (k, n) through the given packing and tile kernels.
void run(const Kernels& kern, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A,
         index_t lda, const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (index_t i = 0; i < m; ++i) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
        if (epilogue) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, m, n);
        return;
    }
    const index_t pairs = ceil_div(k, 2);
    const index_t row_panels = ceil_div(m, kBf16MR), col_panels = ceil_div(n, kBf16NR);
    const index_t a_panel = pairs * 2 * kBf16MR, b_panel = pairs * 2 * kBf16NR;  // bfloat16 values per panel
    // Grows to the largest product seen on this thread, then is reused (no allocation per step).
    thread_local std::vector<bf16_t> ap, bp;
    if (static_cast<index_t>(ap.size()) < row_panels * a_panel) ap.resize(static_cast<std::size_t>(row_panels * a_panel));
    if (static_cast<index_t>(bp.size()) < col_panels * b_panel) bp.resize(static_cast<std::size_t>(col_panels * b_panel));
    bf16_t* apd = ap.data();
    bf16_t* bpd = bp.data();

    const int threads = current_threads();
    const bool parallel = threads > 1 && 2 * m * n * k >= 8 * kParallelMinFlops;
    // Enough work items for the threads even when there are few column panels (a 10-unit layer).
    const index_t groups = parallel && col_panels < 2 * threads
                               ? std::min(row_panels, ceil_div(2 * threads, col_panels)) : 1;
    const index_t group_panels = ceil_div(row_panels, groups);
    const index_t items = col_panels * groups, blocks = ceil_div(k, kBf16KC);

#pragma omp parallel num_threads(threads) if (parallel)
    {
        // Pack: op(A) rows i0.. are A's rows (lanes along rows) or A^T's (A's columns); op(B)
        // columns j0.. are B's columns (lanes along columns) or B^T's (B's rows).
#pragma omp for schedule(static)
        for (index_t p = 0; p < row_panels + col_panels; ++p) {
            if (p < row_panels) {
                const index_t i0 = p * kBf16MR, mr = std::min(kBf16MR, m - i0);
                kern.pack(trans_a ? A + i0 : A + i0 * lda, lda, !trans_a, kBf16MR, mr, k, apd + p * a_panel);
            } else {
                const index_t q = p - row_panels, j0 = q * kBf16NR, nr = std::min(kBf16NR, n - j0);
                kern.pack(trans_b ? B + j0 * ldb : B + j0, ldb, trans_b, kBf16NR, nr, k, bpd + q * b_panel);
            }
        }
        // (the loop's barrier: every panel is packed before any tile starts)
#pragma omp for schedule(static)
        for (index_t item = 0; item < items; ++item) {
            const index_t jp = item / groups, g = item % groups;
            const index_t j0 = jp * kBf16NR, nr = std::min(kBf16NR, n - j0);
            const index_t ip0 = g * group_panels, ip1 = std::min(row_panels, ip0 + group_panels);
            for (index_t b = 0; b < blocks; ++b) {
                const index_t p0 = b * kBf16KC, kc = std::min(kBf16KC, k - p0);
                const bf16_t* bblock = bpd + jp * b_panel + (p0 / 2) * 2 * kBf16NR;
                for (index_t ip = ip0; ip < ip1; ++ip) {
                    const index_t i0 = ip * kBf16MR, mr = std::min(kBf16MR, m - i0);
                    float* c = C + i0 * ldc + j0;
                    kern.tile(kc, apd + ip * a_panel + (p0 / 2) * 2 * kBf16MR, bblock, b > 0, c, ldc, mr, nr);
                    if (epilogue && b == blocks - 1) epilogue->fn(epilogue->ctx, c, ldc, i0, j0, mr, nr);
                }
            }
        }
    }
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
               const float* B, index_t ldb, float* C, index_t ldc, const TileEpilogue<float>* epilogue) {
    run(Kernels{&bf16_pack_panel, &bf16_gemm_tile}, trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, epilogue);
}

void gemm_bf16_portable(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const float* A, index_t lda,
                        const float* B, index_t ldb, float* C, index_t ldc) {
    run(Kernels{&bf16_pack_panel_portable, &bf16_gemm_tile_portable}, trans_a, trans_b, m, n, k, A, lda, B, ldb, C,
        ldc, nullptr);
}

}  // namespace lamina
