// Hand-vectorized optimizer rules, compiled only into the AVX2/FMA translation unit
// (optimizers_avx2.cpp) and called after a run-time CPU check.
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// w, v, g: (n). v <- rho v + (1 - rho) g^2; w <- w - lr g / sqrt(v + eps), with the reciprocal
// square root from vrsqrtps plus one Newton step.
void rmsprop_update_f32_avx2(float* w, float* v, const float* g, index_t n, float lr, float rho,
                             float eps);

// One kernel row of the fused small-batch update: the same rule with g (units) =
// sum_r a[r] * dz_rows[r][0 : units] formed eight lanes at a time in registers, never stored.
void rmsprop_row_update_f32_avx2(float* w, float* v, const float* a, const float* const* dz_rows,
                                 index_t samples, index_t units, float lr, float rho, float eps);

}  // namespace lamina
