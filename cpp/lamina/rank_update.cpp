#include "lamina/rank_update.h"

#include <type_traits>

#include "lamina/gemm.h"
#include "lamina/vectorize.h"

namespace lamina {

namespace {

// The portable twin: n axpy sweeps per row, vectorized along units.
template <typename T>
LAMINA_VECTORIZE void rank_n_rows_plain(T* g, const T* x, index_t in, const T* dz, index_t units,
                                        index_t n, index_t rows) {
    for (index_t i = 0; i < rows; ++i) {
        T* gi = g + i * units;
        const T a0 = x[i];
        for (index_t j = 0; j < units; ++j) gi[j] = a0 * dz[j];
        for (index_t r = 1; r < n; ++r) {
            const T a = x[r * in + i];
            if (a == T(0)) continue;
            const T* dzr = dz + r * units;
            for (index_t j = 0; j < units; ++j) gi[j] += a * dzr[j];
        }
    }
}

}  // namespace

template <typename T>
void rank_n_rows(T* g, const T* x, index_t in, const T* dz, index_t units, index_t n, index_t rows) {
#ifdef LAMINA_HAVE_AVX2_TU
    if (avx2_kernels()) {
        if constexpr (std::is_same_v<T, float>) return rank_n_rows_f32_avx2(g, x, in, dz, units, n, rows);
        else return rank_n_rows_f64_avx2(g, x, in, dz, units, n, rows);
    }
#endif
    rank_n_rows_plain(g, x, in, dz, units, n, rows);
}

template void rank_n_rows<float>(float*, const float*, index_t, const float*, index_t, index_t, index_t);
template void rank_n_rows<double>(double*, const double*, index_t, const double*, index_t, index_t, index_t);

}  // namespace lamina
