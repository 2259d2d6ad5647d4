// Thread control for the core. Every parallel loop splits work along a dimension that each thread
// writes alone, so results never depend on the number of threads.
#pragma once
#include <cstdint>

namespace lamina {

// The process-wide thread count (OpenMP keeps one per calling thread; lamina keeps one for the
// process, so a count set on one Python thread holds for calls made from every other).
void set_num_threads(int n);
int get_num_threads();
// The most threads set_num_threads accepts: creating far more than the machine has fails.
int max_threads();
// The count the calling thread's next parallel region uses (its ThreadScope's, inside one).
int current_threads();
bool openmp_enabled();

// For its lifetime, the calling thread's parallel regions use `n` threads (0: the process-wide
// count). Each entry into the core opens one, so a per-model count never leaks to other calls.
class ThreadScope {
public:
    explicit ThreadScope(int n);
    ~ThreadScope();
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int previous_;
};

// Below this many floating-point operations a loop stays on the calling thread: waking threads
// costs more than the work.
constexpr std::int64_t kParallelMinFlops = 1 << 16;

}  // namespace lamina
