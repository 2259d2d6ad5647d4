#include "lamina/network.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "lamina/dense.h"
#include "lamina/normalization.h"
#include "lamina/random.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"
#include "lamina/vectorize.h"

namespace lamina {

void BatchStats::reset(index_t n_classes) {
    *this = BatchStats{};
    classes = n_classes;
    confusion.assign(static_cast<std::size_t>(n_classes * n_classes), 0);
    weighted_confusion.assign(static_cast<std::size_t>(n_classes * n_classes), 0.0);
}

namespace {

// Random streams: each tensor and each dropout, noise or augmentation layer draws from its own.
constexpr std::uint64_t kKernelStream = 0x100, kBiasStream = 0x200, kDropoutStream = 0x300,
                        kNoiseStream = 0x400, kAugmentStream = 0x500;

// The stream of layer l's training-time draws at step `step`: the same for any thread count.
CounterRng layer_rng(std::uint64_t seed, std::uint64_t stream, std::size_t l, std::uint64_t step) {
    return CounterRng(seed ^ mix64(stream + static_cast<std::uint64_t>(l)), step);
}

bool finite_range(double lower, double upper) {
    return std::isfinite(lower) && std::isfinite(upper) && lower <= upper;
}

// Throws unless spec describes images of `width` values and factors the sampler can use.
void check_augment(LayerKind kind, const AugmentSpec& a, index_t width) {
    // Divisions first, so the product below cannot overflow.
    if (a.height <= 0 || a.width <= 0 || a.channels <= 0 || a.height > width || a.width > width / a.height ||
        a.channels > width / (a.height * a.width) || a.height * a.width * a.channels != width)
        throw std::invalid_argument("an augmentation layer's image shape (" + std::to_string(a.height) + ", " +
                                    std::to_string(a.width) + ", " + std::to_string(a.channels) +
                                    ") does not hold its " + std::to_string(width) + " inputs");
    if (!finite_range(a.height_lower, a.height_upper) || !finite_range(a.width_lower, a.width_upper) ||
        !std::isfinite(a.fill_value))
        throw std::invalid_argument("an augmentation layer's factors must be finite ranges (lower <= upper)");
    if (kind == LayerKind::RandomZoom && (a.height_lower < -1.0 || a.width_lower < -1.0))
        throw std::invalid_argument("RandomZoom factors must be at least -1");
}

template <typename T>
index_t argmax_row(const T* r, index_t cols) {
    index_t best = 0;
    for (index_t j = 1; j < cols; ++j)
        if (r[j] > r[best]) best = j;
    return best;
}

// out[0] = sum |w|, out[1] = sum w^2 over w (n), accumulated in double.
// Eight independent lanes, so the sums vectorize without reordering anything at run time: the
// order is fixed by the code, the same on every call and thread.
template <typename T>
LAMINA_VECTORIZE void chunk_abs_and_squares(const T* w, index_t n, double* out) {
    constexpr int kLanes = 8;
    double abs_lane[kLanes] = {}, sq_lane[kLanes] = {};
    index_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (int k = 0; k < kLanes; ++k) {
            const double v = w[i + k];
            abs_lane[k] += std::fabs(v);
            sq_lane[k] += v * v;
        }
    }
    for (int k = 0; i < n; ++i, ++k) {
        const double v = w[i];
        abs_lane[k] += std::fabs(v);
        sq_lane[k] += v * v;
    }
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int k = 0; k < kLanes; ++k) {
        abs_sum += abs_lane[k];
        sq_sum += sq_lane[k];
    }
    out[0] = abs_sum;
    out[1] = sq_sum;
}

}  // namespace

bool augment_kind(LayerKind kind, AugmentKind* out) {
    switch (kind) {
        case LayerKind::RandomFlip: *out = AugmentKind::Flip; return true;
        case LayerKind::RandomTranslation: *out = AugmentKind::Translation; return true;
        case LayerKind::RandomRotation: *out = AugmentKind::Rotation; return true;
        case LayerKind::RandomZoom: *out = AugmentKind::Zoom; return true;
        default: return false;
    }
}

