// A stack of layers over one parameter block and one gradient block (same layout), plus the
// optimizer whose state mirrors that layout, and activation workspaces sized once per batch size.
//
// Parameter layout: for each Dense layer in order, its kernel (in, units) then its bias (units).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "lamina/activations.h"
#include "lamina/aligned_vector.h"
#include "lamina/augment.h"
#include "lamina/gemm_bf16.h"
#include "lamina/gradient_hook.h"
#include "lamina/gradient_sink.h"
#include "lamina/initializers.h"
#include "lamina/losses.h"
#include "lamina/normalization.h"
#include "lamina/optimizers.h"

namespace lamina {

// Dense and the normalization layers hold parameters; the others are parameter-free. The Random*
// layers and GaussianNoise act only in training (forward and backward), and are the identity at
// inference. BatchNormalization uses batch statistics in training, moving ones at inference.
enum class LayerKind { Dense, Dropout, Activation, RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
                       GaussianNoise, BatchNormalization, LayerNormalization };

inline bool is_normalization(LayerKind kind) {
    return kind == LayerKind::BatchNormalization || kind == LayerKind::LayerNormalization;
}

// A normalization layer's place in the parameter block (-1: absent). gamma and beta are trained;
// BatchNormalization's moving mean and variance live in the block too (so saving, loading and
// broadcasting the block carry them) but no optimizer touches them: forward updates them.
struct NormParams {
    index_t layer, features;
    index_t gamma_offset = -1, beta_offset = -1, mean_offset = -1, var_offset = -1;
    bool trainable = true;  // false: gamma and beta frozen, and BatchNormalization runs in inference mode
};

// The augmentation a Random* kind draws; false for every other kind.
bool augment_kind(LayerKind kind, AugmentKind* out);

struct LayerSpec {
    LayerKind kind = LayerKind::Dense;
    index_t units = 0;  // Dense
    Activation activation = Activation::Linear;  // Dense, Activation
    bool use_bias = true;
    Initializer kernel_init{InitKind::GlorotUniform, 0.0};
    Initializer bias_init{InitKind::Zeros, 0.0};
    double l1 = 0.0, l2 = 0.0;  // kernel regularization: l1 * sum|W| + l2 * sum W^2
    double rate = 0.0;          // Dropout: fraction of inputs zeroed at training time
    AugmentSpec augment;        // Random*: image shape and factors
    double stddev = 0.0;        // GaussianNoise
    double epsilon = 1e-3;      // normalization: added to the variance
    double momentum = 0.99;     // BatchNormalization: moving = moving * momentum + batch * (1 - momentum)
    bool center = true, scale = true;  // normalization: with beta, with gamma
};

struct LossConfig {
    Loss kind = Loss::MeanSquaredError;
    bool from_logits = false;  // cross-entropies: the output is logits, not probabilities
    double delta = 1.0;        // Huber
};

// How a prediction is scored for classification metrics.
enum class MetricMode {
    None,
    ArgmaxOneHot,   // class = argmax of the row; truth = argmax of the one-hot row
    ArgmaxSparse,   // class = argmax of the row; truth = the integer label
    Threshold,      // every output is a yes/no at 0.5 (0 for logits); truth = y >= 0.5
};

// Running totals over batches; Python turns them into loss and metrics.
struct BatchStats {
    double loss_sum = 0.0;  // sum over samples of (sample loss + regularization penalty)
    index_t samples = 0;
    index_t classes = 0;                  // confusion is (classes, classes), row = true class
    std::vector<std::int64_t> confusion;
    double squared_error = 0.0, absolute_error = 0.0;  // over all outputs (dense targets only)
    index_t elements = 0;
    index_t batches = 0;
    std::vector<double> gradient_norms;  // per Dense layer: sum over batches of ||dW||_2 (opt-in)
    // Keras's weighted_metrics, tallied only for batches given sample weights: each sample (or,
    // for Threshold, each output) counts with its weight.
    double weight_sum = 0.0;                   // sum of the weights of the samples seen
    std::vector<double> weighted_confusion;    // (classes, classes), like confusion
    double weighted_squared_error = 0.0, weighted_absolute_error = 0.0;  // sum_i w_i sum_j e_ij
    double weighted_elements = 0.0;            // sum_i w_i * output_dim
    void reset(index_t n_classes);
    // Starts over (reset) only when the confusion matrix has another size than n_classes needs.
    void fit_to(index_t n_classes) {
        if (classes != n_classes) reset(n_classes);
    }
};

template <typename T>
class Network {
public:
    using DenseParams = lamina::DenseParams;

