// Losses as value/gradient pairs. Keras's conventions: each sample's loss is the mean over its
// outputs (MSE, MAE, Huber, binary CE) or the sum over classes (categorical CE); a batch's loss
// is the mean over its samples. With sample weights w (rows), each row's loss and gradient are
// multiplied by its weight and the caller still divides by the number of rows (Keras's
// "sum_over_batch_size"). w null: unweighted (multiplying by an exact 1 instead changes no bit).
//
// Shapes: p (rows, cols) predictions; y (rows, cols) targets, or (rows, 1) integer class labels
// stored as T for the sparse loss.
#pragma once
#include <string>

#include "lamina/matrix.h"

namespace lamina {

enum class Loss {
    MeanSquaredError,
    MeanAbsoluteError,
    Huber,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
};

bool loss_is_sparse(Loss loss);

constexpr double kProbabilityEpsilon = 1e-7;  // Keras's backend epsilon: p is clipped to [eps, 1-eps]

// Sum over rows of each row's (weighted) loss (double accumulation, rows in order).
template <typename T>
double loss_sum(Loss loss, const T* p, const T* y, index_t rows, index_t cols, double delta,
                const T* w = nullptr);

// dp (rows, cols) = scale * d(sum of (weighted) row losses)/dp. Where a probability is clipped
// the gradient is zero, as with Keras's clip.
template <typename T>
void loss_backward(Loss loss, T* dp, const T* p, const T* y, index_t rows, index_t cols,
                   double delta, T scale, const T* w = nullptr);

// Fused softmax + categorical cross-entropy on logits z (rows, cols), numerically stable:
// row loss = logsumexp(z) - sum_j y_j z_j (sparse: logsumexp(z) - z_label);
// dz = scale * (softmax(z) * sum(y) - y), never through the softmax Jacobian or log(0).
// dz may be null (value only). Returns the sum of (weighted) row losses.
template <typename T>
double softmax_cross_entropy(T* dz, const T* z, const T* y, index_t rows, index_t cols, bool sparse,
                             T scale, const T* w = nullptr);

// Fused sigmoid + binary cross-entropy on logits z (rows, cols):
// element loss = max(z, 0) - z y + log1p(e^-|z|), row loss = mean over cols;
// dz = scale * (sigmoid(z) - y) / cols. dz may be null. Returns the sum of (weighted) row losses.
template <typename T>
double sigmoid_binary_cross_entropy(T* dz, const T* z, const T* y, index_t rows, index_t cols,
                                    T scale, const T* w = nullptr);

// Throws std::invalid_argument unless every weight in w (rows) is finite and non-negative.
template <typename T>
void check_sample_weights(const T* w, index_t rows);

}  // namespace lamina
