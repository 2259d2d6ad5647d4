// float32 exp, expm1, sigmoid and tanh written without branches or library calls, so the
// activation loops that use them vectorize (libm's expf and tanhf are one scalar call per
// element). Each is within a few ulp of the float64 result over the whole float range
// (tests/test_activations.py measures the bound); NaN passes through. Inline, so each loop's
// ISA clone (vectorize.h) compiles them for its own ISA.
//
// Method: x = n ln2 + r with |r| <= ln2 / 2; e^r - 1 = q(r), a degree-8 Taylor polynomial
// (truncation below 1e-9 relative); e^x = 2^n (1 + q), the power applied as two factors so that
// results in the subnormal range and up to FLT_MAX are exact powers of two times 1 + q.
#pragma once

#include <cstdint>
#include <cstring>

namespace lamina::branchless {

inline float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::uint32_t to_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

// 2^m for m in [-126, 127], built from its exponent bits.
inline float power_of_two(std::int32_t m) { return from_bits((static_cast<std::uint32_t>(m) + 127u) << 23); }

// What exp and expm1 share: x = n ln2 + r, and q = e^r - 1.
struct ExpParts {
    std::int32_t n;
    float q;
};

// For x in [-104, 89] (callers clamp): n in [-150, 128].
inline ExpParts exp_parts(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer, in its low bits
    // ln 2 in two parts; the high one has 15 significant bits, so n * kLn2Hi is exact.
    constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.42860676533018704e-6f;
    const float shifted = x * kLog2e + kRound;
    const float n = shifted - kRound;
    const float r = (x - n * kLn2Hi) - n * kLn2Lo;
    // Horner form of r + r^2/2! + ... + r^8/8!.
    float p = 1.0f / 40320.0f;
    p = p * r + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    // The integer held in shifted's low mantissa bits; unsigned arithmetic wraps, defined for NaN too.
    const auto n_int = static_cast<std::int32_t>(to_bits(shifted) - to_bits(kRound));
    return {n_int, p * r};
}

// 2^n (1 + q) as (1 + q) 2^a 2^b with a + b = n, each factor a normal float.
inline float scale(const ExpParts& e) {
    const std::int32_t half = e.n / 2;
    return (1.0f + e.q) * power_of_two(half) * power_of_two(e.n - half);
}

// Clamped below where e^x rounds to 0 and above where it overflows: the magic rounding of
// exp_parts stays exact, and the result is 0 or inf as it should be.
inline float clamp_exp_argument(float x) {
    x = x < -104.0f ? -104.0f : x;  // written as selects so NaN stays NaN
    return x > 89.0f ? 89.0f : x;
}

inline float exp(float x) { return scale(exp_parts(clamp_exp_argument(x))); }

// q itself where n = 0 (|x| <= ln2 / 2), so small arguments keep their relative accuracy.
inline float expm1(float x) {
    const ExpParts e = exp_parts(clamp_exp_argument(x));
    const float far = scale(e) - 1.0f;
    return e.n == 0 ? e.q : far;
}

// 1 / (1 + e^-x) from e = e^-|x|, which never overflows: 1 / (1 + e), or e / (1 + e) for x < 0.
inline float sigmoid(float x) {
    const float e = exp(-(x < 0.0f ? -x : x));
    const float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}

// tanh |x| = -m / (2 + m) with m = e^(-2|x|) - 1 in (-1, 0]: no overflow, and m keeps its
// relative accuracy near 0 where 1 - e^(-2|x|) would cancel. |x| >= 9 rounds to 1, so the
// argument stays in [-18, 0] and one power of two scales it. The sign is copied from x, so
// tanh(-0) = -0.
inline float tanh(float x) {
    constexpr std::uint32_t kSign = 0x80000000u;
    const float a = from_bits(to_bits(x) & ~kSign);
    const ExpParts e = exp_parts(a > 9.0f ? -18.0f : -2.0f * a);  // a select, so NaN stays NaN
    const float far = (1.0f + e.q) * power_of_two(e.n) - 1.0f;
    const float m = e.n == 0 ? e.q : far;
    return from_bits(to_bits(-m / (2.0f + m)) | (to_bits(x) & kSign));
}

}  // namespace lamina::branchless
