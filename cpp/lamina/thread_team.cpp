#include "lamina/thread_team.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>

#include "lamina/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LAMINA_HAVE_MXCSR 1
#endif

namespace lamina {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

inline void cpu_relax() {
#ifdef LAMINA_HAVE_MXCSR
    _mm_pause();
#endif
}

// Waiting, per thread: spin while the wait is likely short, then sleep. Spinning answers in well
// under a microsecond where waking a sleeper takes tens; but when another process wants this
// core, a spinning thread holds it away from the very thread it waits for. The kernel counts
// each time it takes a core from this process (involuntary context switches): when that count
// moves, the budget halves; a wait that slept, with no core lost meanwhile, but would have
// ended within the longest budget doubles it again (a quiet machine takes a core now and then
// too, and must not stay asleep).
constexpr microseconds kSpinMax{200}, kSpinMin{5};
// A gap this long between two looks at the clock means the thread was off its core.
constexpr microseconds kOffCoreGap{50};

struct SpinBudget {
    microseconds budget = kSpinMax;
    long seen_switches = -1;
};
thread_local SpinBudget tl_spin;

long involuntary_switches() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_nivcsw;
}

// True if the process has lost a core since the last look (the first look only records).
bool lost_core() {
    const long now = involuntary_switches();
    const bool moved = tl_spin.seen_switches >= 0 && now != tl_spin.seen_switches;
    tl_spin.seen_switches = now;
    return moved;
}

// Sleeping threads wait on one condition variable; whoever changes a condition they may wait
// for calls wake() after the change.
struct Sleepers {
    std::mutex mutex;
    std::condition_variable cv;
    std::atomic<int> count{0};

    void wake() {
        if (count.load() == 0) return;  // seq_cst: pairs with the sleeper's increment
        { const std::lock_guard<std::mutex> lock(mutex); }
        cv.notify_all();
    }

    template <typename Ready>
    void wait(Ready ready) {
        if (ready()) return;
        const Clock::time_point start = Clock::now();
        Clock::time_point last = start;
        for (;;) {
            for (int i = 0; i < 64; ++i) {
                cpu_relax();
                if (ready()) return;
            }
            const Clock::time_point now = Clock::now();
            const bool gap = now - last > kOffCoreGap, spent = now - start > tl_spin.budget;
            last = now;
            if ((gap || spent) && lost_core()) tl_spin.budget = std::max(kSpinMin, tl_spin.budget / 2);
            if (now - start > tl_spin.budget) break;
        }
        count.fetch_add(1);
        {
            std::unique_lock<std::mutex> lock(mutex);
            cv.wait(lock, ready);
        }
        count.fetch_sub(1);
        if (lost_core())
            tl_spin.budget = std::max(kSpinMin, tl_spin.budget / 2);
        else if (Clock::now() - start < kSpinMax)
            tl_spin.budget = std::min(kSpinMax, tl_spin.budget * 2);
    }
};

// Thrown by barrier() in the other threads once one thread's body has thrown: they leave the
// region instead of waiting for a thread that will never arrive.
struct RegionAbandoned {};

}  // namespace

struct RegionSync {
    Sleepers* sleepers = nullptr;
    int count = 1;
    std::atomic<int> arrived{0};
    std::atomic<std::uint32_t> generation{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::exception_ptr error;

    void reset(int threads) {
        count = threads;
        arrived.store(0);
        failed.store(false);
        error = nullptr;
    }

    void barrier() {
        const std::uint32_t g = generation.load();  // before `failed`: see fail()
        if (failed.load()) throw RegionAbandoned{};
        if (arrived.fetch_add(1) + 1 == count) {
            arrived.store(0);
            generation.store(g + 1);
            sleepers->wake();
            return;
        }
        sleepers->wait([&] { return generation.load() != g; });
        if (failed.load()) throw RegionAbandoned{};
    }

    // Keeps the first exception, then releases every thread waiting in the barrier.
    void fail(std::exception_ptr e) {
        {
            const std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::move(e);
        }
        failed.store(true);
        generation.fetch_add(1);
        sleepers->wake();
    }

    // Runs one thread's part of the region; what it throws is kept for thread 0 to rethrow.
    void run_part(const FunctionRef<void(TeamThread&)>& body, int id) {
        TeamThread thread(this, id, count);
        try {
            body(thread);
        } catch (const RegionAbandoned&) {
        } catch (...) {
            fail(std::current_exception());
        }
    }
};

void TeamThread::barrier() {
    if (count_ > 1) sync_->barrier();
}

namespace {

// Set on a thread while it runs a part of a region: a region inside it runs on that thread alone.
thread_local bool tl_in_part = false;

struct PartScope {
    PartScope() : previous(tl_in_part) { tl_in_part = true; }
    ~PartScope() { tl_in_part = previous; }
    PartScope(const PartScope&) = delete;
    PartScope& operator=(const PartScope&) = delete;
    bool previous;
};

// The threads of one with_team() call. Thread 0 (the caller) posts regions; the others serve
// them until it posts the stop.
class Team {
public:
    explicit Team(int size) : size_(size) { sync_.sleepers = &sleepers_; }