    Network(index_t input_dim, std::vector<LayerSpec> layers, std::uint64_t seed);

    index_t input_dim() const { return input_dim_; }
    index_t output_dim() const { return widths_.back(); }
    index_t param_count() const { return static_cast<index_t>(params_.size()); }
    std::uint64_t seed() const { return seed_; }
    const std::vector<DenseParams>& dense_params() const { return dense_; }
    const std::vector<NormParams>& norm_params() const { return norm_; }
    T* params() { return params_.data(); }
    // The gradient block of the last step (or loss_and_gradient), never stale: after a fused
    // step its kernel parts are formed here, on first read, from the step's kept inputs.
    T* grads() {
        fused_sink_.form_gradients();
        return grads_.data();
    }

    void set_loss(const LossConfig& loss);
    const LossConfig& loss() const { return loss_; }
    void set_metric_mode(MetricMode mode) { metric_mode_ = mode; }
    MetricMode metric_mode() const { return metric_mode_; }
    index_t metric_classes() const;
    // Throws std::invalid_argument unless y (rows, ycols) is what the loss and the metric mode
    // read: ycols = 1 integer labels in [0, output_dim) (sparse loss, ArgmaxSparse) or
    // ycols = output_dim. Every loop that indexes with a target value relies on it.
    void check_targets(const T* y, index_t rows, index_t ycols) const;
    Optimizer<T>& optimizer() { return optimizer_; }

    // Training steps taken so far; dropout masks and augmentations are drawn from it, so a
    // resumed model draws the same ones as an uninterrupted one.
    std::uint64_t steps = 0;
    // Where this batch's first row sits in a larger batch: dropout draws the masks of rows
    // [offset, offset + n) of it. Rank r of a distributed run sets r * batch_size, so its masks
    // are the ones a single process training on the ranks' batches side by side would draw.
    index_t dropout_row_offset = 0;

    // Grows the workspaces to hold a batch of n rows (allocates only when n is a new maximum).
    void reserve(index_t n);
    // (capacity, input_dim) and (capacity, output_dim) staging buffers for a gathered batch.
    T* batch_x() { return batch_x_.data(); }
    T* batch_y() { return batch_y_.data(); }
    T* batch_w() { return batch_w_.data(); }  // (capacity) sample weights

    // Runs the layers on x (n, input_dim); returns the output (n, output_dim), valid until the
    // next forward. Dropout, noise and augmentation are active only when training.
    // outputs_only (prediction): elementwise activations overwrite their pre-activations in
    // place, so nothing but the output may be used afterwards (no loss from logits, no backward).
    const T* forward(const T* x, index_t n, bool training, bool outputs_only = false);

    // One training step, in phases, after forward(training=true):
    //   loss_and_output_gradient -> backward(into a sink) -> gradient hook -> clip -> update.
    // Batches of at most kFusedBatch rows that nobody observes (no hook, clipping, gradient
    // norms) go to the FusedUpdateSink, which applies the update as the
    // gradient is formed; every other step stores the whole block first. Same bits either way.
    // w (n): sample weights, or null. Returns the loss (weighted sum / n + penalty).
    double train_step(const T* y, index_t n, index_t ycols, BatchStats& stats, const T* w = nullptr);
    static constexpr index_t kFusedBatch = FusedUpdateSink<T>::kMaxRows;

