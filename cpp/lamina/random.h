// Counter-based random numbers: every value is a pure function of (seed, stream, counter), so a
// loop can draw its numbers in any order, on any number of threads, and get the same result.
#pragma once
#include <cmath>
#include <cstdint>

namespace lamina {

// SplitMix64's finalizer: a bijective 64-bit mix with good avalanche.
inline std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

class CounterRng {
public:
    CounterRng(std::uint64_t seed, std::uint64_t stream)
        : key_(mix64(mix64(seed) ^ (stream * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull))) {}

    std::uint64_t bits(std::uint64_t counter) const { return mix64(key_ ^ mix64(counter)); }

    // Uniform in [0, 1) with 53 random bits.
    double uniform(std::uint64_t counter) const {
        return static_cast<double>(bits(counter) >> 11) * 0x1.0p-53;
    }

    // Standard normal by Box-Muller on the pair of counters (2c, 2c + 1).
    double normal(std::uint64_t counter) const {
        const double u1 = 1.0 - uniform(2 * counter);  // (0, 1]: log is finite
        const double u2 = uniform(2 * counter + 1);
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // Two independent standard normals from the same pair of counters: normal(counter) and its
    // Box-Muller partner (the sine), for half the cost per value.
    void normal_pair(std::uint64_t counter, double* first, double* second) const {
        const double u1 = 1.0 - uniform(2 * counter);
        const double r = std::sqrt(-2.0 * std::log(u1)), angle = 6.283185307179586 * uniform(2 * counter + 1);
        *first = r * std::cos(angle);
        *second = r * std::sin(angle);
    }

    // Uniform integer in [0, bound), bound > 0 (modulo bias < bound / 2^64, negligible here).
    std::uint64_t below(std::uint64_t counter, std::uint64_t bound) const {
        return bits(counter) % bound;
    }

private:
    std::uint64_t key_;
};

}  // namespace lamina
