// Optimizers over the network's flat parameter block. Each rule is Keras's (the Python
// docstrings write them out); the step counter advances once per step, not once per tensor.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lamina/aligned_vector.h"
#include "lamina/matrix.h"

namespace lamina {

enum class OptimizerKind { SGD, RMSprop, Adagrad, Adam, AdamW };


struct OptimizerConfig {
    OptimizerKind kind = OptimizerKind::SGD;
    double learning_rate = 0.01;
    double momentum = 0.0;  // SGD, RMSprop
    bool nesterov = false;  // SGD
    double rho = 0.9;       // RMSprop
    bool centered = false;  // RMSprop
    double beta_1 = 0.9, beta_2 = 0.999;  // Adam, AdamW
    bool amsgrad = false;                 // Adam, AdamW
    double epsilon = 1e-7;
    double initial_accumulator_value = 0.1;  // Adagrad
    double weight_decay = 0.0;               // AdamW (decoupled)
    // Gradient clipping, Keras's semantics; 0 means off. At most one is set.
    double clipnorm = 0.0;         // each tensor's gradient to this L2 norm
    double clipvalue = 0.0;        // each element to [-clipvalue, clipvalue]
    double global_clipnorm = 0.0;  // all gradients together to this L2 norm
};

// A contiguous parameter tensor inside the flat block (clipnorm works per tensor, as in Keras).
struct TensorSpan {
    index_t offset;
    index_t size;
};

template <typename T>
class Optimizer {
public:
    // Sets the rule and resets state: slots sized to n_params, iterations to 0.
    void configure(const OptimizerConfig& config, index_t n_params);

    // params, grads: (n_params). Clips grads in place (when asked), then updates params, over
    // the given tensors only (a frozen layer's are left out; its state does not move either).
    void step(T* params, T* grads, const std::vector<TensorSpan>& tensors);

    // The same step in pieces, for callers that produce the gradient piece by piece (the fused
    // small-batch path): begin_step() fixes this step's coefficients, update_span() applies the
    // rule to w[0:n] = params[offset : offset + n] with gradient g[0:n] (any order, any thread),
    // end_step() advances the counter. Clipping needs the whole gradient, so it is not available
    // this way (see clips()).
    void begin_step();
    void update_span(T* w, const T* g, index_t offset, index_t n);  // AVX2 clone where supported
    void end_step() { ++iterations; }

    // What a step with an all-zero gradient does to a span, so the fused small-batch path can
    // skip the rows whose inputs are all zero (Fashion-MNIST images are about half zeros):
    // Unchanged (plain SGD, Adagrad), DecayFirstSlot (plain RMSprop: v <- rho v, w stays), or
    // Full (anything else: momentum, Adam, centering move the weights even without a gradient).
    // decay_span gives bit-for-bit what update_span gives for g = 0.
    enum class ZeroGradient { Unchanged, DecayFirstSlot, Full };
    // The batch-1 fused path's fast lane, where a hand-written kernel exists (float32 plain
    // RMSprop on AVX2/FMA): update_row updates one kernel row w (units, at params offset) with
    // g = x * dz formed in registers and never stored -- the same bits as forming g first.
    bool has_row_update() const;
    void update_row(T* w, index_t offset, T x, const T* dz, index_t units);
    ZeroGradient zero_gradient_effect() const;
    void decay_span(index_t offset, index_t n);
    bool clips() const { return config_.clipnorm > 0 || config_.clipvalue > 0 || config_.global_clipnorm > 0; }

    const OptimizerConfig& config() const { return config_; }
    void set_learning_rate(double lr) { config_.learning_rate = lr; }
    std::int64_t iterations = 0;
    // Per-parameter state, each (n_params): SGD {momentum}; RMSprop {velocity, momentum,
    // average_gradient}; Adagrad {accumulator}; Adam/AdamW {m, v, v_hat}. Unused ones are empty.
    std::vector<AlignedVector<T>> slots;

private:
    void clip(T* grads, const std::vector<TensorSpan>& tensors) const;
    OptimizerConfig config_;
    T alpha_ = 0;  // this step's Adam step size (bias correction folded in)
};

}  // namespace lamina