template <typename T>
Network<T>::Network(index_t input_dim, std::vector<LayerSpec> layers, std::uint64_t seed)
    : input_dim_(input_dim), layers_(std::move(layers)), seed_(seed), storing_sink_(nullptr, nullptr),
      fused_sink_(nullptr, nullptr, nullptr) {
    if (input_dim <= 0) throw std::invalid_argument("input_dim must be positive");
    if (layers_.empty()) throw std::invalid_argument("a network needs at least one layer");
    index_t width = input_dim, offset = 0;
    bool dense_below = false;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const LayerSpec& s = layers_[l];
        needs_input_grad_.push_back(dense_below);
        if (s.kind == LayerKind::Dense) {
            if (s.units <= 0) throw std::invalid_argument("Dense units must be positive");
            // Sizes come from Python: refuse counts that would overflow 64-bit arithmetic.
            constexpr index_t kMaxParams = index_t(1) << 52;
            if (width > kMaxParams / s.units || offset > kMaxParams - width * s.units - s.units)
                throw std::invalid_argument("the network would have more than 2^52 parameters");
            DenseParams d{static_cast<index_t>(l), width, s.units, offset, -1};
            offset += width * s.units;
            if (s.use_bias) {
                d.bias_offset = offset;
                offset += s.units;
            }
            dense_index_.push_back(static_cast<index_t>(dense_.size()));
            dense_.push_back(d);
            tensors_.push_back({d.kernel_offset, width * s.units});
            if (s.use_bias) tensors_.push_back({d.bias_offset, s.units});
            width = s.units;
            dense_below = true;
            norm_index_.push_back(-1);
        } else if (is_normalization(s.kind)) {
            if (!(s.epsilon > 0.0 && std::isfinite(s.epsilon)))
                throw std::invalid_argument("a normalization layer's epsilon must be positive and finite");
            if (s.kind == LayerKind::BatchNormalization && !(s.momentum >= 0.0 && s.momentum <= 1.0))
                throw std::invalid_argument("BatchNormalization momentum must be in [0, 1]");
            constexpr index_t kMaxParams = index_t(1) << 52;
            if (offset > kMaxParams - 4 * width)
                throw std::invalid_argument("the network would have more than 2^52 parameters");
            NormParams p{static_cast<index_t>(l), width};
            if (s.scale) {
                p.gamma_offset = offset;
                tensors_.push_back({offset, width});
                offset += width;
            }
            if (s.center) {
                p.beta_offset = offset;
                tensors_.push_back({offset, width});
                offset += width;
            }
            if (s.kind == LayerKind::BatchNormalization) {
                p.mean_offset = offset;
                p.var_offset = offset + width;
                offset += 2 * width;
            }
            if (s.scale || s.center) dense_below = true;
            dense_index_.push_back(-1);
            norm_index_.push_back(static_cast<index_t>(norm_.size()));
            norm_.push_back(p);
        } else {
            AugmentKind augment;
            if (s.kind == LayerKind::Dropout && !(s.rate >= 0.0 && s.rate < 1.0))
                throw std::invalid_argument("Dropout rate must be in [0, 1)");
            if (s.kind == LayerKind::GaussianNoise && !(s.stddev >= 0.0 && std::isfinite(s.stddev)))
                throw std::invalid_argument("GaussianNoise stddev must be finite and non-negative");
            if (augment_kind(s.kind, &augment)) check_augment(s.kind, s.augment, width);
            dense_index_.push_back(-1);
            norm_index_.push_back(-1);
        }
        widths_.push_back(width);
    }
    params_.assign(static_cast<std::size_t>(offset), T(0));
    index_t max_kernel = 0;
    for (const DenseParams& d : dense_) max_kernel = std::max(max_kernel, d.in * d.units);
    penalty_partials_.assign(static_cast<std::size_t>(2 * ((max_kernel + kPenaltyChunk - 1) / kPenaltyChunk)), 0.0);
    grads_.assign(static_cast<std::size_t>(offset), T(0));
    // The blocks are never reallocated after this, so the sinks may keep their addresses.
    storing_sink_ = StoringSink<T>(params_.data(), grads_.data());
    fused_sink_ = FusedUpdateSink<T>(params_.data(), grads_.data(), &optimizer_);
    // Streams follow the Dense layers' order, so inserting a Dropout changes no initial weight.
    for (std::size_t i = 0; i < dense_.size(); ++i) {
        const DenseParams& d = dense_[i];
        const LayerSpec& s = layers_[d.layer];
        const auto layer = static_cast<std::uint64_t>(i);
        initialize(params_.data() + d.kernel_offset, d.in * d.units, d.in, d.units, s.kernel_init,
                   seed_, kKernelStream + layer);
        if (d.bias_offset >= 0)
            initialize(params_.data() + d.bias_offset, d.units, d.in, d.units, s.bias_init, seed_,
                       kBiasStream + layer);
    }
    // Keras's initial values: gamma 1, beta 0, moving mean 0, moving variance 1.
    for (const NormParams& p : norm_) {
        if (p.gamma_offset >= 0) std::fill_n(params_.data() + p.gamma_offset, p.features, T(1));
        if (p.var_offset >= 0) std::fill_n(params_.data() + p.var_offset, p.features, T(1));
    }
    trainable_tensors_ = tensors_;
    optimizer_.configure(OptimizerConfig{}, param_count());
    z_.resize(layers_.size());
    a_.resize(layers_.size());
    mask_.resize(layers_.size());
    transforms_.resize(layers_.size());
    norm_stats_.resize(layers_.size());
    norm_batch_stats_.assign(layers_.size(), false);
    in_.assign(layers_.size(), nullptr);
    out_.assign(layers_.size(), nullptr);
}

