// The kernel gradient of a small batch, x^T dz, built a few rows at a time (the fused
// small-batch update in network.cpp applies the optimizer to each block while it is in cache).
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// g (rows, units) = x[:, 0:rows]^T dz for n samples: x (n, >= rows) with row stride in,
// dz (n, units) contiguous, g contiguous. Each element sums its samples in order
// (g = x0 dz0, then g += x_r dz_r), and samples whose input is zero are skipped -- they add
// nothing, and images are about half zeros. AVX2/FMA kernel where the CPU has it, else a plain
// loop the compiler vectorizes.
template <typename T>
void rank_n_rows(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows);

// The AVX2/FMA kernels, compiled only into rank_update_avx2.cpp; call after a CPU check.
void rank_n_rows_f32_avx2(float* g, const float* x, index_t in, const float* dz, index_t units,
                          index_t n, index_t rows);
void rank_n_rows_f64_avx2(double* g, const double* x, index_t in, const double* dz, index_t units,
                          index_t n, index_t rows);

}  // namespace lamina
