#include "lamina/threading.h"

#include <algorithm>
#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lamina {

namespace {

int hardware_threads() {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();  // OMP_NUM_THREADS, or one per core
#else
    return 1;
#endif
}

std::atomic<int>& process_threads() {
    static std::atomic<int> count{default_threads()};
    return count;
}

void set_calling_thread(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

}  // namespace

int current_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    process_threads().store(n);
    set_calling_thread(n);
}

int get_num_threads() { return process_threads().load(); }

int max_threads() { return std::max(256, 4 * hardware_threads()); }

ThreadScope::ThreadScope(int n) : previous_(current_threads()) {
    set_calling_thread(n > 0 ? n : get_num_threads());
}

ThreadScope::~ThreadScope() { set_calling_thread(previous_); }

bool openmp_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace lamina
