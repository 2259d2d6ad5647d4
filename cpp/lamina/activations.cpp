#include "lamina/activations.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lamina/threading.h"
#include "lamina/vectorize.h"

namespace lamina {

Activation activation_from_name(const std::string& name) {
    if (name == "linear") return Activation::Linear;
    if (name == "relu") return Activation::Relu;
    if (name == "leaky_relu") return Activation::LeakyRelu;
    if (name == "elu") return Activation::Elu;
    if (name == "sigmoid") return Activation::Sigmoid;
    if (name == "tanh") return Activation::Tanh;
    if (name == "softmax") return Activation::Softmax;
    if (name == "softplus") return Activation::Softplus;
    if (name == "gelu") return Activation::Gelu;
    throw std::invalid_argument("unknown activation, received '" + name + "'");
}

const char* activation_name(Activation act) {
    switch (act) {
        case Activation::Linear: return "linear";
        case Activation::Relu: return "relu";
        case Activation::LeakyRelu: return "leaky_relu";
        case Activation::Elu: return "elu";
        case Activation::Sigmoid: return "sigmoid";
        case Activation::Tanh: return "tanh";
        case Activation::Softmax: return "softmax";
        case Activation::Softplus: return "softplus";
        case Activation::Gelu: return "gelu";
    }
    return "?";
}

namespace {

template <typename T>
inline T sigmoid(T x) {
    // Two branches so exp never overflows.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    const T e = std::exp(x);
    return e / (T(1) + e);
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// Applies fn(i) for i in [0, count), on several threads when the block is large. Elementwise
// work only: each index is written by one thread, so the thread count never changes results.
template <typename Fn>
inline void for_each_index(index_t count, Fn fn) {
    const bool parallel = count >= kParallelMinFlops;
#pragma omp parallel for schedule(static) if (parallel)
    for (index_t i = 0; i < count; ++i) fn(i);
}

template <typename T>
void softmax_rows(T* a, const T* z, index_t rows, index_t cols) {
    const bool parallel = rows * cols >= kParallelMinFlops;
#pragma omp parallel for schedule(static) if (parallel)
    for (index_t r = 0; r < rows; ++r) {
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
    }
}

}  // namespace

template <typename T>
LAMINA_VECTORIZE void activation_forward(Activation act, T* a, const T* z, index_t rows, index_t cols) {
    const index_t n = rows * cols;
    const T slope = static_cast<T>(kLeakyReluSlope), alpha = static_cast<T>(kEluAlpha);
    switch (act) {
        case Activation::Linear:
            if (a != z) std::copy(z, z + n, a);
            return;
        case Activation::Relu:
            // Written so that NaN passes through (NaN < 0 is false): divergence must stay visible.
            for_each_index(n, [=](index_t i) { a[i] = z[i] < T(0) ? T(0) : z[i]; });
            return;
        case Activation::LeakyRelu:
            for_each_index(n, [=](index_t i) { a[i] = z[i] > T(0) ? z[i] : slope * z[i]; });
            return;
        case Activation::Elu:
            for_each_index(n, [=](index_t i) { a[i] = z[i] > T(0) ? z[i] : alpha * std::expm1(z[i]); });
            return;
        case Activation::Sigmoid:
            for_each_index(n, [=](index_t i) { a[i] = sigmoid(z[i]); });
            return;
        case Activation::Tanh:
            for_each_index(n, [=](index_t i) { a[i] = std::tanh(z[i]); });
            return;
        case Activation::Softmax: softmax_rows(a, z, rows, cols); return;
        case Activation::Softplus:
            // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
            for_each_index(n, [=](index_t i) {
                a[i] = std::max(z[i], T(0)) + std::log1p(std::exp(-std::fabs(z[i])));
            });
            return;
        case Activation::Gelu:
            // The exact form (Keras's default, approximate=False): x * Phi(x).
            for_each_index(n, [=](index_t i) {
                a[i] = T(0.5) * z[i] * (T(1) + std::erf(z[i] * T(kInvSqrt2)));
            });
            return;
    }
}

template <typename T>
LAMINA_VECTORIZE void activation_backward(Activation act, T* dz, const T* da, const T* z, const T* a, index_t rows,
                         index_t cols) {
    const index_t n = rows * cols;
    const T slope = static_cast<T>(kLeakyReluSlope), alpha = static_cast<T>(kEluAlpha);
    switch (act) {
        case Activation::Linear:
            if (dz != da) std::copy(da, da + n, dz);
            return;
        case Activation::Relu:
            for_each_index(n, [=](index_t i) { dz[i] = z[i] > T(0) ? da[i] : T(0); });
            return;
        case Activation::LeakyRelu:
            for_each_index(n, [=](index_t i) { dz[i] = z[i] > T(0) ? da[i] : slope * da[i]; });
            return;
        case Activation::Elu:
            // For x <= 0, f'(x) = alpha * e^x = f(x) + alpha.
            for_each_index(n, [=](index_t i) { dz[i] = z[i] > T(0) ? da[i] : da[i] * (a[i] + alpha); });
            return;
        case Activation::Sigmoid:
            for_each_index(n, [=](index_t i) { dz[i] = da[i] * a[i] * (T(1) - a[i]); });
            return;
        case Activation::Tanh:
            for_each_index(n, [=](index_t i) { dz[i] = da[i] * (T(1) - a[i] * a[i]); });
            return;
        case Activation::Softmax: {
            const bool parallel = n >= kParallelMinFlops;
#pragma omp parallel for schedule(static) if (parallel)
            for (index_t r = 0; r < rows; ++r) {
                const T* ar = a + r * cols;
                const T* dar = da + r * cols;
                T* dzr = dz + r * cols;
                T dot = 0;
                for (index_t j = 0; j < cols; ++j) dot += dar[j] * ar[j];
                for (index_t j = 0; j < cols; ++j) dzr[j] = ar[j] * (dar[j] - dot);
            }
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
template void activation_backward<float>(Activation, float*, const float*, const float*,
                                         const float*, index_t, index_t);
template void activation_backward<double>(Activation, double*, const double*, const double*,
                                          const double*, index_t, index_t);

}  // namespace lamina