    int size() const { return size_; }
    void set_size(int size) { size_ = size; }

    void run(int threads, const FunctionRef<void(TeamThread&)>& body) {
        threads = std::clamp(threads, 1, size_);
        if (threads == 1) {
            TeamThread alone(&sync_, 0, 1);
            body(alone);
            return;
        }
        sync_.reset(threads);
        body_ = &body;
        finished_.store(0);
        post(threads);
        {
            const PartScope part;
            sync_.run_part(body, 0);
        }
        sleepers_.wait([&] { return finished_.load() == threads - 1; });
        if (sync_.error) {
            std::exception_ptr error = sync_.error;
            sync_.error = nullptr;
            std::rethrow_exception(error);
        }
    }

    void stop() { post(0); }

    // Thread `id` (1..size-1) runs its part of each region it is in, until the stop.
    void serve(int id) {
        std::uint64_t seen = 0;
        for (;;) {
            std::uint64_t word = 0;
            sleepers_.wait([&] { return ((word = posted_.load()) >> kThreadBits) != seen; });
            seen = word >> kThreadBits;
            const int threads = static_cast<int>(word & kThreadMask);
            if (threads == 0) return;
            if (id >= threads) continue;
            {
                const PartScope part;
                sync_.run_part(*body_, id);
            }
            finished_.fetch_add(1);
            sleepers_.wake();
        }
    }

private:
    // The posted word: the region's number above, its thread count (0: stop) in the low bits.
    // One atomic word, so a thread that skips a region never mixes two regions' counts.
    static constexpr int kThreadBits = 16;
    static constexpr std::uint64_t kThreadMask = (std::uint64_t(1) << kThreadBits) - 1;

    void post(int threads) {
        ++regions_;
        posted_.store((regions_ << kThreadBits) | static_cast<std::uint64_t>(threads));
        sleepers_.wake();
    }

    int size_;
    std::uint64_t regions_ = 0;
    std::atomic<std::uint64_t> posted_{0};
    const FunctionRef<void(TeamThread&)>* body_ = nullptr;
    std::atomic<int> finished_{0};
    RegionSync sync_;
    Sleepers sleepers_;
};

// The team the calling thread opened (while its with_team() runs).
thread_local Team* tl_team = nullptr;

// Starts `size` threads: the caller runs fn as thread 0, the others serve its regions.
void run_team(int size, const FunctionRef<void()>& fn) {
#ifdef _OPENMP
    Team team(size);
    std::exception_ptr error;
#ifdef LAMINA_HAVE_MXCSR
    const unsigned mxcsr = _mm_getcsr();  // the team computes as its caller does (denormals.h)
#endif
#pragma omp parallel num_threads(size)
    {
        const int id = omp_get_thread_num();
        if (id == 0) {
            team.set_size(omp_get_num_threads());  // the runtime may grant fewer
            tl_team = &team;
            try {
                fn();
            } catch (...) {
                error = std::current_exception();
            }
            tl_team = nullptr;
            team.stop();
        } else {
#ifdef LAMINA_HAVE_MXCSR
            _mm_setcsr(mxcsr);
#endif
            team.serve(id);
        }
    }
    if (error) std::rethrow_exception(error);
#else
    (void)size;
    fn();
#endif
}

}  // namespace

int region_threads() {
    if (tl_in_part) return 1;
    if (tl_team != nullptr) return std::min(tl_team->size(), current_threads());
    return current_threads();
}

void parallel_region(int threads, FunctionRef<void(TeamThread&)> body) {
    threads = std::min(threads, region_threads());
    if (threads <= 1) {
        TeamThread alone(nullptr, 0, 1);
        body(alone);
        return;
    }
    if (tl_team != nullptr) {
        tl_team->run(threads, body);
        return;
    }
    run_team(threads, [&] { tl_team->run(threads, body); });
}

void with_team(FunctionRef<void()> fn) {
    const int size = region_threads();
    if (tl_team != nullptr || tl_in_part || size <= 1) {
        fn();
        return;
    }
    run_team(size, fn);
}

}  // namespace lamina
