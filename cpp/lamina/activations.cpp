#include "lamina/activations.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lamina/branchless_math.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"
#include "lamina/vectorize.h"

namespace lamina {

namespace {

// float32 through the branchless forms, which vectorize; float64 through libm.
inline float sigmoid(float x) { return branchless::sigmoid(x); }
inline double sigmoid(double x) {
    // Two branches so exp never overflows.
    if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}
inline float tanh_of(float x) { return branchless::tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }
inline float expm1_of(float x) { return branchless::expm1(x); }
inline double expm1_of(double x) { return std::expm1(x); }

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// Applies fn(i) for i in [0, count), on several threads when the block is large. Elementwise
// work only: each index is written by one thread, so the thread count never changes results.
template <typename Fn>
inline void for_each_index(index_t count, Fn fn) {
    for (index_t i = 0; i < count; ++i) fn(i);
}

// A large elementwise pass is split between the threads, each calling the public (vectorized,
// LAMINA_VECTORIZE) function on its contiguous range: the loop inside a region's body would be
// compiled for the baseline ISA only. Inside the body the range runs on its thread alone.
template <typename Pass>
bool split_elementwise(index_t count, Pass pass) {
    const int threads = region_threads();
    if (count < kParallelMinFlops || threads <= 1) return false;
    parallel_region(threads, [&](TeamThread& t) {
        const index_t begin = t.begin_of(count);
        pass(begin, t.end_of(count) - begin);
    });
    return true;
}

template <typename T>
T* at(T* p, index_t offset) { return p == nullptr ? nullptr : p + offset; }

template <typename T>
void softmax_rows(T* a, const T* z, index_t rows, index_t cols) {
    const bool parallel = rows * cols >= kParallelMinFlops;
    parallel_for(parallel, rows, [&](index_t r) {
        const T* zr = z + r * cols;
        T* ar = a + r * cols;
        T mx = zr[0];
        for (index_t j = 1; j < cols; ++j) mx = std::max(mx, zr[j]);
        T sum = 0;
        for (index_t j = 0; j < cols; ++j) {
            ar[j] = std::exp(zr[j] - mx);
            sum += ar[j];
        }
        const T inv = T(1) / sum;
        for (index_t j = 0; j < cols; ++j) ar[j] *= inv;
    });
}

// The elementwise activations, one functor each, shared by the whole-array pass and the
// per-tile GEMM epilogue so both compute every element alike.
template <typename T>
struct Elementwise {
    struct Relu {  // NaN passes through (NaN < 0 is false): divergence must stay visible.
        T operator()(T z) const { return z < T(0) ? T(0) : z; }
    };
    struct LeakyRelu {  // the product first, so the select vectorizes
        T operator()(T z) const {
            const T negative = static_cast<T>(kLeakyReluSlope) * z;
            return z > T(0) ? z : negative;
        }
    };
    struct Elu {
        T operator()(T z) const { return z > T(0) ? z : static_cast<T>(kEluAlpha) * expm1_of(z); }
    };
    struct Sigmoid {
        T operator()(T z) const { return sigmoid(z); }
    };
    struct Tanh {
        T operator()(T z) const { return tanh_of(z); }
    };
    struct Softplus {  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
        T operator()(T z) const { return std::max(z, T(0)) + std::log1p(std::exp(-std::fabs(z))); }
    };
    struct Gelu {  // The exact form (Keras's default, approximate=False): x * Phi(x).
        T operator()(T z) const { return T(0.5) * z * (T(1) + std::erf(z * T(kInvSqrt2))); }
    };
};

// Calls body(f) with the functor of an elementwise activation; false for Linear and Softmax.
template <typename T, typename Body>
LAMINA_ALWAYS_INLINE bool with_elementwise(Activation act, Body body) {
    using E = Elementwise<T>;
    switch (act) {
        case Activation::Relu: body(typename E::Relu{}); return true;
        case Activation::LeakyRelu: body(typename E::LeakyRelu{}); return true;
        case Activation::Elu: body(typename E::Elu{}); return true;
        case Activation::Sigmoid: body(typename E::Sigmoid{}); return true;
        case Activation::Tanh: body(typename E::Tanh{}); return true;
        case Activation::Softplus: body(typename E::Softplus{}); return true;
        case Activation::Gelu: body(typename E::Gelu{}); return true;
        case Activation::Linear:
        case Activation::Softmax: return false;
    }
    return false;
}

}  // namespace

bool is_elementwise(Activation act) { return act != Activation::Softmax; }

template <typename T>
LAMINA_VECTORIZE void activation_forward(Activation act, T* a, const T* z, index_t rows, index_t cols) {
    const index_t n = rows * cols;
    if (act == Activation::Linear) {
        if (a != z) std::copy(z, z + n, a);
        return;
    }
    if (act == Activation::Softmax) {
        softmax_rows(a, z, rows, cols);
        return;
    }
    if (split_elementwise(n, [&](index_t begin, index_t len) { activation_forward(act, a + begin, z + begin, len, 1); }))
        return;
    with_elementwise<T>(act, [=](auto f) { for_each_index(n, [=](index_t i) { a[i] = f(z[i]); }); });
}

template <typename T>
LAMINA_VECTORIZE void bias_activation_rows(Activation act, T* c, index_t ldc, const T* bias, T* out,
                                           index_t ldo, index_t rows, index_t cols) {
    if (bias != nullptr)
        for (index_t r = 0; r < rows; ++r) {
            T* cr = c + r * ldc;
            for (index_t j = 0; j < cols; ++j) cr[j] += bias[j];
        }
    if (out == nullptr) return;
    if (act == Activation::Linear) {
        for (index_t r = 0; r < rows; ++r)
            if (out + r * ldo != c + r * ldc) std::copy(c + r * ldc, c + r * ldc + cols, out + r * ldo);
        return;
    }
    with_elementwise<T>(act, [=](auto f) {
        for (index_t r = 0; r < rows; ++r) {
            const T* cr = c + r * ldc;
            T* orow = out + r * ldo;
            for (index_t j = 0; j < cols; ++j) orow[j] = f(cr[j]);
        }
    });
}

template <typename T>
LAMINA_VECTORIZE void activation_backward(Activation act, T* dz, const T* da, const T* z, const T* a, index_t rows,
                         index_t cols) {
    const index_t n = rows * cols;
    const T slope = static_cast<T>(kLeakyReluSlope), alpha = static_cast<T>(kEluAlpha);
    if (act != Activation::Softmax && act != Activation::Linear &&
        split_elementwise(n, [&](index_t begin, index_t len) {
            activation_backward(act, dz + begin, da + begin, at(z, begin), at(a, begin), len, 1);
        }))
        return;
    switch (act) {
        case Activation::Linear:
            if (dz != da) std::copy(da, da + n, dz);
            return;
        // Both sides are computed before the select: a load or a multiply under a condition
        // keeps the compiler from vectorizing (it may not speculate them), and the branch is
        // unpredictable (bench/RESULTS.md, "Figures behind code comments").
        case Activation::Relu:
            for_each_index(n, [=](index_t i) {
                const T d = da[i];
                dz[i] = z[i] > T(0) ? d : T(0);
            });
            return;
        case Activation::LeakyRelu:
            for_each_index(n, [=](index_t i) {
                const T d = da[i], negative = slope * d;
                dz[i] = z[i] > T(0) ? d : negative;
            });
            return;
        case Activation::Elu:
            // For x <= 0, f'(x) = alpha * e^x = f(x) + alpha.
            for_each_index(n, [=](index_t i) {
                const T d = da[i], negative = d * (a[i] + alpha);
                dz[i] = z[i] > T(0) ? d : negative;
            });
            return;
        case Activation::Sigmoid:
            for_each_index(n, [=](index_t i) { dz[i] = da[i] * a[i] * (T(1) - a[i]); });
            return;
        case Activation::Tanh:
            for_each_index(n, [=](index_t i) { dz[i] = da[i] * (T(1) - a[i] * a[i]); });
            return;
        case Activation::Softmax: {
            const bool parallel = n >= kParallelMinFlops;
            parallel_for(parallel, rows, [&](index_t r) {
                const T* ar = a + r * cols;
                const T* dar = da + r * cols;
                T* dzr = dz + r * cols;
                T dot = 0;
                for (index_t j = 0; j < cols; ++j) dot += dar[j] * ar[j];
                for (index_t j = 0; j < cols; ++j) dzr[j] = ar[j] * (dar[j] - dot);
            });
            return;
        }
        case Activation::Softplus:
            for_each_index(n, [=](index_t i) { dz[i] = da[i] * sigmoid(z[i]); });
            return;
        case Activation::Gelu:
            // d/dx [x Phi(x)] = Phi(x) + x phi(x).
            for_each_index(n, [=](index_t i) {
                const T x = z[i];
                const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
                const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
                dz[i] = da[i] * (cdf + x * pdf);
            });
            return;
    }
}

template void activation_forward<float>(Activation, float*, const float*, index_t, index_t);
template void activation_forward<double>(Activation, double*, const double*, index_t, index_t);
template void bias_activation_rows<float>(Activation, float*, index_t, const float*, float*, index_t,
                                          index_t, index_t);
template void bias_activation_rows<double>(Activation, double*, index_t, const double*, double*,
                                           index_t, index_t, index_t);
template void activation_backward<float>(Activation, float*, const float*, const float*,
                                         const float*, index_t, index_t);
template void activation_backward<double>(Activation, double*, const double*, const double*,
                                          const double*, index_t, index_t);

}  // namespace lamina
