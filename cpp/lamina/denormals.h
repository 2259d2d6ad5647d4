// Flush-to-zero for the core's training loop (train_batches). Subnormal floats (below 1.2e-38
// in float32) cost x86 cores a slow path on every operation, and training makes many: RMSprop's
// v for rarely-active inputs and units decays through the subnormal range, which slowed batch-1
// training measurably (bench/RESULTS.md, "Figures behind code comments"). TensorFlow, Keras's
// backend, runs its kernels with flush-to-zero and denormals-are-zero for the same reason.
// The mode is per thread (MXCSR), so it is set on the calling thread and the OpenMP workers for
// the duration of one training call and restored afterwards: numpy, other code in the process,
// and lamina's own predict / evaluate / gradient checking keep IEEE subnormals. Deterministic
// either way. On other CPUs this is a no-op.
#pragma once

namespace lamina {

void set_flush_denormals(bool on);  // default on
bool flush_denormals();

// Sets flush-to-zero + denormals-are-zero (when enabled) for its lifetime.
class FlushDenormalsScope {
public:
    FlushDenormalsScope();
    ~FlushDenormalsScope();
    FlushDenormalsScope(const FlushDenormalsScope&) = delete;
    FlushDenormalsScope& operator=(const FlushDenormalsScope&) = delete;

private:
    bool active_ = false;
    unsigned saved_ = 0;  // the calling thread's MXCSR on entry
};

}  // namespace lamina
