#include "lamina/denormals.h"

#include <atomic>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define LAMINA_HAVE_MXCSR 1
#endif

namespace lamina {

namespace {

std::atomic<bool> g_flush{true};

#ifdef LAMINA_HAVE_MXCSR
constexpr unsigned kFlushBits = 0x8040;  // MXCSR FTZ (bit 15) and DAZ (bit 6)

// Every thread of the OpenMP team (and the caller) gets `mxcsr`.
void set_on_team(unsigned mxcsr) {
#pragma omp parallel
    _mm_setcsr(mxcsr);
    _mm_setcsr(mxcsr);
}
#endif

}  // namespace

void set_flush_denormals(bool on) { g_flush.store(on); }
bool flush_denormals() { return g_flush.load(); }

FlushDenormalsScope::FlushDenormalsScope() {
#ifdef LAMINA_HAVE_MXCSR
    if (!g_flush.load()) return;
    saved_ = _mm_getcsr();
    active_ = true;
    set_on_team(saved_ | kFlushBits);
#endif
}

FlushDenormalsScope::~FlushDenormalsScope() {
#ifdef LAMINA_HAVE_MXCSR
    if (active_) set_on_team(saved_);
#endif
}

}  // namespace lamina
