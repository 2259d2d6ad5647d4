#include "lamina/finite.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

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

}  // namespace

template <typename T>
bool all_finite(const T* p, index_t n) {
    constexpr index_t kChunk = 4096;
    for (index_t i = 0; i < n; i += kChunk) {
        const index_t len = std::min(kChunk, n - i);
        const bool ok = sizeof(T) == 4
            ? chunk_finite<T, std::uint32_t, 0x7F800000u>(p + i, len)
            : chunk_finite<T, std::uint64_t, 0x7FF0000000000000ull>(p + i, len);
        if (!ok) return false;
    }
    return true;
}

template bool all_finite<float>(const float*, index_t);
template bool all_finite<double>(const double*, index_t);

}  // namespace lamina
