// The thread team (thread_team.h) on its own: barriers order the threads' work, parallel_for
// covers every index once, regions nest, an exception from any thread reaches the caller and
// leaves the team usable, and threads that went to sleep between regions wake for the next.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lamina/thread_team.h"
#include "lamina/threading.h"

using namespace lamina;

namespace {

std::atomic<int> failures{0};  // check() may run on any thread of a region
int outer_threads = 0;  // region_threads() where run_all starts

void check(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what);
        ++failures;
    }
}

// Each thread writes its share, waits at the barrier, then reads the whole: a missing barrier
// shows as a value not yet written.
void barrier_orders_the_phases(int threads) {
    constexpr index_t n = 4096;
    std::vector<int> a(n, 0);
    std::atomic<int> wrong{0};
    for (int round = 1; round <= 50; ++round) {
        parallel_region(threads, [&](TeamThread& t) {
            for (index_t i = t.begin_of(n); i < t.end_of(n); ++i) a[i] = round;
            t.barrier();
            for (index_t i = 0; i < n; ++i)
                if (a[i] != round) wrong.fetch_add(1);
            t.barrier();
        });
    }
    check(wrong.load() == 0, "every thread sees all of phase one after the barrier");
}

void parallel_for_covers_each_index_once(index_t count) {
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(count));
    parallel_for(true, count, [&](index_t i) { seen[i].fetch_add(1); });
    bool once = true;
    for (auto& s : seen) once = once && s.load() == 1;
    check(once, "parallel_for visits each index exactly once");
}

void a_region_inside_a_region_runs_on_its_thread_alone() {
    std::atomic<int> inner_threads{0}, bad{0};
    parallel_region(2, [&](TeamThread&) {
        if (region_threads() != 1) bad.fetch_add(1);
        parallel_region(2, [&](TeamThread& inner) {
            inner_threads.fetch_add(1);
            if (inner.count() != 1) bad.fetch_add(1);
        });
    });
    check(bad.load() == 0, "a nested region has one thread");
    check(inner_threads.load() == std::min(2, outer_threads), "each outer thread runs the inner region once");
}

void an_exception_reaches_the_caller(int thrower) {
    bool caught = false;
    try {
        parallel_region(2, [&](TeamThread& t) {
            if (t.id() == thrower % t.count()) throw std::runtime_error("boom");
            t.barrier();  // the other thread must not wait here forever
            t.barrier();
        });
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "boom";
    }
    check(caught, "an exception from a thread is rethrown to the caller");
    std::atomic<int> ran{0};
    parallel_region(2, [&](TeamThread& t) {
        t.barrier();
        ran.fetch_add(1);
    });
    check(ran.load() == std::min(2, region_threads()), "the team runs the next region after an exception");
}

void threads_asleep_between_regions_wake_for_the_next() {
    std::atomic<long> sum{0};
    for (int round = 0; round < 5; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the spin: they sleep
        parallel_for(true, 1000, [&](index_t i) { sum.fetch_add(i); });
    }
    check(sum.load() == 5L * 999 * 1000 / 2, "sleeping threads wake and do their share");
}

void fewer_threads_than_the_team(int team) {
    std::atomic<int> ran{0};
    parallel_region(team - 1, [&](TeamThread& t) {
        ran.fetch_add(1);
        t.barrier();
        check(t.count() == team - 1, "a region asked for fewer threads gets that many");
    });
    check(ran.load() == team - 1, "only the asked-for threads run a smaller region");
}

void run_all(const char* where) {
    const int threads = outer_threads = region_threads();
    barrier_orders_the_phases(threads);
    for (index_t count : {index_t(0), index_t(1), index_t(2), index_t(3), index_t(1000), index_t(4097)})
        parallel_for_covers_each_index_once(count);
    a_region_inside_a_region_runs_on_its_thread_alone();
    an_exception_reaches_the_caller(0);
    an_exception_reaches_the_caller(1);
    threads_asleep_between_regions_wake_for_the_next();
    if (threads > 2) fewer_threads_than_the_team(threads);
    std::printf("thread team (%s, %d threads): %s\n", where, threads, failures.load() == 0 ? "ok" : "FAILED");
}

}  // namespace

int main() {
    for (int threads : {2, 3}) {
        set_num_threads(threads);
        run_all("no team open: each region starts its own");
        with_team([] { run_all("inside with_team"); });
    }
    // An exception out of with_team's function itself reaches its caller too.
    bool caught = false;
    try {
        with_team([] { throw std::invalid_argument("from the call"); });
    } catch (const std::invalid_argument&) {
        caught = true;
    }
    check(caught, "an exception from with_team's function is rethrown");
    return failures.load() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