    // Phase 2: the loss of the last forward against y (n, ycols), plus the regularization
    // penalty; with output_gradient, the gradient at the output for backward. Adds to stats
    // when given. w (n): sample weights (checked by the caller), or null. Returns the loss
    // (weighted sum of sample losses / n + penalty: Keras's sum_over_batch_size).
    double loss_and_output_gradient(const T* y, index_t n, index_t ycols, bool output_gradient, BatchStats* stats,
                                    const T* w = nullptr);
    // Phase 3: from the output gradient down through the layers; each Dense layer's parameter
    // gradient goes to the sink.
    void backward(index_t n, GradientSink<T>& sink);
    // Full gradient of the last forward's loss into grads() (no update). Returns the loss.
    double loss_and_gradient(const T* y, index_t n, index_t ycols, const T* w = nullptr);

    // Phase 4: called once per storing step with the whole gradient block (null: none).
    void set_gradient_hook(std::shared_ptr<GradientHook<T>> hook) { hook_ = std::move(hook); }

    // l1 * sum|W| + l2 * sum W^2 over every regularized kernel.
    double regularization_penalty() const;

    // Adds each Dense kernel's gradient L2 norm to stats.gradient_norms (for vanishing /
    // exploding gradient diagnostics; costs one pass over the gradients).
    void record_gradient_norms(BatchStats& stats) const;
    bool track_gradient_norms = false;
    // Threads for this network's calls (0: the process-wide count); see ThreadScope.
    int num_threads = 0;

    // One optimizer update of params() from grads(), over the trainable layers' tensors only.
    void apply_gradients() { optimizer_.step(params_.data(), grads_.data(), trainable_tensors_); }

    // Keras's layer.trainable = False for Dense layer `dense_index` (in dense_params() order):
    // no optimizer touches its kernel or bias (no step, no momentum or Adam drift, no weight
    // decay); gradients still flow through it to the layers below. Throws out of range.
    void set_trainable(index_t dense_index, bool trainable);
    // The same for normalization layer `norm_index` (in norm_params() order); a frozen
    // BatchNormalization also normalizes with its moving statistics, as in Keras.
    void set_norm_trainable(index_t norm_index, bool trainable);

    // dtype="mixed_bfloat16" (float32 networks only; throws std::invalid_argument otherwise):
    // every Dense product (forward x W, dW = x^T dz, dx = dz W^T) goes through gemm_bf16, with
    // bfloat16 operands and float32 accumulation. Weights, biases, optimizer state, losses and
    // the other layers stay float32. Small-batch steps are fused with the kernel gradient over
    // bfloat16-rounded operands (gradient_sink.h, Bf16Operands).
    void set_bf16_products(bool on);
    bool bf16_products() const { return bf16_products_; }

    // While a core call runs (PackedKernelsScope: a fit's batches, an evaluate, a predict) nothing
    // but the call itself writes the parameter block, so with bfloat16 products each Dense kernel
    // stays packed for the forward between products: predict packs W once per call, not per
    // batch, and a fused small-batch step repacks only the kernel rows its update changed. Any
    // other update forgets them. Outside a call they are never used (Python may write the block).
    void open_packed_kernels();
    void close_packed_kernels();

    // Serializes use of one network from several Python threads.
    std::mutex& mutex() { return mutex_; }
    // The BatchNormalization layers that inference folds into the Dense before them.
    std::vector<index_t> folded_batch_norms() const;

private:
    enum class OutputGradient { Generic, SoftmaxOnPreactivation, SigmoidOnPreactivation,
                                SoftmaxOnOutput, SigmoidOnOutput };