template <typename T>
void Network<T>::set_loss(const LossConfig& loss) {
    loss_ = loss;
    const LayerSpec& last = layers_.back();
    // A last Activation layer fuses with the loss as a Dense layer's activation does.
    const bool dense_last = last.kind == LayerKind::Dense || last.kind == LayerKind::Activation;
    const bool categorical = loss.kind == Loss::CategoricalCrossentropy ||
                             loss.kind == Loss::SparseCategoricalCrossentropy;
    const bool binary = loss.kind == Loss::BinaryCrossentropy;
    output_gradient_ = OutputGradient::Generic;
    if (loss.from_logits && categorical) {
        output_gradient_ = OutputGradient::SoftmaxOnOutput;
    } else if (loss.from_logits && binary) {
        output_gradient_ = OutputGradient::SigmoidOnOutput;
    } else if (dense_last && categorical && last.activation == Activation::Softmax) {
        output_gradient_ = OutputGradient::SoftmaxOnPreactivation;
    } else if (dense_last && binary && last.activation == Activation::Sigmoid) {
        output_gradient_ = OutputGradient::SigmoidOnPreactivation;
    }
}

template <typename T>
index_t Network<T>::metric_classes() const {
    switch (metric_mode_) {
        case MetricMode::ArgmaxOneHot:
        case MetricMode::ArgmaxSparse: return output_dim();
        case MetricMode::Threshold: return 2;
        default: return 0;
    }
}

template <typename T>
void Network<T>::check_targets(const T* y, index_t rows, index_t ycols) const {
    const index_t cols = output_dim();
    const bool sparse_loss = loss_is_sparse(loss_.kind);
    const bool sparse_metric = metric_mode_ == MetricMode::ArgmaxSparse;
    const bool dense_metric = metric_mode_ == MetricMode::ArgmaxOneHot || metric_mode_ == MetricMode::Threshold;
    // With one output both layouts are one column, so any pairing is safe.
    if (((sparse_loss && dense_metric) || (!sparse_loss && sparse_metric)) && cols != 1)
        throw std::invalid_argument(
            "the loss and the metrics need different target layouts (integer labels for one, one "
            "column per output for the other): the targets fit at most one of them");
    const index_t want = sparse_loss || sparse_metric ? 1 : cols;
    if (ycols != want)
        throw std::invalid_argument("targets must have " + std::to_string(want) + " columns, received " +
                                    std::to_string(ycols));
    if (!(sparse_loss || sparse_metric)) return;
    for (index_t r = 0; r < rows; ++r) {
        const T label = y[r];
        // Negated test: NaN fails it too.
        if (!(label >= T(0) && label < static_cast<T>(cols) && label == std::floor(label)))
            throw std::invalid_argument("label out of range: labels must be integers in [0, " + std::to_string(cols) +
                                        "), received " + std::to_string(double(label)) + " at row " +
                                        std::to_string(r));
    }
}

template <typename T>
void Network<T>::reserve(index_t n) {
    if (n <= capacity_) return;
    const auto rows = static_cast<std::size_t>(n);
    index_t max_width = input_dim_;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const auto w = static_cast<std::size_t>(widths_[l]);
        max_width = std::max(max_width, widths_[l]);
        AugmentKind augment;
        if (layers_[l].kind == LayerKind::Dense) {
            z_[l].assign(rows * w, T(0));
            if (layers_[l].activation != Activation::Linear) a_[l].assign(rows * w, T(0));
        } else {
            if (layers_[l].kind == LayerKind::Dropout) mask_[l].assign(rows * w, T(0));
            if (layers_[l].kind == LayerKind::BatchNormalization) norm_stats_[l].assign(3 * w, 0.0);
            if (layers_[l].kind == LayerKind::LayerNormalization) norm_stats_[l].assign(2 * rows, 0.0);
            if (augment_kind(layers_[l].kind, &augment))
                transforms_[l].assign(rows * static_cast<std::size_t>(kTransformSize), 0.0);
            a_[l].assign(rows * w, T(0));
        }
    }
    grad_a_.assign(rows * static_cast<std::size_t>(max_width), T(0));
    grad_b_.assign(rows * static_cast<std::size_t>(max_width), T(0));
    batch_x_.assign(rows * static_cast<std::size_t>(input_dim_), T(0));
    batch_y_.assign(rows * static_cast<std::size_t>(output_dim()), T(0));
    batch_w_.assign(rows, T(0));
    capacity_ = n;
}

