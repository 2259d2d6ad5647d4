// The bfloat16 panel packers (bf16.h) against their portable twins, over the whole output buffer:
// every word of a panel, its zero padding included (lanes past valid, the odd tail), is compared,
// and the words after it, poisoned beforehand, must stay untouched. The GEMM tests see only the
// rows and columns a tile stores, so padding written wrong would pass them.
// The source ends at an inaccessible page: a read past its last float faults.
// On a CPU without AVX512_BF16 the dispatching packers are the twins, and this checks little.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "lamina/bf16.h"
#include "lamina/gemm.h"

using lamina::bf16_t;
using lamina::index_t;

namespace {

constexpr bf16_t kPoison = 0xABCD;
constexpr index_t kTail = 64;  // poisoned words checked after each panel

// floats, the last of them just before a PROT_NONE page.
class GuardedFloats {
public:
    explicit GuardedFloats(index_t n) {
        const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        const std::size_t data = (static_cast<std::size_t>(n) * sizeof(float) + page - 1) / page * page;
        bytes_ = data + page;
        base_ = static_cast<char*>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        mprotect(base_ + data, page, PROT_NONE);
        floats_ = reinterpret_cast<float*>(base_ + data) - n;
    }
    ~GuardedFloats() { munmap(base_, bytes_); }
    GuardedFloats(const GuardedFloats&) = delete;
    GuardedFloats& operator=(const GuardedFloats&) = delete;
    float* data() { return floats_; }

private:
    char* base_;
    std::size_t bytes_;
    float* floats_;
};

// Normal values with a third of them zero, and a subnormal and a tie now and then.
void fill(float* x, index_t n, std::mt19937& rng) {
    std::normal_distribution<float> normal;
    for (index_t i = 0; i < n; ++i) {
        const unsigned pick = rng() % 12;
        x[i] = pick < 4 ? 0.0f : pick == 4 ? 1e-40f : pick == 5 ? 1.00390625f : normal(rng);
    }
}

int failures = 0;

void expect_same(const std::vector<bf16_t>& fast, const std::vector<bf16_t>& twin, const char* what, index_t width,
                 index_t valid, index_t k) {
    if (fast == twin) return;
    if (++failures <= 10) std::printf("FAIL %s width=%ld valid=%ld k=%ld\n", what, long(width), long(valid), long(k));
}

// pack_panel: lanes along rows (src (valid, k), ld = k) and along columns (src (k, valid), ld = valid).
void check_panels() {
    std::mt19937 rng(7);
    for (const index_t width : {12, 16, 32})
        for (index_t valid = 0; valid <= width; ++valid)
            for (index_t k = 0; k <= 80; ++k)
                for (const bool lanes_are_rows : {true, false}) {
                    GuardedFloats src(valid * k);
                    fill(src.data(), valid * k, rng);
                    const index_t ld = lanes_are_rows ? k : valid;
                    const index_t words = (k + 1) / 2 * 2 * width;
                    std::vector<bf16_t> fast(static_cast<std::size_t>(words + kTail), kPoison), twin = fast;
                    lamina::bf16_pack_panel(src.data(), ld, lanes_are_rows, width, valid, k, fast.data());
                    lamina::bf16_pack_panel_portable(src.data(), ld, lanes_are_rows, width, valid, k, twin.data());
                    expect_same(fast, twin, lanes_are_rows ? "pack_panel (lanes along rows)"
                                                           : "pack_panel (lanes along columns)", width, valid, k);
                }
}

// pack_pair_groups: pairs q0..q1 of B (k, n) into 32-lane panels of two 16-lane halves.
void check_pair_groups() {
    std::mt19937 rng(11);
    for (const index_t n : {1, 15, 16, 17, 32, 33, 50})
        for (index_t k = 1; k <= 40; ++k) {
            GuardedFloats b(k * n);
            fill(b.data(), k * n, rng);
            const index_t pairs = (k + 1) / 2, pair_stride = 2 * lamina::kBf16NR;
            const index_t panel_stride = pairs * pair_stride, half_stride = 32;
            const index_t words = (n + lamina::kBf16NR - 1) / lamina::kBf16NR * panel_stride;
            const index_t q0 = pairs / 3, q1 = pairs;
            std::vector<bf16_t> fast(static_cast<std::size_t>(words + kTail), kPoison), twin = fast;
            lamina::bf16_pack_pair_groups(b.data(), n, k, n, q0, q1, fast.data(), pair_stride, panel_stride,
                                          half_stride);
            lamina::bf16_pack_pair_groups_portable(b.data(), n, k, n, q0, q1, twin.data(), pair_stride,
                                                   panel_stride, half_stride);
            expect_same(fast, twin, "pack_pair_groups", n, n, k);
        }
}

}  // namespace

int main() {
    const bool vector = lamina::bf16_kernels();
    check_panels();
    check_pair_groups();
    std::printf("bf16 packers (%s) against their twins: %s\n", vector ? "AVX512_BF16" : "no AVX512_BF16: twins only",
                failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
