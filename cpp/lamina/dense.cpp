#include "lamina/dense.h"

#include <algorithm>

#include "lamina/gemm.h"

namespace lamina {

template <typename T>
void dense_forward(T* z, const T* x, const T* W, const T* b, index_t batch, index_t in,
                   index_t units) {
    if (b != nullptr) {
        // z starts as the broadcast bias, then gemm accumulates x W onto it (beta = 1).
        for (index_t r = 0; r < batch; ++r) std::copy(b, b + units, z + r * units);
        gemm<T>(false, false, batch, units, in, T(1), x, in, W, units, T(1), z, units);
    } else {
        gemm<T>(false, false, batch, units, in, T(1), x, in, W, units, T(0), z, units);
    }
}

template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dz, const T* x, const T* W, index_t batch,
                    index_t in, index_t units) {
    if (dW != nullptr) gemm<T>(true, false, in, units, batch, T(1), x, in, dz, units, T(0), dW, units);
    if (db != nullptr) {
        // Rows in order: the sum is the same for any thread count.
        std::fill(db, db + units, T(0));
        for (index_t r = 0; r < batch; ++r) {
            const T* dzr = dz + r * units;
            for (index_t j = 0; j < units; ++j) db[j] += dzr[j];
        }
    }
    if (dx != nullptr) gemm<T>(false, true, batch, in, units, T(1), dz, units, W, units, T(0), dx, in);
}

template void dense_forward<float>(float*, const float*, const float*, const float*, index_t,
                                   index_t, index_t);
template void dense_forward<double>(double*, const double*, const double*, const double*, index_t,
                                    index_t, index_t);
template void dense_backward<float>(float*, float*, float*, const float*, const float*,
                                    const float*, index_t, index_t, index_t);
template void dense_backward<double>(double*, double*, double*, const double*, const double*,
                                     const double*, index_t, index_t, index_t);

}  // namespace lamina
