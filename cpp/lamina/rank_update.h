// The kernel gradient of a small batch, x^T dz, built a few rows at a time (the fused
// small-batch update in gradient_sink.cpp applies the optimizer to each block while it is in
// cache).
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// g (rows, units) = x[:, 0:rows]^T dz for n samples: x (n, >= rows) with row stride in,
// dz (n, units) contiguous, g contiguous. Each element sums its samples in order
// (g = x0 dz0, then g += x_r dz_r), and samples whose input is zero are skipped -- they add
// nothing, and images are about half zeros. The rank-n kernel of the GEMM kernel table in use
// (gemm_kernels.h, RankNUkr): AVX2/FMA where the CPU has it, else the portable twin.
template <typename T>
void rank_n_rows(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows);

// The reference twin: the same sums by plain loops, one element at a time, samples in order.
// Tests compare the tables' kernels against it.
template <typename T>
void rank_n_rows_naive(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows);

}  // namespace lamina
