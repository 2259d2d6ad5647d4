#include "lamina/gradient_sink.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "lamina/aligned_vector.h"
#include "lamina/bf16.h"
#include "lamina/dense.h"
#include "lamina/gemm_bf16.h"
#include "lamina/rank_update.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"
#include "lamina/vectorize.h"

namespace lamina {

template <typename T>
LAMINA_VECTORIZE void add_regularization_gradient(T* g, const T* w, index_t n, double l1, double l2) {
    const T a = static_cast<T>(l1), b = static_cast<T>(2.0 * l2);
    for (index_t i = 0; i < n; ++i) {
        const T sign = w[i] > T(0) ? T(1) : (w[i] < T(0) ? T(-1) : T(0));
        g[i] += b * w[i] + a * sign;
    }
}

template <typename T>
DenseGradient<T> Bf16Operands<T>::rounded(const DenseGradient<T>& layer) {
    if constexpr (!std::is_same_v<T, float>) {
        throw std::logic_error("bfloat16 operands need a float32 network");
    } else {
        const index_t nx = layer.n * layer.d.in, nz = layer.n * layer.d.units;
        x_.resize(static_cast<std::size_t>(nx));
        dz_.resize(static_cast<std::size_t>(nz));
        thread_local std::vector<bf16_t> narrow;
        narrow.resize(static_cast<std::size_t>(std::max(nx, nz)));
        bf16_round(layer.x, nx, narrow.data());
        for (index_t i = 0; i < nx; ++i) x_[i] = bf16_to_float(narrow[i]);
        bf16_round(layer.dz, nz, narrow.data());
        for (index_t i = 0; i < nz; ++i) dz_[i] = bf16_to_float(narrow[i]);
        return DenseGradient<T>{layer.d, dz_.data(), x_.data(), layer.n, layer.l1, layer.l2, layer.packed_kernel};
    }
}

template <typename T>
void StoringSink<T>::dense(const DenseGradient<T>& layer) {
    const DenseParams& d = layer.d;
    T* dW = grads_ + d.kernel_offset;
    T* db = d.bias_offset >= 0 ? grads_ + d.bias_offset : nullptr;
    if (layer.n > 0 && layer.n <= FusedUpdateSink<T>::kMaxRows) {
        // The fused sink's kernel (which reads row 0, so not for a zero-row step: the GEMM
        // writes zeros then), so storing a small batch's gradient changes no bit of it.
        const DenseGradient<T> operands = bf16 ? bf16_operands_.rounded(layer) : layer;
        rank_n_rows(dW, operands.x, d.in, operands.dz, d.units, layer.n, d.in);
        dense_backward(static_cast<T*>(nullptr), static_cast<T*>(nullptr), db, layer.dz, layer.x,
                       static_cast<const T*>(nullptr), layer.n, d.in, d.units);
    } else {
        dense_backward(static_cast<T*>(nullptr), dW, db, layer.dz, layer.x, static_cast<const T*>(nullptr),
                       layer.n, d.in, d.units, bf16);
    }
    if (!layer.regularized()) return;
    // Fixed chunks: the same pieces whatever the thread count (elementwise anyway).
    constexpr index_t kChunk = 4096;
    const T* W = params_ + d.kernel_offset;
    const index_t n_w = d.in * d.units, chunks = (n_w + kChunk - 1) / kChunk;
    const bool parallel = n_w >= 4 * kParallelMinFlops;
    parallel_for(parallel, chunks, [&](index_t c) {
        const index_t i0 = c * kChunk;
        add_regularization_gradient(dW + i0, W + i0, std::min(kChunk, n_w - i0), layer.l1, layer.l2);
    });
}

template <typename T>
void FusedUpdateSink<T>::begin_step(index_t n_dense) {
    saved_.resize(static_cast<std::size_t>(n_dense));
    next_ = 0;
    pending_ = true;
}

template <typename T>
void FusedUpdateSink<T>::dense(const DenseGradient<T>& layer) {
    const DenseParams& d = layer.d;
    if (layer.n > kMaxRows || next_ >= static_cast<index_t>(saved_.size()))
        throw std::logic_error("FusedUpdateSink: batch too large or no begin_step");
    // The step's inputs, kept so grads() can be formed later (a few rows: the batch is small).
    // A regularized kernel's gradient is written out as it is formed instead (update_kernel).
    Saved& keep = saved_[static_cast<std::size_t>(next_++)];
    keep.d = d;
    // (A frozen layer's weights do not move, so its regularization term can still be added then.)
    keep.n = layer.regularized() && d.trainable ? 0 : layer.n;
    keep.l1 = layer.l1;
    keep.l2 = layer.l2;
    const DenseGradient<T> operands = bf16 ? bf16_operands_.rounded(layer) : layer;  // of the kernel's product
    keep.x.assign(operands.x, operands.x + keep.n * d.in);
    keep.dz.assign(operands.dz, operands.dz + keep.n * d.units);
    T* db = d.bias_offset >= 0 ? grads_ + d.bias_offset : nullptr;
    dense_backward(static_cast<T*>(nullptr), static_cast<T*>(nullptr), db, layer.dz, layer.x,
                   static_cast<const T*>(nullptr), layer.n, d.in, d.units);
    if (!d.trainable) return;
    if (db) optimizer_->update_span(params_ + d.bias_offset, db, d.bias_offset, d.units);
    update_kernel(operands);
}

template <typename T>
void FusedUpdateSink<T>::form_gradients() {
    if (!pending_) return;
    for (const Saved& s : saved_) {
        if (s.n == 0) continue;
        T* dW = grads_ + s.d.kernel_offset;
        rank_n_rows(dW, s.x.data(), s.d.in, s.dz.data(), s.d.units, s.n, s.d.in);
        if (s.l1 != 0.0 || s.l2 != 0.0)
            add_regularization_gradient(dW, params_ + s.d.kernel_offset, s.d.in * s.d.units, s.l1, s.l2);
    }
    pending_ = false;
}

// dz (n, units), x (n, in): the kernel gradient x^T dz is formed kRows rows at a time in a small
// per-thread block (it stays in L1/L2) and the optimizer rule is applied to those rows straight
// away. Blocks of rows are independent, so threads split them without changing any result.
// A kernel row whose input is zero in every sample has a zero gradient row; when the optimizer
// leaves weights alone under a zero gradient (see Optimizer::zero_gradient_effect) such rows
// skip the gradient and the weights, and at most decay their state -- bit-for-bit what the full
// rule gives, at a fraction of the memory traffic (sparse inputs such as images).
// (Deferring that decay to the row's next update, as rho^k in one multiplication, was tried:
// where it settles would change roundings, so results would depend on how fit splits its work.)
template <typename T>
void FusedUpdateSink<T>::update_kernel(const DenseGradient<T>& layer) {
    using ZeroGradient = typename Optimizer<T>::ZeroGradient;
    const DenseParams& d = layer.d;
    const T* x = layer.x;
    const T* dz = layer.dz;
    const index_t n = layer.n;
    // The regularization gradient needs the weights before the update, so grads() could not
    // form it later: regularized kernels form g in the gradient block itself (still in cache
    // for the update right after), which also keeps every row (a zero input is no zero gradient).
    const bool regularized = layer.regularized();
    const ZeroGradient zero_effect = regularized ? ZeroGradient::Full : optimizer_->zero_gradient_effect();
    // Skipping pays per row; for narrow kernels (a 10-unit output layer, whose inputs are relu
    // outputs and half zero) the runs get short and the calls cost more than the rows.
    constexpr index_t kSkipMinUnits = 64;
    T* W = params_ + d.kernel_offset;
    const index_t in = d.in, units = d.units;
    // A block of ~32 KB, an even number of rows so that a bfloat16 pair (rows 2q, 2q + 1) of a
    // kept packed kernel is repacked by the one thread that updated both.
    const index_t kRows = std::max<index_t>(2, 8192 / units / 2 * 2);
    const index_t blocks = (in + kRows - 1) / kRows;
    const bool parallel = 2 * n * in * units >= 8 * kParallelMinFlops && blocks > 1;
    // At batch 1, g is formed in registers inside the optimizer's kernel, row by row, when it
    // has one (faster than through the block; bench/RESULTS.md). With more samples each lane's
    // sum is a chain of dependent FMAs there, and rank_n_rows's independent accumulators win.
    const bool row_kernel = !regularized && n == 1 && units >= kSkipMinUnits && optimizer_->has_row_update();
    const bool skip_rows = zero_effect != ZeroGradient::Full && units >= kSkipMinUnits;
    // Row i's input column x[:, i] is all zero.
    auto zero_input = [&](index_t i) {
        if (!skip_rows) return false;
        for (index_t r = 0; r < n; ++r)
            if (x[r * in + i] != T(0)) return false;
        return true;
    };
    // Blocks handed out one at a time from a counter: skipped rows make blocks unequal (image
    // borders), and which thread takes a block changes no result.
    auto update_block = [&](index_t b) {
        thread_local AlignedVector<T> block;  // grows once per thread, then reused
        const index_t b0 = b * kRows, b1 = std::min(in, b0 + kRows);
        if (static_cast<index_t>(block.size()) < kRows * units) block.resize(static_cast<std::size_t>(kRows * units));
        // Runs of rows alike (all-zero input or not), each handled with one call.
        for (index_t i0 = b0; i0 < b1;) {
            const bool zero = zero_input(i0);
            index_t i1 = i0 + 1;
            while (i1 < b1 && zero_input(i1) == zero) ++i1;
            const index_t offset = d.kernel_offset + i0 * units, count = (i1 - i0) * units;
            if (zero) {
                if (zero_effect == ZeroGradient::DecayFirstSlot) optimizer_->decay_span(offset, count);
            } else if (row_kernel) {
                for (index_t i = i0; i < i1; ++i)
                    optimizer_->update_row(W + i * units, d.kernel_offset + i * units, x[i], dz, units);
            } else {
                T* g = regularized ? grads_ + offset : block.data();
                rank_n_rows(g, x + i0, in, dz, units, n, i1 - i0);
                if (regularized) add_regularization_gradient(g, W + i0 * units, count, layer.l1, layer.l2);
                optimizer_->update_span(W + i0 * units, g, offset, count);
            }
            if constexpr (std::is_same_v<T, float>)
                if (!zero && layer.packed_kernel != nullptr) layer.packed_kernel->repack_rows(W, units, i0, i1);
            i0 = i1;
        }
    };
    if (!parallel) {
        for (index_t b = 0; b < blocks; ++b) update_block(b);
        return;
    }
    std::atomic<index_t> next{0};
    parallel_region(region_threads(), [&](TeamThread&) {
        for (index_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) update_block(b);
    });
}

template void add_regularization_gradient<float>(float*, const float*, index_t, double, double);
template void add_regularization_gradient<double>(double*, const double*, index_t, double, double);
template class StoringSink<float>;
template class StoringSink<double>;
template class FusedUpdateSink<float>;
template class FusedUpdateSink<double>;
template class Bf16Operands<float>;
template class Bf16Operands<double>;

}  // namespace lamina