template <typename T>
const T* Network<T>::forward(const T* x, index_t n, bool training, bool outputs_only) {
    reserve(n);
    last_training_ = training;
    const T* in = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const LayerSpec& s = layers_[l];
        in_[l] = in;
        if (!training && folds_batch_norm(l)) {
            dense_batch_norm_inference(l, in, n);
            in = out_[++l];
            continue;
        }
        if (s.kind == LayerKind::Dense) {
            const DenseParams& d = dense_[dense_index_[l]];
            T* z = z_[l].data();
            const T* b = d.bias_offset >= 0 ? params_.data() + d.bias_offset : nullptr;
            const T* W = params_.data() + d.kernel_offset;
            Bf16PackedB* packed = packed_kernel(dense_index_[l], training, n);
            if (s.activation == Activation::Linear) {
                dense_forward(z, in, W, b, n, d.in, d.units, Activation::Linear, static_cast<T*>(nullptr), bf16_products_,
                              packed);
                out_[l] = z;
            } else if (is_elementwise(s.activation)) {
                // Prediction needs no pre-activation: the activation overwrites z in place, one
                // stream of writes fewer. Losses and backward passes read z.
                T* a = outputs_only && !training ? z : a_[l].data();
                dense_forward(z, in, W, b, n, d.in, d.units, s.activation, a, bf16_products_, packed);
                out_[l] = a;
            } else {
                dense_forward(z, in, W, b, n, d.in, d.units, Activation::Linear, static_cast<T*>(nullptr), bf16_products_,
                              packed);
                activation_forward(s.activation, a_[l].data(), z, n, d.units);
                out_[l] = a_[l].data();
            }
        } else if (s.kind == LayerKind::Activation) {
            activation_forward(s.activation, a_[l].data(), in, n, widths_[l]);
            out_[l] = a_[l].data();
        } else if (is_normalization(s.kind)) {
            normalization_forward(l, in, n, training);
            out_[l] = a_[l].data();
        } else if (training && s.kind == LayerKind::GaussianNoise && s.stddev > 0.0) {
            gaussian_noise_forward(a_[l].data(), in, n * widths_[l], s.stddev,
                                   layer_rng(seed_, kNoiseStream, l, steps));
            out_[l] = a_[l].data();
        } else if (AugmentKind augment; training && augment_kind(s.kind, &augment)) {
            // One transform per image from the step's stream, kept for backward.
            double* t = transforms_[l].data();
            draw_transforms(augment, s.augment, layer_rng(seed_, kAugmentStream, l, steps), t, n);
            augment_forward(augment, s.augment, a_[l].data(), in, t, n);
            out_[l] = a_[l].data();
        } else if (training && s.kind == LayerKind::Dropout && s.rate > 0.0) {
            // Inverted dropout: keep with probability 1 - rate and scale by 1 / (1 - rate), so
            // nothing changes at inference. One mask element per counter: thread-independent.
            const index_t count = n * widths_[l];
            const auto first = static_cast<std::uint64_t>(dropout_row_offset * widths_[l]);
            const CounterRng rng = layer_rng(seed_, kDropoutStream, l, steps);
            const T keep_scale = static_cast<T>(1.0 / (1.0 - s.rate));
            T* mask = mask_[l].data();
            T* out = a_[l].data();
            const double rate = s.rate;
            const bool parallel = count >= kParallelMinFlops;
            parallel_for(parallel, count, [&](index_t i) {
                mask[i] = rng.uniform(first + static_cast<std::uint64_t>(i)) < rate ? T(0) : keep_scale;
                out[i] = in[i] * mask[i];
            });
            out_[l] = out;
        } else {
            out_[l] = in;  // dropout, noise and augmentation are the identity outside training
        }
        in = out_[l];
    }
    if (training) ++steps;
    return in;
}

template <typename T>
void Network<T>::record_gradient_norms(BatchStats& stats) const {
    stats.gradient_norms.resize(dense_.size(), 0.0);
    for (std::size_t i = 0; i < dense_.size(); ++i) {
        const T* g = grads_.data() + dense_[i].kernel_offset;
        double sq = 0.0;
        for (index_t j = 0; j < dense_[i].in * dense_[i].units; ++j) sq += double(g[j]) * double(g[j]);
        stats.gradient_norms[i] += std::sqrt(sq);
    }
}

