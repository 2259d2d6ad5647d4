#include "lamina/losses.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lamina {

bool loss_is_sparse(Loss loss) { return loss == Loss::SparseCategoricalCrossentropy; }

namespace {

template <typename T>
inline T clip_probability(T p) {
    const T eps = static_cast<T>(kProbabilityEpsilon);
    return std::min(std::max(p, eps), T(1) - eps);
}

template <typename T>
inline bool is_clipped(T p) {
    const T eps = static_cast<T>(kProbabilityEpsilon);
    return p < eps || p > T(1) - eps;
}

inline double huber(double e, double delta) {
    const double a = std::fabs(e);
    return a <= delta ? 0.5 * e * e : delta * a - 0.5 * delta * delta;
}

}  // namespace

template <typename T>
double loss_sum(Loss loss, const T* p, const T* y, index_t rows, index_t cols, double delta, const T* w) {
    double total = 0.0;
    for (index_t r = 0; r < rows; ++r) {
        const T* pr = p + r * cols;
        double row = 0.0;
        switch (loss) {
            case Loss::MeanSquaredError: {
                const T* yr = y + r * cols;
                for (index_t j = 0; j < cols; ++j) {
                    const double e = double(pr[j]) - double(yr[j]);
                    row += e * e;
                }
                row /= double(cols);
                break;
            }
            case Loss::MeanAbsoluteError: {
                const T* yr = y + r * cols;
                for (index_t j = 0; j < cols; ++j) row += std::fabs(double(pr[j]) - double(yr[j]));
                row /= double(cols);
                break;
            }
            case Loss::Huber: {
                const T* yr = y + r * cols;
                for (index_t j = 0; j < cols; ++j) row += huber(double(pr[j]) - double(yr[j]), delta);
                row /= double(cols);
                break;
            }
            case Loss::BinaryCrossentropy: {
                const T* yr = y + r * cols;
                for (index_t j = 0; j < cols; ++j) {
                    const double q = clip_probability(pr[j]);
                    row -= double(yr[j]) * std::log(q) + (1.0 - double(yr[j])) * std::log(1.0 - q);
                }
                row /= double(cols);
                break;
            }
            case Loss::CategoricalCrossentropy: {
                const T* yr = y + r * cols;
                for (index_t j = 0; j < cols; ++j)
                    if (yr[j] != T(0)) row -= double(yr[j]) * std::log(double(clip_probability(pr[j])));
                break;
            }
            case Loss::SparseCategoricalCrossentropy: {
                const index_t label = static_cast<index_t>(y[r]);
                row = -std::log(double(clip_probability(pr[label])));
                break;
            }
        }
        total += w ? double(w[r]) * row : row;
    }
    return total;
}

template <typename T>
void loss_backward(Loss loss, T* dp, const T* p, const T* y, index_t rows, index_t cols,
                   double delta, T scale_all, const T* w) {
    const T per_output_all = scale_all / static_cast<T>(cols);  // for losses averaged over outputs
    const T d = static_cast<T>(delta);
    for (index_t r = 0; r < rows; ++r) {
        const T scale = w ? scale_all * w[r] : scale_all;
        const T per_output = w ? scale / static_cast<T>(cols) : per_output_all;
        const T* pr = p + r * cols;
        T* dr = dp + r * cols;
        const T* yr = loss_is_sparse(loss) ? y + r : y + r * cols;
        switch (loss) {
            case Loss::MeanSquaredError:
                for (index_t j = 0; j < cols; ++j) dr[j] = T(2) * per_output * (pr[j] - yr[j]);
                break;
            case Loss::MeanAbsoluteError:
                for (index_t j = 0; j < cols; ++j) {
                    const T e = pr[j] - yr[j];
                    dr[j] = e > T(0) ? per_output : (e < T(0) ? -per_output : T(0));
                }
                break;
            case Loss::Huber:
                for (index_t j = 0; j < cols; ++j) {
                    const T e = pr[j] - yr[j];
                    dr[j] = per_output * (std::fabs(e) <= d ? e : (e > T(0) ? d : -d));
                }
                break;
            case Loss::BinaryCrossentropy:
                for (index_t j = 0; j < cols; ++j) {
                    const T q = pr[j];
                    dr[j] = is_clipped(q) ? T(0) : per_output * (q - yr[j]) / (q * (T(1) - q));
                }
                break;
            case Loss::CategoricalCrossentropy:
                for (index_t j = 0; j < cols; ++j)
                    dr[j] = is_clipped(pr[j]) ? T(0) : -scale * yr[j] / pr[j];
                break;
            case Loss::SparseCategoricalCrossentropy: {
                const index_t label = static_cast<index_t>(yr[0]);
                for (index_t j = 0; j < cols; ++j) dr[j] = T(0);
                if (!is_clipped(pr[label])) dr[label] = -scale / pr[label];
                break;
            }
        }
    }
}

