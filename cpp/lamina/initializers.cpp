#include "lamina/initializers.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "lamina/random.h"

namespace lamina {

namespace {

// Keras's VarianceScaling: scale / n with n = fan_in, fan_out or their mean.
struct Scaling {
    double scale;
    double n;
    bool normal;
};

Scaling scaling_for(InitKind kind, index_t fan_in, index_t fan_out) {
    const double avg = 0.5 * static_cast<double>(fan_in + fan_out);
    const double in = static_cast<double>(fan_in);
    switch (kind) {
        case InitKind::GlorotUniform: return {1.0, avg, false};
        case InitKind::GlorotNormal: return {1.0, avg, true};
        case InitKind::HeUniform: return {2.0, in, false};
        case InitKind::HeNormal: return {2.0, in, true};
        case InitKind::LecunUniform: return {1.0, in, false};
        case InitKind::LecunNormal: return {1.0, in, true};
        default: return {0.0, 1.0, false};
    }
}

// Truncated at two standard deviations, as Keras does: redraw (with a fresh counter) until inside.
double truncated_normal(const CounterRng& rng, std::uint64_t element) {
    for (std::uint64_t attempt = 0;; ++attempt) {
        const double z = rng.normal((element << 6) | (attempt & 63));
        if (std::fabs(z) <= 2.0 || attempt >= 63) return std::fabs(z) <= 2.0 ? z : 0.0;
    }
}

}  // namespace

template <typename T>
void initialize(T* w, index_t count, index_t fan_in, index_t fan_out, const Initializer& init,
                std::uint64_t seed, std::uint64_t stream) {
    switch (init.kind) {
        case InitKind::Zeros:
            for (index_t i = 0; i < count; ++i) w[i] = T(0);
            return;
        case InitKind::Ones:
            for (index_t i = 0; i < count; ++i) w[i] = T(1);
            return;
        case InitKind::Constant:
            for (index_t i = 0; i < count; ++i) w[i] = static_cast<T>(init.value);
            return;
        case InitKind::RandomNormal:
        case InitKind::TruncatedNormal:
        case InitKind::RandomUniform: {
            const CounterRng rng(seed, stream);
            for (index_t i = 0; i < count; ++i) {
                const auto c = static_cast<std::uint64_t>(i);
                double v;
                if (init.kind == InitKind::RandomUniform)
                    v = init.value + (init.value2 - init.value) * rng.uniform(c);
                else if (init.kind == InitKind::RandomNormal)
                    v = init.value + init.value2 * rng.normal(c);
                else
                    v = init.value + init.value2 * truncated_normal(rng, c);
                w[i] = static_cast<T>(v);
            }
            return;
        }
        default: break;
    }
    const Scaling s = scaling_for(init.kind, fan_in, fan_out);
    const double variance = s.scale / std::max(1.0, s.n);
    const CounterRng rng(seed, stream);
    if (s.normal) {
        // 0.8796... is the stddev of a unit normal truncated to [-2, 2].
        const double stddev = std::sqrt(variance) / 0.87962566103423978;
        for (index_t i = 0; i < count; ++i)
            w[i] = static_cast<T>(stddev * truncated_normal(rng, static_cast<std::uint64_t>(i)));
    } else {
        const double limit = std::sqrt(3.0 * variance);
        for (index_t i = 0; i < count; ++i)
            w[i] = static_cast<T>(limit * (2.0 * rng.uniform(static_cast<std::uint64_t>(i)) - 1.0));
    }
}

template void initialize<float>(float*, index_t, index_t, index_t, const Initializer&,
                                std::uint64_t, std::uint64_t);
template void initialize<double>(double*, index_t, index_t, index_t, const Initializer&,
                                 std::uint64_t, std::uint64_t);

}  // namespace lamina