template <typename T>
double Network<T>::regularization_penalty() const {
    double penalty = 0.0;
    for (const DenseParams& d : dense_) {
        const LayerSpec& s = layers_[d.layer];
        if (s.l1 == 0.0 && s.l2 == 0.0) continue;
        const T* w = params_.data() + d.kernel_offset;
        const index_t n = d.in * d.units, chunks = (n + kPenaltyChunk - 1) / kPenaltyChunk;
        double* partial = penalty_partials_.data();
        // Fixed chunks summed in parallel, then added in chunk order: the same for any thread count.
        const bool parallel = n >= 4 * kParallelMinFlops;
        parallel_for(parallel, chunks, [&](index_t c) {
            const index_t i0 = c * kPenaltyChunk;
            chunk_abs_and_squares(w + i0, std::min(kPenaltyChunk, n - i0), partial + 2 * c);
        });
        double abs_sum = 0.0, sq_sum = 0.0;
        for (index_t c = 0; c < chunks; ++c) {
            abs_sum += partial[2 * c];
            sq_sum += partial[2 * c + 1];
        }
        penalty += s.l1 * abs_sum + s.l2 * sq_sum;
    }
    return penalty;
}

template <typename T>
void Network<T>::record_metrics(const T* p, const T* y, index_t n, index_t ycols,
                                BatchStats& stats) const {
    const index_t cols = output_dim();
    if (ycols == cols) {
        for (index_t i = 0; i < n * cols; ++i) {
            const double e = double(p[i]) - double(y[i]);
            stats.squared_error += e * e;
            stats.absolute_error += std::fabs(e);
        }
        stats.elements += n * cols;
    }
    const index_t k = stats.classes;
    switch (metric_mode_) {
        case MetricMode::ArgmaxOneHot:
            for (index_t r = 0; r < n; ++r)
                ++stats.confusion[argmax_row(y + r * cols, cols) * k + argmax_row(p + r * cols, cols)];
            break;
        case MetricMode::ArgmaxSparse:
            for (index_t r = 0; r < n; ++r)
                ++stats.confusion[static_cast<index_t>(y[r]) * k + argmax_row(p + r * cols, cols)];
            break;
        case MetricMode::Threshold: {
            const T cut = loss_.from_logits ? T(0) : T(0.5);
            for (index_t i = 0; i < n * cols; ++i)
                ++stats.confusion[(y[i] >= T(0.5) ? 1 : 0) * 2 + (p[i] >= cut ? 1 : 0)];
            break;
        }
        case MetricMode::None: break;
    }
}

// The same tallies as record_metrics, each sample counted with its weight w (n).
template <typename T>
void Network<T>::record_weighted_metrics(const T* p, const T* y, const T* w, index_t n, index_t ycols,
                                         BatchStats& stats) const {
    const index_t cols = output_dim();
    for (index_t r = 0; r < n; ++r) stats.weight_sum += double(w[r]);
    if (ycols == cols) {
        for (index_t r = 0; r < n; ++r) {
            double sq = 0.0, ab = 0.0;
            for (index_t j = 0; j < cols; ++j) {
                const double e = double(p[r * cols + j]) - double(y[r * cols + j]);
                sq += e * e;
                ab += std::fabs(e);
            }
            stats.weighted_squared_error += double(w[r]) * sq;
            stats.weighted_absolute_error += double(w[r]) * ab;
            stats.weighted_elements += double(w[r]) * double(cols);
        }
    }
    const index_t k = stats.classes;
    switch (metric_mode_) {
        case MetricMode::ArgmaxOneHot:
            for (index_t r = 0; r < n; ++r)
                stats.weighted_confusion[argmax_row(y + r * cols, cols) * k + argmax_row(p + r * cols, cols)] +=
                    double(w[r]);
            break;
        case MetricMode::ArgmaxSparse:
            for (index_t r = 0; r < n; ++r)
                stats.weighted_confusion[static_cast<index_t>(y[r]) * k + argmax_row(p + r * cols, cols)] +=
                    double(w[r]);
            break;
        case MetricMode::Threshold: {
            const T cut = loss_.from_logits ? T(0) : T(0.5);
            for (index_t i = 0; i < n * cols; ++i)
                stats.weighted_confusion[(y[i] >= T(0.5) ? 1 : 0) * 2 + (p[i] >= cut ? 1 : 0)] += double(w[i / cols]);
            break;
        }
        case MetricMode::None: break;
    }
}

template <typename T>
NormAffine<T> Network<T>::norm_affine(const NormParams& p) const {
    const T* P = params_.data();
    return NormAffine<T>{p.gamma_offset >= 0 ? P + p.gamma_offset : nullptr,
                         p.beta_offset >= 0 ? P + p.beta_offset : nullptr};
}