template <typename T>
double softmax_cross_entropy(T* dz, const T* z, const T* y, index_t rows, index_t cols, bool sparse,
                             T scale_all, const T* w) {
    double total = 0.0;
    for (index_t r = 0; r < rows; ++r) {
        // An exact 1 when unweighted: the products below then change no bit.
        const double wr = w ? double(w[r]) : 1.0;
        const T scale = w ? scale_all * w[r] : scale_all;
        const T* zr = z + r * cols;
        T mx = zr[0];
        for (index_t j = 1; j < cols; ++j) mx = std::max(mx, zr[j]);
        double sum_exp = 0.0;
        for (index_t j = 0; j < cols; ++j) sum_exp += std::exp(double(zr[j] - mx));
        const double lse = double(mx) + std::log(sum_exp);
        double y_sum = 0.0;
        if (sparse) {
            const index_t label = static_cast<index_t>(y[r]);
            total += wr * (lse - double(zr[label]));
            y_sum = 1.0;
        } else {
            const T* yr = y + r * cols;
            for (index_t j = 0; j < cols; ++j) {
                total += wr * (double(yr[j]) * (lse - double(zr[j])));
                y_sum += double(yr[j]);
            }
        }
        if (dz == nullptr) continue;
        T* dr = dz + r * cols;
        const T ys = static_cast<T>(y_sum);
        for (index_t j = 0; j < cols; ++j) dr[j] = scale * static_cast<T>(std::exp(double(zr[j]) - lse)) * ys;
        if (sparse) {
            dr[static_cast<index_t>(y[r])] -= scale;
        } else {
            const T* yr = y + r * cols;
            for (index_t j = 0; j < cols; ++j) dr[j] -= scale * yr[j];
        }
    }
    return total;
}

template <typename T>
double sigmoid_binary_cross_entropy(T* dz, const T* z, const T* y, index_t rows, index_t cols,
                                    T scale, const T* w) {
    double total = 0.0;
    const T per_output_all = scale / static_cast<T>(cols);
    for (index_t r = 0; r < rows; ++r) {
        const double wr = w ? double(w[r]) : 1.0;  // an exact 1 when unweighted
        const T per_output = w ? scale * w[r] / static_cast<T>(cols) : per_output_all;
        const T* zr = z + r * cols;
        const T* yr = y + r * cols;
        double row = 0.0;
        for (index_t j = 0; j < cols; ++j) {
            const double x = zr[j], t = yr[j];
            row += std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x)));
        }
        total += wr * (row / double(cols));
        if (dz == nullptr) continue;
        T* dr = dz + r * cols;
        for (index_t j = 0; j < cols; ++j) {
            const T x = zr[j];
            const T s = x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
            dr[j] = per_output * (s - yr[j]);
        }
    }
    return total;
}

template <typename T>
void check_sample_weights(const T* w, index_t rows) {
    for (index_t r = 0; r < rows; ++r)
        if (!(w[r] >= T(0) && std::isfinite(w[r])))  // negated: NaN fails it too
            throw std::invalid_argument("sample weights must be finite and non-negative, received " +
                                        std::to_string(double(w[r])) + " at row " + std::to_string(r));
}

#define LAMINA_INSTANTIATE_LOSSES(T)                                                                          \
    template double loss_sum<T>(Loss, const T*, const T*, index_t, index_t, double, const T*);               \
    template void loss_backward<T>(Loss, T*, const T*, const T*, index_t, index_t, double, T, const T*);     \
    template double softmax_cross_entropy<T>(T*, const T*, const T*, index_t, index_t, bool, T, const T*);  \
    template double sigmoid_binary_cross_entropy<T>(T*, const T*, const T*, index_t, index_t, T, const T*); \
    template void check_sample_weights<T>(const T*, index_t);
LAMINA_INSTANTIATE_LOSSES(float)
LAMINA_INSTANTIATE_LOSSES(double)

}  // namespace lamina
