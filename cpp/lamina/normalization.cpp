#include "lamina/normalization.h"

#include <algorithm>
#include <cmath>

#include "lamina/thread_team.h"
#include "lamina/threading.h"

namespace lamina {

namespace {

// Columns per thread task: each task owns its columns' sums, kept on the stack, and walks the
// rows in order, so a column's sum has one order whatever the thread count.
constexpr index_t kColumnBlock = 64;

index_t column_blocks(index_t f) { return (f + kColumnBlock - 1) / kColumnBlock; }

bool worth_threads(index_t n, index_t f) { return n * f >= kParallelMinFlops; }

// sum_dy[j] = sum_i dout[i, j], sum_dyx[j] = sum_i dout[i, j] * xhat[i, j] over the columns of
// block [j0, j1), with xhat[i, j] = (x[i, j] - mean_of(i, j)) * inv_std_of(i, j).
template <typename T, typename Mean, typename InvStd>
void column_gradient_sums(double* sum_dy, double* sum_dyx, const T* dout, const T* x, index_t n, index_t f,
                          index_t j0, index_t j1, Mean mean_of, InvStd inv_std_of) {
    for (index_t j = j0; j < j1; ++j) sum_dy[j - j0] = sum_dyx[j - j0] = 0.0;
    for (index_t i = 0; i < n; ++i) {
        const T* dr = dout + i * f;
        const T* xr = x + i * f;
        for (index_t j = j0; j < j1; ++j) {
            const double dy = double(dr[j]);
            sum_dy[j - j0] += dy;
            sum_dyx[j - j0] += dy * (double(xr[j]) - mean_of(i, j)) * inv_std_of(i, j);
        }
    }
}

}  // namespace

// x (n, f) -> mean, var, inv_std (f): two passes (mean, then squared deviations) for accuracy.
template <typename T>
void batch_moments(double* mean, double* var, double* inv_std, const T* x, index_t n, index_t f, double eps) {
    const index_t blocks = column_blocks(f);
    parallel_for(worth_threads(n, f), blocks, [&](index_t b) {
        const index_t j0 = b * kColumnBlock, j1 = std::min(f, j0 + kColumnBlock);
        for (index_t j = j0; j < j1; ++j) mean[j] = var[j] = 0.0;
        for (index_t i = 0; i < n; ++i)
            for (index_t j = j0; j < j1; ++j) mean[j] += double(x[i * f + j]);
        for (index_t j = j0; j < j1; ++j) mean[j] /= static_cast<double>(n);
        for (index_t i = 0; i < n; ++i)
            for (index_t j = j0; j < j1; ++j) {
                const double d = double(x[i * f + j]) - mean[j];
                var[j] += d * d;
            }
        for (index_t j = j0; j < j1; ++j) {
            var[j] /= static_cast<double>(n);
            inv_std[j] = 1.0 / std::sqrt(var[j] + eps);
        }
    });
}

// moving_mean, moving_var (f) updated from the batch's mean, var (f).
template <typename T>
void update_moving_moments(T* moving_mean, T* moving_var, const double* mean, const double* var, index_t f,
                           double momentum) {
    for (index_t j = 0; j < f; ++j) {
        moving_mean[j] = static_cast<T>(double(moving_mean[j]) * momentum + mean[j] * (1.0 - momentum));
        moving_var[j] = static_cast<T>(double(moving_var[j]) * momentum + var[j] * (1.0 - momentum));
    }
}

// moving_mean, moving_var (f) -> mean, inv_std (f).
template <typename T>
void moving_moments(double* mean, double* inv_std, const T* moving_mean, const T* moving_var, index_t f, double eps) {
    for (index_t j = 0; j < f; ++j) {
        mean[j] = double(moving_mean[j]);
        inv_std[j] = 1.0 / std::sqrt(double(moving_var[j]) + eps);
    }
}

// x, out (n, f); mean, inv_std (f).
template <typename T>
void batch_norm_rows(T* out, index_t ldo, const T* x, index_t ldx, const double* mean, const double* inv_std,
                     NormAffine<T> affine, index_t rows, index_t cols) {
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) {
            double y = (double(x[i * ldx + j]) - mean[j]) * inv_std[j];
            if (affine.gamma) y *= double(affine.gamma[j]);
            if (affine.beta) y += double(affine.beta[j]);
            out[i * ldo + j] = static_cast<T>(y);
        }
}

template <typename T>
void batch_norm_forward(T* out, const T* x, const double* mean, const double* inv_std, NormAffine<T> affine,
                        index_t n, index_t f) {
    parallel_for(worth_threads(n, f), n, [&](index_t i) { batch_norm_rows(out + i * f, f, x + i * f, f, mean, inv_std, affine, 1, f); });
}

