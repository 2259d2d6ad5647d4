#include "lamina/train.h"

#include <algorithm>
#include <cstring>

#include "lamina/denormals.h"
#include "lamina/finite.h"
#include "lamina/random.h"
#include "lamina/thread_team.h"

namespace lamina {

namespace {
// Values below which the batch is copied by one thread: waking the team costs about as much.
constexpr index_t kParallelMinGather = 8192;
}  // namespace

template <typename T>
void train_batches(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
                   const std::int64_t* order, index_t n_rows, index_t first, index_t batch_size,
                   index_t n_batches, const T* w, bool empty_steps) {
    net.check_targets(y, n_rows, ycols);
    if (w != nullptr) check_sample_weights(w, n_rows);
    train_checked_batches(net, stats, x, y, ycols, order, n_rows, first, batch_size, n_batches, w, empty_steps);
}

template <typename T>
void train_checked_batches(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
                           const std::int64_t* order, index_t n_rows, index_t first, index_t batch_size,
                           index_t n_batches, const T* w, bool empty_steps) {
    stats.fit_to(net.metric_classes());  // under the caller's lock: the mode cannot change now
    const FlushDenormalsScope flush;  // training's decaying optimizer state (see denormals.h)
    const PackedKernelsScope<T> packed(net);
    net.reserve(std::min(batch_size, n_rows));  // a batch never holds more rows than the data
    // One team for all the batches: each step's few dozen parallel loops find it waiting.
    with_team([&] {
        const index_t in = net.input_dim();
        T* bx = net.batch_x();
        T* by = net.batch_y();
        T* bw = w ? net.batch_w() : nullptr;
        for (index_t b = 0; b < n_batches; ++b) {
            const index_t start = first + b * batch_size;
            if (start >= n_rows && !empty_steps) break;
            const index_t n = std::max<index_t>(0, std::min(batch_size, n_rows - start));
            // A shuffled batch's rows lie anywhere in the data set (Fashion-MNIST's is 188 MB), so
            // the copy waits on memory row after row; two threads wait on twice as many rows at
            // once (batch 32: 17 -> 10 us of a ~400 us step).
            parallel_for(n * in >= kParallelMinGather, n, [&](index_t r) {
                const index_t src = order ? order[start + r] : start + r;
                std::memcpy(bx + r * in, x + src * in, sizeof(T) * static_cast<std::size_t>(in));
                std::memcpy(by + r * ycols, y + src * ycols, sizeof(T) * static_cast<std::size_t>(ycols));
                if (bw) bw[r] = w[src];
            });
            net.forward(bx, n, /*training=*/true);
            net.train_step(by, n, ycols, stats, bw);
            ++stats.batches;
        }
    });
}

template <typename T>
void evaluate(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
              index_t n_rows, index_t batch_size, const T* w) {
    net.check_targets(y, n_rows, ycols);
    if (w != nullptr) check_sample_weights(w, n_rows);
    stats.fit_to(net.metric_classes());
    const PackedKernelsScope<T> packed(net);
    with_team([&] {
        for (index_t start = 0; start < n_rows; start += batch_size) {
            const index_t n = std::min(batch_size, n_rows - start);
            net.forward(x + start * net.input_dim(), n, /*training=*/false);
            net.loss_and_output_gradient(y + start * ycols, n, ycols, /*output_gradient=*/false, &stats,
                                         w ? w + start : nullptr);
        }
    });
}

template <typename T>
bool predict(Network<T>& net, T* out, const T* x, index_t n_rows, index_t batch_size, bool check_finite) {
    const index_t in = net.input_dim(), width = net.output_dim();
    const PackedKernelsScope<T> packed(net);
    bool finite = true;
    with_team([&] {
        for (index_t start = 0; start < n_rows; start += batch_size) {
            const index_t n = std::min(batch_size, n_rows - start);
            if (check_finite && !all_finite(x + start * in, n * in)) {
                finite = false;
                return;
            }
            const T* p = net.forward(x + start * in, n, /*training=*/false, /*outputs_only=*/true);
            std::memcpy(out + start * width, p, sizeof(T) * static_cast<std::size_t>(n * width));
        }
    });
    return finite;
}

namespace {
// A forward pass that draws its training-time randomness at net.steps without advancing it.
template <typename T>
const T* forward_at_step(Network<T>& net, const T* x, index_t n, bool training) {
    const std::uint64_t step = net.steps;
    const T* out = net.forward(x, n, training);
    net.steps = step;
    return out;
}
}  // namespace

template <typename T>
double loss_and_gradient(Network<T>& net, const T* x, const T* y, index_t ycols, index_t n_rows, const T* w,
                         bool training) {
    net.check_targets(y, n_rows, ycols);
    if (w != nullptr) check_sample_weights(w, n_rows);
    forward_at_step(net, x, n_rows, training);
    return net.loss_and_gradient(y, n_rows, ycols, w);
}

template <typename T>
void numerical_gradient(Network<T>& net, T* out, const T* x, const T* y, index_t ycols,
                        index_t n_rows, double epsilon, const std::int64_t* indices, index_t count,
                        const T* w, bool training) {
    net.check_targets(y, n_rows, ycols);
    if (w != nullptr) check_sample_weights(w, n_rows);
    T* theta = net.params();
    const T eps = static_cast<T>(epsilon);
    for (index_t i = 0; i < count; ++i) {
        T& param = theta[indices[i]];
        const T saved = param;
        param = saved + eps;
        forward_at_step(net, x, n_rows, training);
        const double plus = net.loss_and_output_gradient(y, n_rows, ycols, false, nullptr, w);
        param = saved - eps;
        forward_at_step(net, x, n_rows, training);
        const double minus = net.loss_and_output_gradient(y, n_rows, ycols, false, nullptr, w);
        param = saved;
        out[i] = static_cast<T>((plus - minus) / (2.0 * epsilon));
    }
}

template <typename T>
void forward_batch(Network<T>& net, T* out, const T* x, index_t n_rows, bool training) {
    const T* p = forward_at_step(net, x, n_rows, training);
    std::memcpy(out, p, sizeof(T) * static_cast<std::size_t>(n_rows * net.output_dim()));
}

std::vector<std::int64_t> shuffled_order(index_t n, std::uint64_t seed, std::uint64_t epoch) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) order[i] = i;
    const CounterRng rng(seed, 0x5EED0000ull + epoch);
    for (index_t i = n - 1; i > 0; --i) {
        const auto j = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i + 1)));
        std::swap(order[i], order[j]);
    }
    return order;
}

