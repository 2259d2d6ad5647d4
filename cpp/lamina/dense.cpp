#include "lamina/dense.h"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "lamina/gemm.h"
#include "lamina/gemm_bf16.h"

namespace lamina {

namespace {

template <typename T>
struct BiasActivation {
    const T* bias;  // (units) or null
    Activation act;
    T* out;  // (batch, units) or null
    index_t ld_out;
};

template <typename T>
void bias_activation_tile(const void* ctx, T* c, index_t ldc, index_t i0, index_t j0, index_t rows,
                          index_t cols) {
    const auto& e = *static_cast<const BiasActivation<T>*>(ctx);
    bias_activation_rows(e.act, c, ldc, e.bias ? e.bias + j0 : nullptr,
                         e.out ? e.out + i0 * e.ld_out + j0 : nullptr, e.ld_out, rows, cols);
}

template <typename T>
struct BiasBatchNorm {
    const T* bias;  // (units) or null
    const double* mean;
    const double* inv_std;
    NormAffine<T> affine;
    T* out;  // (batch, units)
    index_t ld_out;
};

template <typename T>
void bias_batch_norm_tile(const void* ctx, T* c, index_t ldc, index_t i0, index_t j0, index_t rows, index_t cols) {
    const auto& e = *static_cast<const BiasBatchNorm<T>*>(ctx);
    bias_activation_rows(Activation::Linear, c, ldc, e.bias ? e.bias + j0 : nullptr, static_cast<T*>(nullptr), 0,
                         rows, cols);
    const NormAffine<T> affine{e.affine.gamma ? e.affine.gamma + j0 : nullptr, e.affine.beta ? e.affine.beta + j0 : nullptr};
    batch_norm_rows(e.out + i0 * e.ld_out + j0, e.ld_out, c, ldc, e.mean + j0, e.inv_std + j0, affine, rows, cols);
}

// C (m, n) = op(A) op(B): the model's GEMM, or with bf16 the bfloat16 one (float32 models only).
template <typename T>
void product(bool bf16, bool trans_a, bool trans_b, index_t m, index_t n, index_t k, const T* A, index_t lda,
             const T* B, index_t ldb, T* C, index_t ldc, const TileEpilogue<T>* epilogue = nullptr,
             Bf16PackedB* packed_b = nullptr) {
    if (!bf16) return gemm<T>(trans_a, trans_b, m, n, k, T(1), A, lda, B, ldb, T(0), C, ldc, epilogue);
    if constexpr (std::is_same_v<T, float>)
        gemm_bf16(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, epilogue, packed_b);
    else
        throw std::logic_error("bfloat16 products need a float32 network");
}

}  // namespace

template <typename T>
void dense_batch_norm_forward(T* z, T* out, const T* x, const T* W, const T* b, index_t batch, index_t in,
                              index_t units, const double* mean, const double* inv_std, NormAffine<T> affine,
                              bool bf16) {
    const BiasBatchNorm<T> work{b, mean, inv_std, affine, out, units};
    const TileEpilogue<T> epilogue{&bias_batch_norm_tile<T>, &work};
    product(bf16, false, false, batch, units, in, x, in, W, units, z, units, &epilogue);
}

template <typename T>
void dense_forward(T* z, const T* x, const T* W, const T* b, index_t batch, index_t in,
                   index_t units, Activation act, T* a, bool bf16, Bf16PackedB* packed_w) {
    if (a != nullptr && !is_elementwise(act))
        throw std::invalid_argument("dense_forward applies elementwise activations only");
    const BiasActivation<T> work{b, act, a, units};
    const TileEpilogue<T> epilogue{&bias_activation_tile<T>, &work};
    const bool any = b != nullptr || a != nullptr;
    product<T>(bf16, false, false, batch, units, in, x, in, W, units, z, units, any ? &epilogue : nullptr, packed_w);
}

template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dz, const T* x, const T* W, index_t batch,
                    index_t in, index_t units, bool bf16) {
    if (dW != nullptr) product<T>(bf16, true, false, in, units, batch, x, in, dz, units, dW, units);
    if (db != nullptr) {
        // Rows in order: the sum is the same for any thread count.
        std::fill(db, db + units, T(0));
        for (index_t r = 0; r < batch; ++r) {
            const T* dzr = dz + r * units;
            for (index_t j = 0; j < units; ++j) db[j] += dzr[j];
        }
    }
    if (dx != nullptr) product<T>(bf16, false, true, batch, in, units, dz, units, W, units, dx, in);
}

template void dense_forward<float>(float*, const float*, const float*, const float*, index_t,
                                   index_t, index_t, Activation, float*, bool, Bf16PackedB*);
template void dense_forward<double>(double*, const double*, const double*, const double*, index_t,
                                    index_t, index_t, Activation, double*, bool, Bf16PackedB*);
template void dense_batch_norm_forward<float>(float*, float*, const float*, const float*, const float*, index_t,
                                              index_t, index_t, const double*, const double*, NormAffine<float>, bool);
template void dense_batch_norm_forward<double>(double*, double*, const double*, const double*, const double*, index_t,
                                               index_t, index_t, const double*, const double*, NormAffine<double>, bool);
template void dense_backward<float>(float*, float*, float*, const float*, const float*,
                                    const float*, index_t, index_t, index_t, bool);
template void dense_backward<double>(double*, double*, double*, const double*, const double*,
                                     const double*, index_t, index_t, index_t, bool);

}  // namespace lamina
