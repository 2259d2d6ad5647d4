#include "lamina/denormals.h"

#include <atomic>

#include "lamina/thread_team.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define LAMINA_HAVE_MXCSR 1
#endif

namespace lamina {

namespace {

std::atomic<bool> g_flush{true};

#ifdef LAMINA_HAVE_MXCSR
constexpr unsigned kFlushBits = 0x8040;  // MXCSR FTZ (bit 15) and DAZ (bit 6)

// The caller and every thread of its team get `mxcsr` (a team started later copies the
// caller's, thread_team.cpp).
void set_on_team(unsigned mxcsr) {
    _mm_setcsr(mxcsr);
    parallel_region(region_threads(), [&](TeamThread&) { _mm_setcsr(mxcsr); });
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
