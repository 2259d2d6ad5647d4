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

// A non-owning view of a row-major matrix.
template <typename T>
struct MatrixView {
    T* data;
    index_t rows, cols, ld;
    T& operator()(index_t i, index_t j) const { return data[i * ld + j]; }
    T* row(index_t i) const { return data + i * ld; }
};

}  // namespace lamina