template <typename T>
bool Network<T>::folds_batch_norm(std::size_t l) const {
    return layers_[l].kind == LayerKind::Dense && layers_[l].activation == Activation::Linear &&
           l + 1 < layers_.size() && layers_[l + 1].kind == LayerKind::BatchNormalization;
}

template <typename T>
std::vector<index_t> Network<T>::folded_batch_norms() const {
    std::vector<index_t> out;
    for (std::size_t l = 0; l < layers_.size(); ++l)
        if (folds_batch_norm(l)) out.push_back(static_cast<index_t>(l + 1));
    return out;
}

template <typename T>
void Network<T>::dense_batch_norm_inference(std::size_t l, const T* in, index_t n) {
    const DenseParams& d = dense_[dense_index_[l]];
    const NormParams& p = norm_[static_cast<std::size_t>(norm_index_[l + 1])];
    const T* P = params_.data();
    const T* b = d.bias_offset >= 0 ? P + d.bias_offset : nullptr;
    const NormAffine<T> affine = norm_affine(p);
    double* stats = norm_stats_[l + 1].data();
    double *mean = stats, *inv_std = stats + 2 * d.units;
    moving_moments(mean, inv_std, P + p.mean_offset, P + p.var_offset, d.units, layers_[l + 1].epsilon);
    norm_batch_stats_[l + 1] = false;
    dense_batch_norm_forward(z_[l].data(), a_[l + 1].data(), in, P + d.kernel_offset, b, n, d.in, d.units, mean,
                             inv_std, affine, bf16_products_);
    out_[l] = z_[l].data();
    in_[l + 1] = out_[l];
    out_[l + 1] = a_[l + 1].data();
}

template <typename T>
void Network<T>::normalization_forward(std::size_t l, const T* in, index_t n, bool training) {
    const LayerSpec& s = layers_[l];
    const NormParams& p = norm_[static_cast<std::size_t>(norm_index_[l])];
    const index_t f = p.features;
    T* P = params_.data();
    const NormAffine<T> affine = norm_affine(p);
    double* stats = norm_stats_[l].data();
    if (s.kind == LayerKind::LayerNormalization) {
        layer_norm_forward(a_[l].data(), stats, stats + capacity_, in, affine, n, f, s.epsilon);
        norm_batch_stats_[l] = true;
        return;
    }
    double *mean = stats, *var = stats + f, *inv_std = stats + 2 * f;
    // A frozen layer normalizes as at inference (Keras); a zero-row step has no statistics and
    // leaves the moving ones alone.
    const bool batch = training && p.trainable && n > 0;
    if (batch) {
        batch_moments(mean, var, inv_std, in, n, f, s.epsilon);
    } else {
        moving_moments(mean, inv_std, P + p.mean_offset, P + p.var_offset, f, s.epsilon);
    }
    norm_batch_stats_[l] = batch;
    batch_norm_forward(a_[l].data(), in, mean, inv_std, affine, n, f);
}

template <typename T>
void Network<T>::update_moving_statistics() {
    for (const NormParams& p : norm_) {
        const auto l = static_cast<std::size_t>(p.layer);
        if (layers_[l].kind != LayerKind::BatchNormalization || !norm_batch_stats_[l]) continue;
        const double* stats = norm_stats_[l].data();
        update_moving_moments(params_.data() + p.mean_offset, params_.data() + p.var_offset, stats,
                              stats + p.features, p.features, layers_[l].momentum);
    }
}

// dx (n, f) or null, g (n, f) the gradient at the layer's output; dgamma, dbeta into grads_.
template <typename T>
void Network<T>::normalization_backward(std::size_t l, T* dx, const T* g, index_t n) {
    const NormParams& p = norm_[static_cast<std::size_t>(norm_index_[l])];
    const index_t f = p.features;
    T* dgamma = p.gamma_offset >= 0 ? grads_.data() + p.gamma_offset : nullptr;
    T* dbeta = p.beta_offset >= 0 ? grads_.data() + p.beta_offset : nullptr;
    const T* gamma = p.gamma_offset >= 0 ? params_.data() + p.gamma_offset : nullptr;
    const double* stats = norm_stats_[l].data();
    if (layers_[l].kind == LayerKind::LayerNormalization)
        layer_norm_backward(dx, dgamma, dbeta, g, in_[l], stats, stats + capacity_, gamma, n, f);
    else
        batch_norm_backward(dx, dgamma, dbeta, g, in_[l], stats, stats + 2 * f, gamma, n, f, norm_batch_stats_[l]);
}

