#include "lamina/optimizers.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "lamina/gemm.h"
#include "lamina/optimizers_avx2.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"
#include "lamina/vectorize.h"

namespace lamina {

namespace {

// Sum of squares in a fixed order (double accumulation): the same on any thread count.
template <typename T>
double squared_norm(const T* g, index_t n) {
    double s = 0.0;
    for (index_t i = 0; i < n; ++i) s += double(g[i]) * double(g[i]);
    return s;
}

template <typename T>
LAMINA_VECTORIZE void scale_by(T* g, index_t n, T factor) {
    for (index_t i = 0; i < n; ++i) g[i] *= factor;
}

}  // namespace

template <typename T>
void Optimizer<T>::configure(const OptimizerConfig& config, index_t n_params) {
    config_ = config;
    iterations = 0;
    slots.assign(3, {});
    const auto n = static_cast<std::size_t>(n_params);
    switch (config.kind) {
        case OptimizerKind::SGD:
            if (config.momentum != 0.0) slots[0].assign(n, T(0));
            break;
        case OptimizerKind::RMSprop:
            slots[0].assign(n, T(0));
            if (config.momentum != 0.0) slots[1].assign(n, T(0));
            if (config.centered) slots[2].assign(n, T(0));
            break;
        case OptimizerKind::Adagrad:
            slots[0].assign(n, static_cast<T>(config.initial_accumulator_value));
            break;
        case OptimizerKind::Adam:
        case OptimizerKind::AdamW:
            slots[0].assign(n, T(0));
            slots[1].assign(n, T(0));
            if (config.amsgrad) slots[2].assign(n, T(0));
            break;
    }
}

// The ranges of grads a step covers: [0, n) when the tensors tile it (every layer trainable:
// one sweep, as always), else each tensor (frozen layers leave gaps).
namespace {
template <typename F>
void for_each_range(const std::vector<TensorSpan>& tensors, F&& f) {
    index_t end = 0;
    for (const TensorSpan& t : tensors) {
        if (t.offset != end) {
            for (const TensorSpan& u : tensors) f(u.offset, u.size);
            return;
        }
        end += t.size;
    }
    if (end > 0) f(index_t(0), end);
}
}  // namespace

template <typename T>
void Optimizer<T>::clip(T* grads, const std::vector<TensorSpan>& tensors) const {
    if (config_.clipvalue > 0.0) {
        const T v = static_cast<T>(config_.clipvalue);
        for_each_range(tensors, [&](index_t offset, index_t n) {
            for (index_t i = offset; i < offset + n; ++i) grads[i] = std::min(std::max(grads[i], -v), v);
        });
    }
    if (config_.clipnorm > 0.0) {
        for (const TensorSpan& t : tensors) {
            const double norm = std::sqrt(squared_norm(grads + t.offset, t.size));
            if (norm > config_.clipnorm)
                scale_by(grads + t.offset, t.size, static_cast<T>(config_.clipnorm / norm));
        }
    }
    if (config_.global_clipnorm > 0.0) {
        double sq = 0.0;
        for_each_range(tensors, [&](index_t offset, index_t n) { sq += squared_norm(grads + offset, n); });
        const double norm = std::sqrt(sq);
        if (norm > config_.global_clipnorm)
            for_each_range(tensors, [&](index_t offset, index_t n) {
                scale_by(grads + offset, n, static_cast<T>(config_.global_clipnorm / norm));
            });
    }
}

template <typename T>
void Optimizer<T>::begin_step() {
    const OptimizerConfig& c = config_;
    if (c.kind == OptimizerKind::Adam || c.kind == OptimizerKind::AdamW) {
        const double t = static_cast<double>(iterations + 1);
        alpha_ = static_cast<T>(c.learning_rate * std::sqrt(1.0 - std::pow(c.beta_2, t)) /
                                (1.0 - std::pow(c.beta_1, t)));
    }
}

namespace {

// The rules as free functions with internal linkage: the per-ISA clones (LAMINA_VECTORIZE) then
// exist in this translation unit only, so no other unit can see a different declaration.
template <typename T>
LAMINA_VECTORIZE void update_rule(const OptimizerConfig& c, T alpha_, std::vector<AlignedVector<T>>& slots, T* w,
                                  const T* g, index_t offset, index_t n) {
    const T lr = static_cast<T>(c.learning_rate);
    const T eps = static_cast<T>(c.epsilon);
    switch (c.kind) {
        case OptimizerKind::SGD: {
            if (c.momentum == 0.0) {
                for (index_t i = 0; i < n; ++i) w[i] -= lr * g[i];
                return;
            }
            const T mu = static_cast<T>(c.momentum);
            T* m = slots[0].data() + offset;
            if (c.nesterov) {
                for (index_t i = 0; i < n; ++i) {
                    m[i] = mu * m[i] - lr * g[i];
                    w[i] += mu * m[i] - lr * g[i];
                }
            } else {
                for (index_t i = 0; i < n; ++i) {
                    m[i] = mu * m[i] - lr * g[i];
                    w[i] += m[i];
                }
            }
            return;
        }
        case OptimizerKind::RMSprop: {
            const T rho = static_cast<T>(c.rho), mu = static_cast<T>(c.momentum);
            T* v = slots[0].data() + offset;
            T* m = slots[1].empty() ? nullptr : slots[1].data() + offset;
            T* avg = slots[2].empty() ? nullptr : slots[2].data() + offset;
            if (!m && !avg) {  // the common case, kept branch-free so it vectorizes
#ifdef LAMINA_HAVE_AVX2_TU  // the kernel exists only in x86-64 builds
                if constexpr (std::is_same_v<T, float>) {
                    if (avx2_kernels()) {
                        rmsprop_update_f32_avx2(w, v, g, n, lr, rho, eps);
                        return;
                    }
                }
#endif
                for (index_t i = 0; i < n; ++i) {
                    v[i] = rho * v[i] + (T(1) - rho) * g[i] * g[i];
                    w[i] -= lr * g[i] / std::sqrt(v[i] + eps);
                }
                return;
            }
            for (index_t i = 0; i < n; ++i) {
                v[i] = rho * v[i] + (T(1) - rho) * g[i] * g[i];
                T denom = v[i];
                if (avg) {
                    avg[i] = rho * avg[i] + (T(1) - rho) * g[i];
                    denom -= avg[i] * avg[i];
                }
                const T increment = lr * g[i] / std::sqrt(denom + eps);
                if (m) {
                    m[i] = mu * m[i] + increment;
                    w[i] -= m[i];
                } else {
                    w[i] -= increment;
                }
            }
            return;
        }
        case OptimizerKind::Adagrad: {
            T* acc = slots[0].data() + offset;
            for (index_t i = 0; i < n; ++i) {
                acc[i] += g[i] * g[i];
                w[i] -= lr * g[i] / std::sqrt(acc[i] + eps);
            }
            return;
        }
        case OptimizerKind::Adam:
        case OptimizerKind::AdamW: {
            const T b1 = static_cast<T>(c.beta_1), b2 = static_cast<T>(c.beta_2), alpha = alpha_;
            // Decoupled weight decay comes first, as Keras applies it.
            const T keep = T(1) - (c.kind == OptimizerKind::AdamW ? static_cast<T>(c.weight_decay) * lr : T(0));
            T* m = slots[0].data() + offset;
            T* v = slots[1].data() + offset;
            T* vhat = slots[2].empty() ? nullptr : slots[2].data() + offset;
            if (!vhat) {
                for (index_t i = 0; i < n; ++i) {
                    w[i] *= keep;
                    m[i] += (g[i] - m[i]) * (T(1) - b1);
                    v[i] += (g[i] * g[i] - v[i]) * (T(1) - b2);
                    w[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
                }
                return;
            }
            for (index_t i = 0; i < n; ++i) {
                w[i] *= keep;
                m[i] += (g[i] - m[i]) * (T(1) - b1);
                v[i] += (g[i] * g[i] - v[i]) * (T(1) - b2);
                vhat[i] = std::max(vhat[i], v[i]);
                w[i] -= alpha * m[i] / (std::sqrt(vhat[i]) + eps);
            }
            return;
        }
    }
}

}  // namespace

template <typename T>
void Optimizer<T>::update_span(T* w, const T* g, index_t offset, index_t n) {
    update_rule(config_, alpha_, slots, w, g, offset, n);
}

template <typename T>
typename Optimizer<T>::ZeroGradient Optimizer<T>::zero_gradient_effect() const {
    const OptimizerConfig& c = config_;
    switch (c.kind) {
        case OptimizerKind::SGD:
            return c.momentum == 0.0 ? ZeroGradient::Unchanged : ZeroGradient::Full;
        case OptimizerKind::Adagrad: return ZeroGradient::Unchanged;  // acc += 0, w -= 0
        case OptimizerKind::RMSprop:
            return c.momentum == 0.0 && !c.centered ? ZeroGradient::DecayFirstSlot : ZeroGradient::Full;
        default: return ZeroGradient::Full;
    }
}

template <typename T>
bool Optimizer<T>::has_row_update() const {
    return std::is_same_v<T, float> && avx2_kernels() && zero_gradient_effect() == ZeroGradient::DecayFirstSlot;
}

template <typename T>
void Optimizer<T>::update_row(T* w, index_t offset, T x, const T* dz, index_t units) {
    if constexpr (std::is_same_v<T, float>) {
#ifdef LAMINA_HAVE_AVX2_TU
        const OptimizerConfig& c = config_;
        rmsprop_row_update_f32_avx2(w, slots[0].data() + offset, x, dz, units, static_cast<T>(c.learning_rate),
                                    static_cast<T>(c.rho), static_cast<T>(c.epsilon));
        return;
#endif
    }
    throw std::logic_error("update_row without has_row_update()");
}

// v <- rho v: what rho v + (1 - rho) g^2 rounds to when g = 0, fused multiply-add or not.
template <typename T>
void Optimizer<T>::decay_span(index_t offset, index_t n) {
    scale_by(slots[0].data() + offset, n, static_cast<T>(config_.rho));
}

template <typename T>
void Optimizer<T>::step(T* w, T* g, const std::vector<TensorSpan>& tensors) {
    clip(g, tensors);
    begin_step();
    // Fixed-size pieces, elementwise: the result does not depend on how threads share them.
    constexpr index_t kPiece = 4096;
    for_each_range(tensors, [&](index_t first, index_t n) {
        const index_t pieces = (n + kPiece - 1) / kPiece;
        const bool parallel = n >= kParallelMinFlops;
        parallel_for(parallel, pieces, [&](index_t p) {
            const index_t offset = first + p * kPiece;
            update_span(w + offset, g + offset, offset, std::min(kPiece, first + n - offset));
        });
    });
    end_step();
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace lamina
