// Layout conventions, stated once for the whole core.
//
// Every matrix is row-major: element (i, j) of a matrix with leading dimension ld sits at
// data[i * ld + j], and ld >= cols. A batch of samples is a (batch, features) matrix, one sample
// per row. A Dense kernel is stored the Keras way, (inputs, units), so y = x @ W + b.
// Sizes and leading dimensions are int64_t throughout (numpy's shapes are 64-bit).
#pragma once
#include <cstdint>

namespace lamina {

using index_t = std::int64_t;

}  // namespace lamina