template <typename T>
void Network<T>::collect_trainable_tensors() {
    trainable_tensors_.clear();
    for (const DenseParams& d : dense_) {
        if (!d.trainable) continue;
        trainable_tensors_.push_back({d.kernel_offset, d.in * d.units});
        if (d.bias_offset >= 0) trainable_tensors_.push_back({d.bias_offset, d.units});
    }
    for (const NormParams& p : norm_) {
        if (!p.trainable) continue;
        if (p.gamma_offset >= 0) trainable_tensors_.push_back({p.gamma_offset, p.features});
        if (p.beta_offset >= 0) trainable_tensors_.push_back({p.beta_offset, p.features});
    }
}

template <typename T>
void Network<T>::set_trainable(index_t dense_index, bool trainable) {
    if (dense_index < 0 || dense_index >= static_cast<index_t>(dense_.size()))
        throw std::invalid_argument("dense layer index out of range, received " + std::to_string(dense_index));
    dense_[static_cast<std::size_t>(dense_index)].trainable = trainable;
    collect_trainable_tensors();
}

template <typename T>
void Network<T>::set_norm_trainable(index_t norm_index, bool trainable) {
    if (norm_index < 0 || norm_index >= static_cast<index_t>(norm_.size()))
        throw std::invalid_argument("normalization layer index out of range, received " + std::to_string(norm_index));
    norm_[static_cast<std::size_t>(norm_index)].trainable = trainable;
    collect_trainable_tensors();
}

template <typename T>
bool Network<T>::fuses(index_t n) const {
    // Normalization parameters are stored, not fused: their gradient is a few columns.
    return n > 0 && n <= kFusedBatch && !hook_ && !optimizer_.clips() && !track_gradient_norms && norm_.empty();
}

template <typename T>
void Network<T>::open_packed_kernels() {
    forget_packed_kernels();  // the block may have been written since the last call
    packed_kernels_open_ = true;
}

template <typename T>
void Network<T>::close_packed_kernels() {
    forget_packed_kernels();
    packed_kernels_open_ = false;
}

template <typename T>
void Network<T>::forget_packed_kernels() {
    for (Bf16PackedB& p : packed_kernels_) p.valid = false;
}

template <typename T>
Bf16PackedB* Network<T>::packed_kernel(index_t dense_index, bool training, index_t n) {
    // In training only where the fused update keeps them current; any other update forgets them.
    if (!bf16_products_ || !packed_kernels_open_ || (training && !fuses(n))) return nullptr;
    if (packed_kernels_.size() != dense_.size()) packed_kernels_.resize(dense_.size());
    return &packed_kernels_[static_cast<std::size_t>(dense_index)];
}

template <typename T>
void Network<T>::set_bf16_products(bool on) {
    if (on && !std::is_same_v<T, float>)
        throw std::invalid_argument("bfloat16 products (mixed_bfloat16) need a float32 network");
    forget_packed_kernels();
    bf16_products_ = on;
    storing_sink_.bf16 = on;
    fused_sink_.bf16 = on;
}

template <typename T>
double Network<T>::train_step(const T* y, index_t n, index_t ycols, BatchStats& stats, const T* w) {
    const double loss = loss_and_output_gradient(y, n, ycols, /*output_gradient=*/true, &stats, w);
    if (fuses(n)) {
        optimizer_.begin_step();
        fused_sink_.begin_step(static_cast<index_t>(dense_.size()));
        backward(n, fused_sink_);
        optimizer_.end_step();
        update_moving_statistics();
        return loss;
    }
    backward(n, storing_sink_);
    fused_sink_.forget();
    if (hook_) {
        try {
            hook_->on_gradient(grads_.data(), param_count(), StepInfo{optimizer_.iterations, n});
        } catch (...) {
            --steps;  // the step did not happen: a retry draws the same dropout masks
            throw;
        }
    }
    if (track_gradient_norms) record_gradient_norms(stats);
    apply_gradients();
    forget_packed_kernels();
    update_moving_statistics();
    return loss;
}

template <typename T>
double Network<T>::loss_and_gradient(const T* y, index_t n, index_t ycols, const T* w) {
    const double loss = loss_and_output_gradient(y, n, ycols, /*output_gradient=*/true, nullptr, w);
    backward(n, storing_sink_);
    fused_sink_.forget();
    return loss;
}

