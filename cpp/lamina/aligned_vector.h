// A std::vector whose storage starts on a cache line, for the blocks the kernels stream through:
// parameters, gradients, optimizer state, activations, the gathered batch and packed panels. A
// plain vector's large block starts 16 bytes into its page (malloc's header), so every 64-byte
// vector load of a weight row would straddle two lines.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace lamina {

constexpr std::size_t kCacheLine = 64;

template <typename T>
struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <typename U>
    CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
    template <typename U>
    bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace lamina
