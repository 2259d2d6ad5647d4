#include "lamina/rank_update.h"

#include <type_traits>

#include "lamina/gemm_kernels.h"

namespace lamina {

template <typename T>
void rank_n_rows(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows) {
    const gemm_detail::GemmKernelTable& table = gemm_detail::active_kernels();
    if constexpr (std::is_same_v<T, float>) table.f32.rank_n(g, x, in, dz, units, n, rows);
    else table.f64.rank_n(g, x, in, dz, units, n, rows);
}

template <typename T>
void rank_n_rows_naive(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows) {
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < units; ++j) {
            T s = x[i] * dz[j];
            for (index_t r = 1; r < n; ++r) s += x[r * in + i] * dz[r * units + j];
            g[i * units + j] = s;
        }
}

#define LAMINA_INSTANTIATE_RANK_N(T)                                                                      \
    template void rank_n_rows<T>(T*, const T*, index_t, const T*, index_t, index_t, index_t);       \
    template void rank_n_rows_naive<T>(T*, const T*, index_t, const T*, index_t, index_t, index_t);
LAMINA_INSTANTIATE_RANK_N(float)
LAMINA_INSTANTIATE_RANK_N(double)

}  // namespace lamina
