// Thread control for the core. Every parallel loop splits work along a dimension that each thread
// writes alone, so results never depend on the number of threads.
#pragma once
#include <cstdint>

namespace lamina {

void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

// Below this many floating-point operations a loop stays on the calling thread: waking threads
// costs more than the work.
constexpr std::int64_t kParallelMinFlops = 1 << 16;

}  // namespace lamina