// dout, x, dx (n, f); mean, inv_std, gamma, dgamma, dbeta (f).
// With batch statistics: dx = gamma * inv_std / n * (n dy - sum dy - xhat sum(dy xhat)).
template <typename T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, index_t n, index_t f, bool batch_stats) {
    const index_t blocks = column_blocks(f);
    parallel_for(worth_threads(n, f), blocks, [&](index_t b) {
        const index_t j0 = b * kColumnBlock, j1 = std::min(f, j0 + kColumnBlock);
        double sum_dy[kColumnBlock], sum_dyx[kColumnBlock];
        column_gradient_sums(sum_dy, sum_dyx, dout, x, n, f, j0, j1, [&](index_t, index_t j) { return mean[j]; },
                             [&](index_t, index_t j) { return inv_std[j]; });
        for (index_t j = j0; j < j1; ++j) {
            if (dgamma) dgamma[j] = static_cast<T>(sum_dyx[j - j0]);
            if (dbeta) dbeta[j] = static_cast<T>(sum_dy[j - j0]);
        }
        if (!dx) return;
        const double rows = static_cast<double>(n);
        for (index_t i = 0; i < n; ++i)
            for (index_t j = j0; j < j1; ++j) {
                const double scale = (gamma ? double(gamma[j]) : 1.0) * inv_std[j];
                const double dy = double(dout[i * f + j]);
                if (!batch_stats) {
                    dx[i * f + j] = static_cast<T>(scale * dy);
                    continue;
                }
                const double xhat = (double(x[i * f + j]) - mean[j]) * inv_std[j];
                dx[i * f + j] = static_cast<T>(scale * (dy - sum_dy[j - j0] / rows - xhat * sum_dyx[j - j0] / rows));
            }
    });
}

// x, out (n, f); mean, inv_std (n).
template <typename T>
void layer_norm_forward(T* out, double* mean, double* inv_std, const T* x, NormAffine<T> affine, index_t n,
                        index_t f, double eps) {
    parallel_for(worth_threads(n, f), n, [&](index_t i) {
        const T* xr = x + i * f;
        double m = 0.0, v = 0.0;
        for (index_t j = 0; j < f; ++j) m += double(xr[j]);
        m /= static_cast<double>(f);
        for (index_t j = 0; j < f; ++j) v += (double(xr[j]) - m) * (double(xr[j]) - m);
        const double s = 1.0 / std::sqrt(v / static_cast<double>(f) + eps);
        mean[i] = m;
        inv_std[i] = s;
        for (index_t j = 0; j < f; ++j) {
            double y = (double(xr[j]) - m) * s;
            if (affine.gamma) y *= double(affine.gamma[j]);
            if (affine.beta) y += double(affine.beta[j]);
            out[i * f + j] = static_cast<T>(y);
        }
    });
}

// dout, x, dx (n, f); mean, inv_std (n); gamma, dgamma, dbeta (f).
// Per row, with g = gamma * dy: dx = inv_std * (g - mean(g) - xhat * mean(g xhat)).
template <typename T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const double* mean,
                         const double* inv_std, const T* gamma, index_t n, index_t f) {
    const bool parallel = worth_threads(n, f);
    if (dgamma || dbeta) {  // column sums first: dx may overwrite dout
        const index_t blocks = column_blocks(f);
        parallel_for(parallel, blocks, [&](index_t b) {
            const index_t j0 = b * kColumnBlock, j1 = std::min(f, j0 + kColumnBlock);
            double sum_dy[kColumnBlock], sum_dyx[kColumnBlock];
            column_gradient_sums(sum_dy, sum_dyx, dout, x, n, f, j0, j1, [&](index_t i, index_t) { return mean[i]; },
                                 [&](index_t i, index_t) { return inv_std[i]; });
            for (index_t j = j0; j < j1; ++j) {
                if (dgamma) dgamma[j] = static_cast<T>(sum_dyx[j - j0]);
                if (dbeta) dbeta[j] = static_cast<T>(sum_dy[j - j0]);
            }
        });
    }
    if (!dx) return;
    const double cols = static_cast<double>(f);
    parallel_for(parallel, n, [&](index_t i) {
        const T* dr = dout + i * f;
        const T* xr = x + i * f;
        double sum_g = 0.0, sum_gx = 0.0;
        for (index_t j = 0; j < f; ++j) {
            const double g = double(dr[j]) * (gamma ? double(gamma[j]) : 1.0);
            sum_g += g;
            sum_gx += g * (double(xr[j]) - mean[i]) * inv_std[i];
        }
        for (index_t j = 0; j < f; ++j) {
            const double g = double(dr[j]) * (gamma ? double(gamma[j]) : 1.0);
            const double xhat = (double(xr[j]) - mean[i]) * inv_std[i];
            dx[i * f + j] = static_cast<T>(inv_std[i] * (g - sum_g / cols - xhat * sum_gx / cols));
        }
    });
}

#define LAMINA_NORMALIZATION(T)                                                                                     \
    template void batch_moments<T>(double*, double*, double*, const T*, index_t, index_t, double);                 \
    template void update_moving_moments<T>(T*, T*, const double*, const double*, index_t, double);                 \
    template void moving_moments<T>(double*, double*, const T*, const T*, index_t, double);                        \
    template void batch_norm_rows<T>(T*, index_t, const T*, index_t, const double*, const double*, NormAffine<T>,  \
                                     index_t, index_t);                                                            \
    template void batch_norm_forward<T>(T*, const T*, const double*, const double*, NormAffine<T>, index_t,        \
                                        index_t);                                                                  \
    template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,   \
                                         index_t, index_t, bool);                                                  \
    template void layer_norm_forward<T>(T*, double*, double*, const T*, NormAffine<T>, index_t, index_t, double);  \
    template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,   \
                                         index_t, index_t);
LAMINA_NORMALIZATION(float)
LAMINA_NORMALIZATION(double)
#undef LAMINA_NORMALIZATION

}  // namespace lamina
