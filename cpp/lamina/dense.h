// The Dense layer's forward and backward passes (llm.c style: outputs first, then inputs, then
// sizes). Kernel W is (inputs, units), the Keras layout.
#pragma once
#include "lamina/activations.h"
#include "lamina/matrix.h"
#include "lamina/normalization.h"

namespace lamina {

struct Bf16PackedB;  // gemm_bf16.h

// x (batch, in), W (in, units), b (units) or null  ->  z (batch, units) = x W + b, and, when
// a (batch, units) is given, a = act(z) for an elementwise act. Bias and activation are
// applied to each tile of z by the GEMM as soon as it is finished, while it is in cache.
// bf16 (float only; mixed_bfloat16): the products go through gemm_bf16 (bfloat16 operands,
// float32 accumulation); bias, activation and db stay float32. packed_w (with bf16): W as the
// bfloat16 product packs it, taken when valid, else filled (gemm_bf16.h, Bf16PackedB).
template <typename T>
void dense_forward(T* z, const T* x, const T* W, const T* b, index_t batch, index_t in,
                   index_t units, Activation act = Activation::Linear, T* a = nullptr, bool bf16 = false,
                   Bf16PackedB* packed_w = nullptr);

// Inference through a Dense layer (linear) and the BatchNormalization after it, in one pass:
// x (batch, in), W (in, units), b (units) or null -> z (batch, units) = x W + b, and
// out (batch, units) = batch_norm_rows(z) with the inference statistics mean, inv_std (units).
// The normalization runs in the GEMM's tile epilogue, while the tile is in cache; z and out are
// the same bits as dense_forward followed by batch_norm_forward (bf16: the bfloat16 product, as there).
template <typename T>
void dense_batch_norm_forward(T* z, T* out, const T* x, const T* W, const T* b, index_t batch, index_t in,
                              index_t units, const double* mean, const double* inv_std, NormAffine<T> affine,
                              bool bf16 = false);

// dz (batch, units), x (batch, in), W (in, units)  ->
//   dW (in, units) = x^T dz      (overwritten; skipped when null)
//   db (units)     = sum_rows dz (overwritten; skipped when null)
//   dx (batch, in) = dz W^T      (overwritten; skipped when null, e.g. for the first layer)
template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dz, const T* x, const T* W, index_t batch,
                    index_t in, index_t units, bool bf16 = false);

}  // namespace lamina
