// Where backward puts each Dense layer's parameter gradient (phase 3 of a training step:
// forward -> loss_and_output_gradient -> backward(into a sink) -> gradient hook -> clip -> update).
//
//   StoringSink     dW, db into the network's gradient block, for whoever reads it next (the
//                   hook, clipping, gradient norms, the update).
//   FusedUpdateSink (batches of at most kMaxRows rows, nothing observing the gradient) forms
//                   each kernel's gradient a cache-sized block at a time and applies the
//                   optimizer rule to it straight away, so dW never travels through memory. It
//                   keeps the step's small inputs (each layer's x and dz) so the gradient block
//                   can still be formed on demand, with the same bits (form_gradients). A
//                   regularized kernel's gradient needs the weights from before the update,
//                   gone by then, so it is written to the block as it is formed.
#pragma once
#include <vector>

#include "lamina/matrix.h"
#include "lamina/optimizers.h"

namespace lamina {

struct Bf16PackedB;  // gemm_bf16.h

// A Dense layer's place in the parameter block.
struct DenseParams {
    index_t layer, in, units;
    index_t kernel_offset, bias_offset;  // bias_offset = -1 without a bias
    bool trainable = true;               // false: no optimizer touches the kernel or the bias
};

// What backward hands a sink for one Dense layer, after it has computed dx (so the sink may
// change the layer's weights): dz (n, units) the gradient at the pre-activation, x (n, in) the
// layer's input, and the kernel's regularization l1 |W| + l2 W^2.
template <typename T>
struct DenseGradient {
    const DenseParams& d;
    const T* dz;
    const T* x;
    index_t n;
    double l1, l2;
    Bf16PackedB* packed_kernel = nullptr;  // the kernel as the bfloat16 forward keeps it, or null
    bool regularized() const { return l1 != 0.0 || l2 != 0.0; }
};

template <typename T>
class GradientSink {
public:
    virtual ~GradientSink() = default;
    virtual void dense(const DenseGradient<T>& layer) = 0;
};

// mixed_bfloat16's small-batch kernel gradient: the rank-n update x^T dz (n <= 16 rows) over x and
// dz rounded to bfloat16 (bf16.h; widened back to float exactly), so its operands are bfloat16 and
// its sums float32, as in the bfloat16 GEMM (not in the same order: the rank-n kernel's). Holds the
// rounded copies of the layer being handled.
template <typename T>
class Bf16Operands {
public:
    // layer with x and dz replaced by their rounded copies (float networks only).
    DenseGradient<T> rounded(const DenseGradient<T>& layer);

private:
    std::vector<T> x_, dz_;
};

// params, grads: the network's blocks (param_count). Frozen spans are the network's business
// (the update skips them), not the sink's: the gradient is stored whole.
template <typename T>
class StoringSink final : public GradientSink<T> {
public:
    StoringSink(const T* params, T* grads) : params_(params), grads_(grads) {}
    void dense(const DenseGradient<T>& layer) override;
    bool bf16 = false;  // bfloat16 kernel products (Network::set_bf16_products)

private:
    const T* params_;
    T* grads_;
    Bf16Operands<T> bf16_operands_;
};

template <typename T>
class FusedUpdateSink final : public GradientSink<T> {
public:
    static constexpr index_t kMaxRows = 16;  // kFusedBatch: above it the blocked GEMM wins
    FusedUpdateSink(T* params, T* grads, Optimizer<T>* optimizer)
        : params_(params), grads_(grads), optimizer_(optimizer) {}
    // Before a step's backward: n_dense layers will follow, last layer first.
    void begin_step(index_t n_dense);
    void dense(const DenseGradient<T>& layer) override;
    // Writes the last step's kernel gradients into grads (the biases' are there already): the
    // same bits the update used. Cheap (a few rows), and only when someone reads grads().
    void form_gradients();
    // A storing step overwrote the whole block: nothing is left to form.
    void forget() { pending_ = false; }
    bool bf16 = false;  // the kernel gradient over bfloat16-rounded x and dz (Bf16Operands)

private:
    void update_kernel(const DenseGradient<T>& layer);
    struct Saved {
        DenseParams d;
        index_t n;  // 0: nothing to form (the gradient is in the block already)
        double l1, l2;
        std::vector<T> x, dz;
    };
    T* params_;
    T* grads_;
    Optimizer<T>* optimizer_;
    std::vector<Saved> saved_;  // per Dense layer, in backward order
    Bf16Operands<T> bf16_operands_;
    index_t next_ = 0;
    bool pending_ = false;
};

// g (n) += d/dw [l1 |w| + l2 w^2] = l1 sign(w) + 2 l2 w, with sign(0) = 0.
template <typename T>
void add_regularization_gradient(T* g, const T* w, index_t n, double l1, double l2);

}  // namespace lamina
