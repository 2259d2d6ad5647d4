// The minibatch loop and the other whole-dataset passes. Python calls these with the GIL
// released; they allocate nothing once the network's workspaces have reached the batch size.
//
// Shapes: x (n_rows, input_dim); y (n_rows, ycols) with ycols = output_dim, or 1 for integer
// labels (sparse loss); w (n_rows) sample weights or null (unweighted); order: a permutation of
// [0, n_rows) or null for the identity. Weights are gathered with their rows.
#pragma once
#include <cstdint>
#include <vector>

#include "lamina/network.h"

namespace lamina {

// Trains n_batches minibatches, the first starting at position `first` of order; each batch
// gathers its rows, runs forward, loss, backward and one optimizer update. The last batch of the
// data may be short: it is trained, not dropped. A batch that starts past the end of the data
// stops the loop, or with empty_steps is taken as a zero-row step: no loss, a gradient of the
// regularization alone, the hook and the update all run (distributed training, where every
// rank must join every step's reduction although its shard ran out).
template <typename T>
void train_batches(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
                   const std::int64_t* order, index_t n_rows, index_t first, index_t batch_size,
                   index_t n_batches, const T* w = nullptr, bool empty_steps = false);

// train_batches for a caller that has already checked y and w with net.check_targets and
// check_sample_weights (train_batch_list checks every delivered batch before the first step).
template <typename T>
void train_checked_batches(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
                           const std::int64_t* order, index_t n_rows, index_t first, index_t batch_size,
                           index_t n_batches, const T* w = nullptr, bool empty_steps = false);

// Loss and metrics over all rows, in batches, without dropout or updates.
template <typename T>
void evaluate(Network<T>& net, BatchStats& stats, const T* x, const T* y, index_t ycols,
              index_t n_rows, index_t batch_size, const T* w = nullptr);

// out (n_rows, output_dim) = the network's output for x. With check_finite, each batch of x is
// checked for NaN and infinity just before it is used (it is then still in cache for the
// forward pass, where a separate check of all of x first would read it from memory twice);
// returns false at the first batch that has one, leaving out incomplete.
template <typename T>
bool predict(Network<T>& net, T* out, const T* x, index_t n_rows, index_t batch_size,
             bool check_finite = false);

// Full-batch loss (mean + penalty) with gradients in net.grads(). Dropout, noise and
// augmentation are off, or with training on, drawn at step net.steps (which does not advance):
// every call then draws the same ones.
template <typename T>
double loss_and_gradient(Network<T>& net, const T* x, const T* y, index_t ycols, index_t n_rows,
                         const T* w = nullptr, bool training = false);

// out[i] = (J(theta + eps e_k) - J(theta - eps e_k)) / (2 eps) for k = indices[i]: the two-sided
// difference the course uses for gradient checking. Parameters are restored exactly; training
// as for loss_and_gradient.
template <typename T>
void numerical_gradient(Network<T>& net, T* out, const T* x, const T* y, index_t ycols,
                        index_t n_rows, double epsilon, const std::int64_t* indices, index_t count,
                        const T* w = nullptr, bool training = false);

// out (n_rows, output_dim) = one forward pass over all rows as one batch; with training, the
// layers act as in fit at step net.steps, which does not advance (Keras's model(x, training=True)).
template <typename T>
void forward_batch(Network<T>& net, T* out, const T* x, index_t n_rows, bool training);

// A Fisher-Yates permutation of [0, n) drawn from (seed, epoch): the same on every run.
std::vector<std::int64_t> shuffled_order(index_t n, std::uint64_t seed, std::uint64_t epoch);

}  // namespace lamina
