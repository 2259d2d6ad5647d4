// Hand-vectorized optimizer rules, compiled only into the AVX2/FMA translation unit
// (optimizers_avx2.cpp) and called after a run-time CPU check.
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// w, v, g: (n). v <- rho v + (1 - rho) g^2; w <- w - lr g / sqrt(v + eps), with the reciprocal
// square root from vrsqrtps plus one Newton step.
void rmsprop_update_f32_avx2(float* w, float* v, const float* g, index_t n, float lr, float rho,
                             float eps);

// One kernel row of the batch-1 fused update: the same rule with g (units) = x * dz formed in
// registers, never stored.
void rmsprop_row_update_f32_avx2(float* w, float* v, float x, const float* dz, index_t units,
                                 float lr, float rho, float eps);

}  // namespace lamina
