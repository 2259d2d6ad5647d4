// One thread team per call into the core. A training step runs a few dozen parallel loops; as
// separate OpenMP regions each one wakes and joins the threads again. with_team() starts the
// threads once for a whole call (fit, evaluate, predict): the calling thread runs the call, and
// each parallel_region() hands the waiting threads its body. Outside with_team() a region starts
// threads of its own, as an OpenMP region would.
//
// Every region splits its work by thread number alone (begin_of/end_of), never by timing, so
// results stay the same for any number of threads.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "lamina/matrix.h"

namespace lamina {

// A reference to a callable that does not own it: a region's body lives on its caller's stack
// for as long as the region runs, and this costs no allocation per region.
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
public:
    template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
    FunctionRef(F&& f)  // NOLINT: implicit, like std::function
        : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* object, Args... args) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
          }) {}
    R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

private:
    void* object_;
    R (*call_)(void*, Args...);
};

struct RegionSync;  // thread_team.cpp

// One thread's view of a running region: which of how many it is, and the region's barrier.
class TeamThread {
public:
    TeamThread(RegionSync* sync, int id, int count) : sync_(sync), id_(id), count_(count) {}
    int id() const { return id_; }
    int count() const { return count_; }
    // This thread's contiguous share [begin_of, end_of) of `total` items.
    index_t begin_of(index_t total) const { return total * id_ / count_; }
    index_t end_of(index_t total) const { return total * (id_ + 1) / count_; }
    // Returns once every thread of the region has reached it.
    void barrier();
    // body(i) for this thread's share of [0, total), then the barrier: afterwards all of it is done.
    template <typename Body>
    void for_each(index_t total, Body&& body) {
        for (index_t i = begin_of(total), end = end_of(total); i < end; ++i) body(i);
        barrier();
    }

private:
    RegionSync* sync_;
    int id_, count_;
};

// Runs body once on each of `threads` threads (fewer when the open team has fewer, one inside
// another region's body) and returns when all are done. The calling thread is thread 0. An
// exception thrown by any of them is rethrown here, after the others have left the region.
void parallel_region(int threads, FunctionRef<void(TeamThread&)> body);

// The threads a region started now would get.
int region_threads();

// Runs fn on the calling thread with the call's team of threads waiting for its regions (the
// calling thread's thread count, see threading.h). Inside a team, fn just runs.
void with_team(FunctionRef<void()> fn);

// for (i = 0; i < count; ++i) body(i), split into contiguous runs between the threads when
// `parallel` (the work is worth waking them for).
template <typename Body>
void parallel_for(bool parallel, index_t count, Body&& body) {
    const int threads = parallel ? region_threads() : 1;
    if (threads <= 1 || count <= 1) {
        for (index_t i = 0; i < count; ++i) body(i);
        return;
    }
    parallel_region(threads, [&](TeamThread& t) {
        for (index_t i = t.begin_of(count), end = t.end_of(count); i < end; ++i) body(i);
    });
}

}  // namespace lamina