#define LAMINA_INSTANTIATE_TRAIN(T)                                                                \
    template void train_batches<T>(Network<T>&, BatchStats&, const T*, const T*, index_t,          \
                                   const std::int64_t*, index_t, index_t, index_t, index_t,       \
                                   const T*, bool);                                               \
    template void train_checked_batches<T>(Network<T>&, BatchStats&, const T*, const T*, index_t,  \
                                           const std::int64_t*, index_t, index_t, index_t, index_t, \
                                           const T*, bool);                                       \
    template void evaluate<T>(Network<T>&, BatchStats&, const T*, const T*, index_t, index_t,      \
                              index_t, const T*);                                                 \
    template bool predict<T>(Network<T>&, T*, const T*, index_t, index_t, bool);                   \
    template double loss_and_gradient<T>(Network<T>&, const T*, const T*, index_t, index_t,        \
                                         const T*, bool);                                         \
    template void numerical_gradient<T>(Network<T>&, T*, const T*, const T*, index_t, index_t,    \
                                        double, const std::int64_t*, index_t, const T*, bool);    \
    template void forward_batch<T>(Network<T>&, T*, const T*, index_t, bool);
LAMINA_INSTANTIATE_TRAIN(float)
LAMINA_INSTANTIATE_TRAIN(double)

}  // namespace lamina