    void record_metrics(const T* p, const T* y, index_t n, index_t ycols, BatchStats& stats) const;
    void record_weighted_metrics(const T* p, const T* y, const T* w, index_t n, index_t ycols,
                                 BatchStats& stats) const;
    bool fuses(index_t n) const;
    // The packed kernel the bfloat16 forward of Dense dense_index may take or fill, or null.
    Bf16PackedB* packed_kernel(index_t dense_index, bool training, index_t n);
    void forget_packed_kernels();
    void collect_trainable_tensors();
    // Layer l (a normalization layer): forward into a_[l], backward from g into spare and grads_.
    void normalization_forward(std::size_t l, const T* in, index_t n, bool training);
    void normalization_backward(std::size_t l, T* dx, const T* g, index_t n);
    // A normalization layer's gamma and beta in the parameter block (null where absent).
    NormAffine<T> norm_affine(const NormParams& p) const;
    // Outside training, layer l is a linear Dense followed by a BatchNormalization, which then
    // runs in the Dense's GEMM epilogue (dense_batch_norm_forward) instead of as its own pass.
    bool folds_batch_norm(std::size_t l) const;
    // Forward through the Dense l and that BatchNormalization l + 1 (inference statistics).
    void dense_batch_norm_inference(std::size_t l, const T* in, index_t n);
    // After a training step's update: each BatchNormalization that normalized with its batch's
    // statistics moves its moving ones toward them (a step the hook refused moves nothing, and a
    // forward outside train_step, such as model(x, training=True), changes no weight).
    void update_moving_statistics();
    // Where the last layer's activation reads its input (for the fused softmax / sigmoid losses).
    const T* last_preactivation() const;

    index_t input_dim_;
    std::vector<LayerSpec> layers_;
    std::vector<index_t> widths_;  // output width of each layer
    std::vector<DenseParams> dense_;
    std::vector<index_t> dense_index_;  // layer -> index in dense_, or -1
    std::vector<NormParams> norm_;
    std::vector<index_t> norm_index_;   // layer -> index in norm_, or -1
    std::vector<TensorSpan> tensors_;
    std::vector<TensorSpan> trainable_tensors_;  // tensors_ of the trainable layers
    std::vector<bool> needs_input_grad_;  // does a Dense layer sit below this layer?
    std::uint64_t seed_;
    AlignedVector<T> params_, grads_;
    LossConfig loss_;
    OutputGradient output_gradient_ = OutputGradient::Generic;
    MetricMode metric_mode_ = MetricMode::None;
    Optimizer<T> optimizer_;
    StoringSink<T> storing_sink_;
    FusedUpdateSink<T> fused_sink_;
    std::shared_ptr<GradientHook<T>> hook_;

    // Workspaces, each sized for capacity_ rows.
    index_t capacity_ = 0;
    std::vector<AlignedVector<T>> z_, a_, mask_;  // per layer: pre-activation, output, dropout mask
    std::vector<std::vector<double>> transforms_;  // per Random* layer: (capacity, kTransformSize)
    // Per normalization layer: the statistics forward used, for backward. BatchNormalization:
    // mean, var, inv_std (3, features); LayerNormalization: mean, inv_std (2, capacity).
    std::vector<std::vector<double>> norm_stats_;
    std::vector<bool> norm_batch_stats_;  // per layer: did forward normalize with batch statistics?
    std::vector<const T*> in_, out_;            // per layer: where its input and output live
    bool last_training_ = false;
    AlignedVector<T> grad_a_, grad_b_;  // ping-pong gradient buffers (capacity, max width)
    AlignedVector<T> batch_x_, batch_y_, batch_w_;
    static constexpr index_t kPenaltyChunk = 4096;      // fixed, so sums never depend on threads
    mutable std::vector<double> penalty_partials_;      // (2 * chunks) of the largest kernel

    bool bf16_products_ = false;
    std::vector<Bf16PackedB> packed_kernels_;  // per Dense layer (open_packed_kernels)
    bool packed_kernels_open_ = false;

    std::mutex mutex_;
};

// open_packed_kernels for one core call; closed however the call ends.
template <typename T>
class PackedKernelsScope {
public:
    explicit PackedKernelsScope(Network<T>& net) : net_(net) { net_.open_packed_kernels(); }
    ~PackedKernelsScope() { net_.close_packed_kernels(); }
    PackedKernelsScope(const PackedKernelsScope&) = delete;
    PackedKernelsScope& operator=(const PackedKernelsScope&) = delete;

private:
    Network<T>& net_;
};

}  // namespace lamina
