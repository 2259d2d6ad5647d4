// BatchNormalization and LayerNormalization as forward/backward pairs over a row-major batch
// x (n, f): BatchNormalization normalizes each feature (column) over the batch, LayerNormalization
// each sample (row) over its features. Both then apply y = gamma * xhat + beta per feature.
//
// Every reduction runs in a fixed order in double: column sums are split among threads by
// column, row sums by row, so the bits never depend on the thread count.
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// gamma, beta (f) may be null: scale 1, offset 0 (Keras's scale=False / center=False).
template <typename T>
struct NormAffine {
    const T* gamma;
    const T* beta;
};

// Batch statistics of x (n, f): mean (f), inv_std (f) = 1 / sqrt(biased var + eps), var (f) the
// biased variance. n must be positive.
template <typename T>
void batch_moments(double* mean, double* var, double* inv_std, const T* x, index_t n, index_t f, double eps);

// moving (f) = moving * momentum + batch * (1 - momentum), for mean and variance.
template <typename T>
void update_moving_moments(T* moving_mean, T* moving_var, const double* mean, const double* var, index_t f,
                           double momentum);

// Inference statistics from the moving ones: mean (f) = moving_mean, inv_std (f) = 1 / sqrt(moving_var + eps).
template <typename T>
void moving_moments(double* mean, double* inv_std, const T* moving_mean, const T* moving_var, index_t f, double eps);

// One block of batch_norm_forward on the calling thread: out (rows, cols; row stride ldo) from
// x (rows, cols; row stride ldx), with mean, inv_std and the affine vectors (cols) already offset
// to the block's first column. The same per-element arithmetic as batch_norm_forward, so the
// Dense epilogue that folds an inference BatchNormalization (dense.h) gives the same bits.
template <typename T>
void batch_norm_rows(T* out, index_t ldo, const T* x, index_t ldx, const double* mean, const double* inv_std,
                     NormAffine<T> affine, index_t rows, index_t cols);

// out (n, f) = gamma * (x - mean[j]) * inv_std[j] + beta, per column j. out may alias x.
template <typename T>
void batch_norm_forward(T* out, const T* x, const double* mean, const double* inv_std, NormAffine<T> affine,
                        index_t n, index_t f);

// dout, x (n, f); mean, inv_std (f) from forward. dgamma, dbeta (f), overwritten, may be null.
// batch_stats: the statistics came from this batch (training), so dx carries their gradient;
// otherwise they were constants (inference). dx (n, f) overwritten; may alias dout.
template <typename T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, index_t n, index_t f, bool batch_stats);

// out, x (n, f); mean, inv_std (n) per row, written. out may alias x.
template <typename T>
void layer_norm_forward(T* out, double* mean, double* inv_std, const T* x, NormAffine<T> affine, index_t n,
                        index_t f, double eps);

// dout, x (n, f); mean, inv_std (n) from forward. dx (n, f) overwritten, may alias dout; dgamma,
// dbeta (f) overwritten, may be null.
template <typename T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, index_t n, index_t f);

}  // namespace lamina
