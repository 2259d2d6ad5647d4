// Activation functions as forward/backward pairs over a (rows, cols) row-major block.
#pragma once
#include "lamina/matrix.h"

namespace lamina {

enum class Activation { Linear, Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softmax, Softplus, Gelu };

constexpr double kLeakyReluSlope = 0.2;  // Keras's leaky_relu default negative_slope
constexpr double kEluAlpha = 1.0;

// z, a: (rows, cols). a = f(z); a may alias z. Softmax is taken along each row.
template <typename T>
void activation_forward(Activation act, T* a, const T* z, index_t rows, index_t cols);

// Softmax works on whole rows; every other activation is elementwise.
bool is_elementwise(Activation act);

// The Dense forward epilogue on one block, on the calling thread (gemm's threads call it on
// their own tiles): c (rows, cols; row stride ldc) += bias (cols) when bias is given; then, when
// out is given, out (rows, cols; row stride ldo) = f(c), elementwise activations only. The
// same per-element arithmetic as activation_forward.
template <typename T>
void bias_activation_rows(Activation act, T* c, index_t ldc, const T* bias, T* out, index_t ldo,
                          index_t rows, index_t cols);

// da, z, a, dz: (rows, cols). dz = da * f'(z), using whichever of z (pre-activation) and
// a (output) is cheaper; softmax uses its row Jacobian: dz = a * (da - sum(da * a)).
// dz may alias da.
template <typename T>
void activation_backward(Activation act, T* dz, const T* da, const T* z, const T* a, index_t rows,
                         index_t cols);

}  // namespace lamina