template <typename T>
double Network<T>::loss_and_output_gradient(const T* y, index_t n, index_t ycols, bool output_gradient,
                                            BatchStats* stats, const T* w) {
    const std::size_t L = layers_.size();
    const index_t cols = output_dim();
    const T* out = out_[L - 1];
    // A zero-row step (distributed training) has no data term: its gradient is the penalty's.
    const T scale = n > 0 ? static_cast<T>(1.0 / static_cast<double>(n)) : T(0);
    const bool sparse = loss_is_sparse(loss_.kind);
    T* g = output_gradient ? grad_a_.data() : nullptr;  // at the output, or at its pre-activation
    double data_loss = 0.0;
    switch (output_gradient_) {
        case OutputGradient::SoftmaxOnPreactivation:
            data_loss = softmax_cross_entropy(g, last_preactivation(), y, n, cols, sparse, scale, w);
            break;
        case OutputGradient::SigmoidOnPreactivation:
            data_loss = sigmoid_binary_cross_entropy(g, last_preactivation(), y, n, cols, scale, w);
            break;
        case OutputGradient::SoftmaxOnOutput:
            data_loss = softmax_cross_entropy(g, out, y, n, cols, sparse, scale, w);
            break;
        case OutputGradient::SigmoidOnOutput:
            data_loss = sigmoid_binary_cross_entropy(g, out, y, n, cols, scale, w);
            break;
        case OutputGradient::Generic:
            data_loss = loss_sum(loss_.kind, out, y, n, cols, loss_.delta, w);
            if (g) loss_backward(loss_.kind, g, out, y, n, cols, loss_.delta, scale, w);
            break;
    }
    const double penalty = regularization_penalty();
    if (stats != nullptr) {
        stats->loss_sum += data_loss + penalty * static_cast<double>(n);
        stats->samples += n;
        record_metrics(out, y, n, ycols, *stats);
        if (w != nullptr) record_weighted_metrics(out, y, w, n, ycols, *stats);
    }
    return (n > 0 ? data_loss / static_cast<double>(n) : 0.0) + penalty;
}

template <typename T>
const T* Network<T>::last_preactivation() const {
    const std::size_t L = layers_.size();
    return layers_[L - 1].kind == LayerKind::Dense ? z_[L - 1].data() : in_[L - 1];
}

// g: the output gradient loss_and_output_gradient left in grad_a_; per layer, last first.
template <typename T>
void Network<T>::backward(index_t n, GradientSink<T>& sink) {
    const std::size_t L = layers_.size();
    const bool g_is_preactivation = output_gradient_ == OutputGradient::SoftmaxOnPreactivation ||
                                    output_gradient_ == OutputGradient::SigmoidOnPreactivation;
    T* g = grad_a_.data();
    T* spare = grad_b_.data();
    for (std::size_t l = L; l-- > 0;) {
        const LayerSpec& s = layers_[l];
        if (is_normalization(s.kind)) {
            const bool below = needs_input_grad_[l];
            normalization_backward(l, below ? spare : nullptr, g, n);
            if (!below) break;
            std::swap(g, spare);
            continue;
        }
        if (s.kind != LayerKind::Dense) {
            if (!needs_input_grad_[l]) break;  // no parameter below: nothing left to compute
            const index_t count = n * widths_[l];
            AugmentKind augment;
            if (s.kind == LayerKind::Activation) {
                if (!(l == L - 1 && g_is_preactivation))
                    activation_backward(s.activation, g, g, in_[l], out_[l], n, widths_[l]);
            } else if (last_training_ && s.kind == LayerKind::Dropout && s.rate > 0.0) {
                const T* mask = mask_[l].data();
                for (index_t i = 0; i < count; ++i) g[i] *= mask[i];
            } else if (last_training_ && augment_kind(s.kind, &augment)) {
                augment_backward(augment, s.augment, spare, g, transforms_[l].data(), n);
                std::swap(g, spare);
            }
            continue;  // noise adds a constant: its gradient passes through unchanged
        }
        const DenseParams& d = dense_[dense_index_[l]];
        if (!(l == L - 1 && g_is_preactivation))
            activation_backward(s.activation, g, g, z_[l].data(), out_[l], n, d.units);
        // dx first: it needs this step's weights, which a fused sink changes.
        if (needs_input_grad_[l])
            dense_backward(spare, static_cast<T*>(nullptr), static_cast<T*>(nullptr), g, in_[l],
                           params_.data() + d.kernel_offset, n, d.in, d.units, bf16_products_);
        // The forward's packed kernel goes along, so a fused update repacks the rows it changes.
        sink.dense(DenseGradient<T>{d, g, in_[l], n, s.l1, s.l2, packed_kernel(dense_index_[l], last_training_, n)});
        if (!needs_input_grad_[l]) break;
        std::swap(g, spare);
    }
}

template class Network<float>;
template class Network<double>;

}  // namespace lamina
