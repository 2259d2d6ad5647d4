#include "lamina/finite.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "lamina/thread_team.h"
#include "lamina/vectorize.h"

namespace lamina {

namespace {

// An element is NaN or infinite exactly when its exponent bits are all ones. Testing the bits
// with an OR over a fixed-size chunk vectorizes (an early exit per element would not).
template <typename T, typename Bits, Bits kExponent>
LAMINA_VECTORIZE bool chunk_finite(const T* p, index_t n) {
    Bits bad = 0;
    for (index_t i = 0; i < n; ++i) {
        Bits b;
        std::memcpy(&b, p + i, sizeof(T));
        bad |= static_cast<Bits>((b & kExponent) == kExponent);
    }
    return bad == 0;
}

// Elements from which the team shares the check.
constexpr index_t kParallelMinFinite = index_t(1) << 18;

template <typename T>
bool chunk_ok(const T* p, index_t n) {
    return sizeof(T) == 4 ? chunk_finite<T, std::uint32_t, 0x7F800000u>(p, n)
                          : chunk_finite<T, std::uint64_t, 0x7FF0000000000000ull>(p, n);
}

}  // namespace

// Big blocks (a data set checked before fit: Fashion-MNIST's training set is 188 MB; each
// 1024-row batch of predict's input)
// are read by the thread team: one thread does not draw the memory bandwidth two can.
template <typename T>
bool all_finite(const T* p, index_t n) {
    constexpr index_t kChunk = 4096;
    const index_t chunks = (n + kChunk - 1) / kChunk;
    std::atomic<bool> bad{false};
    parallel_for(n >= kParallelMinFinite, chunks, [&](index_t c) {
        if (bad.load(std::memory_order_relaxed)) return;  // one is found: the answer is known
        const index_t i = c * kChunk;
        if (!chunk_ok(p + i, std::min(kChunk, n - i))) bad.store(true, std::memory_order_relaxed);
    });
    return !bad.load();
}

template bool all_finite<float>(const float*, index_t);
template bool all_finite<double>(const double*, index_t);

}  // namespace lamina
