// What both stress programs share: the command line (--seed, --seconds, --drivers), a counter of
// live objects, invariant checks that name the invariant and the seed, a watchdog that aborts
// when nothing progresses, and the means to wait, without sleeping, until every pool made by a
// test and every worker thread left running by a pool destroyed from its own task are gone.
//
// A failure prints `VIOLATION (seed N): <invariant>: <details>`; the program then exits with 1
// (finish()). A hang prints `HANG (seed N): ...` and aborts. Rerun with `--seed N` to repeat it
// (the interleaving differs from run to run, so a rare failure may need several runs).
#ifndef BACKGROUND_TESTS_STRESS_SUPPORT_HPP
#define BACKGROUND_TESTS_STRESS_SUPPORT_HPP

#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <background/background.hpp>
#include <background/detail/testing.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace stress {

// The counters every part of a test reaches: object constructors, task bodies, callbacks and
// the on_error() handler, on any thread. The one global of a stress program.
struct run_stats {
  std::atomic<long> live_{0};  // live_object instances alive
  std::atomic<long> violations_{0};
  std::atomic<const char*> first_violation_{nullptr};
  std::atomic<long> progress_{0};  // bumped by every step; the watchdog watches it
  std::atomic<const char*> phase_{"start"};
  std::atomic<long> tracked_pools_{0};    // pools from make_tracked_pool() not yet destroyed
  std::atomic<long> tracked_threads_{0};  // threads from track_thread_exit() still running
  std::uint64_t seed_ = 0;                // set by parse_options(), before any thread starts
};
inline run_stats stats;

// Counts itself in stats.live_ while it exists (each copy, and a moved-from object too, until
// destroyed). Captured by tasks and stored in results, it proves they are all freed.
class live_object {
 public:
  live_object() noexcept { add(); }
  live_object(const live_object&) noexcept { add(); }
  live_object(live_object&&) noexcept { add(); }
  live_object& operator=(const live_object&) = default;
  live_object& operator=(live_object&&) = default;
  // relaxed: the count is read only after the test has synchronised with every thread that
  // could touch it (joins, pool::wait(), wait_until_zero()).
  ~live_object() { stats.live_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  static void add() noexcept { stats.live_.fetch_add(1, std::memory_order_relaxed); }
};

// Records a violation of `invariant` unless `ok`, and prints it with the seed and `details`
// (printf-style). Prints the first 20 violations only; counts all. Safe from any thread.
[[gnu::format(printf, 3, 4)]] inline void check(bool ok, const char* invariant, const char* details,
                                                ...) {
  if (ok) return;
  const char* none = nullptr;
  stats.first_violation_.compare_exchange_strong(none, invariant);
  if (stats.violations_.fetch_add(1) >= 20) return;
  char text[512];
  va_list args;
  va_start(args, details);
  std::vsnprintf(text, sizeof text, details, args);
  va_end(args);
  std::fprintf(stderr, "VIOLATION (seed %llu): %s: %s\n",
               static_cast<unsigned long long>(stats.seed_), invariant, text);
}

// Marks a step of progress, and names the phase the test is in for the watchdog's message.
inline void progress() noexcept { stats.progress_.fetch_add(1, std::memory_order_relaxed); }
inline void enter_phase(const char* name) noexcept {
  stats.phase_.store(name);
  progress();
}

// A random source for one thread, with helpers that keep -Wconversion quiet.
class random_source {
 public:
  explicit random_source(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t next() { return engine_(); }
  // A number in [0, n), n > 0.
  int below(int n) { return static_cast<int>(engine_() % static_cast<std::uint64_t>(n)); }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
  // True once in `n` times on average.
  bool one_in(int n) { return below(n) == 0; }
  bool coin() { return (engine_() & 1) != 0; }

 private:
  std::mt19937_64 engine_;
};

// The seed of the i-th driver, well spread from the run's seed (splitmix64).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct options {
  std::uint64_t seed_ = 0;
  int seconds_ = 3;
  int drivers_ = 4;
};

// Reads --seed N (default: from the clock), --seconds S (default 3) and --drivers K, prints
// `seed N` at once so that any failure can be reproduced, and sets stats.seed_. Exits with 2
// and a usage line on anything else.
inline options parse_options(int argc, char** argv, int default_drivers) {
  options o;
  o.drivers_ = default_drivers;
  o.seed_ =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) %
      1000000000u;
  auto usage = [argv] {
    std::fprintf(stderr, "usage: %s [--seed N] [--seconds S] [--drivers K]\n", argv[0]);
    std::exit(2);
  };
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) usage();
    const char* value = argv[i + 1];
    char* end = nullptr;
    const unsigned long long v = std::strtoull(value, &end, 10);
    if (end == value || *end != '\0' || value[0] == '-') usage();
    if (std::strcmp(argv[i], "--seed") == 0) {
      o.seed_ = v;
    } else if (std::strcmp(argv[i], "--seconds") == 0 && v <= 86400) {
      o.seconds_ = static_cast<int>(v);
    } else if (std::strcmp(argv[i], "--drivers") == 0 && v >= 1 && v <= 256) {
      o.drivers_ = static_cast<int>(v);
    } else {
      usage();
    }
  }
  stats.seed_ = o.seed_;
  std::printf("seed %llu\n", static_cast<unsigned long long>(o.seed_));
  std::fflush(stdout);
  return o;
}

// Aborts the process, naming the seed and the phase, if stats.progress_ stays still for
// `limit`: a hang, never a timing assertion (the limit is far above any step's duration, even
// under a sanitizer). Stops when destroyed.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds limit = std::chrono::seconds(120))
      : thread_([this, limit] { watch(limit); }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stopped_.notify_all();
    thread_.join();
  }

 private:
  void watch(std::chrono::seconds limit) {
    long last = stats.progress_.load();
    auto since = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopped_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      const long now_progress = stats.progress_.load();
      const auto now = std::chrono::steady_clock::now();
      if (now_progress != last) {
        last = now_progress;
        since = now;
      } else if (now - since > limit) {
        std::fprintf(stderr,
                     "HANG (seed %llu): no progress for %lld s in phase '%s'; live objects %ld, "
                     "pools %ld, pool threads %ld\n",
                     static_cast<unsigned long long>(stats.seed_),
                     static_cast<long long>(limit.count()), stats.phase_.load(), stats.live_.load(),
                     stats.tracked_pools_.load(), stats.tracked_threads_.load());
        std::abort();
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Blocks until `counter` is 0 (it must only go down by then).
inline void wait_until_zero(std::atomic<long>& counter) {
  for (long v = counter.load(); v != 0; v = counter.load()) counter.wait(v);
}

// A pool counted in stats.tracked_pools_ until destroyed, by whichever thread drops the last
// reference (a task of its own included).
inline std::shared_ptr<background::pool> make_tracked_pool(std::size_t threads) {
  auto p = std::shared_ptr<background::pool>(new background::pool(threads), [](auto* q) {
    delete q;
    // seq_cst: wait_until_zero() must see the thread registered before (track_thread_exit()).
    if (stats.tracked_pools_.fetch_sub(1) == 1) stats.tracked_pools_.notify_all();
  });
  stats.tracked_pools_.fetch_add(1);
  return p;
}

// Called from a task that may destroy its own pool: that pool's destructor then detaches this
// worker thread, which goes on finishing the task (its continuations, callbacks and the release
// of its state) after the pool is gone. The thread is counted in stats.tracked_threads_ until
// it exits, so that wait_until_zero(stats.tracked_threads_) covers all of that. Call it only on
// a thread that will exit: a worker of a pool that will be destroyed.
inline void track_thread_exit() {
  struct exit_signal {
    exit_signal() { stats.tracked_threads_.fetch_add(1); }
    exit_signal(const exit_signal&) = delete;
    exit_signal& operator=(const exit_signal&) = delete;
    ~exit_signal() {
      if (stats.tracked_threads_.fetch_sub(1) == 1) stats.tracked_threads_.notify_all();
    }
  };
  thread_local exit_signal signal;  // constructed on this thread's first call, once
}

// The threads this process has now (entries of /proc/self/task), or -1 if it cannot tell.
inline long process_threads() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  long n = 0;
  while (const dirent* e = ::readdir(dir)) n += e->d_name[0] == '.' ? 0 : 1;
  ::closedir(dir);
  return n;
}

// This process's resident set size in KiB (from /proc/self/statm), or -1.
inline long resident_kib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long pages = 0;
  long resident = -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident < 0 ? -1 : resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Waits until `p` is idle and its worker threads are exactly its size(): the size last set,
// once the threads a shrink made surplus have left. A count that never settles is a hang, which
// the watchdog reports (this loop does not count as progress).
inline void check_idle_threads(background::pool& p) {
  p.wait();
  const char* const previous = stats.phase_.exchange("waiting for an idle pool's threads");
  progress();
  while (background::detail::worker_threads(p) != p.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stats.phase_.store(previous);
}

// Waits until this process has exactly `expected` threads again: a thread left behind by a
// destroyed pool is a hang, which the watchdog reports with the phase below.
inline void check_process_threads(long expected) {
  enter_phase("waiting until no thread of a destroyed pool is left");
  for (;;) {
    const long n = process_threads();
    if (n == expected || n < 0) return;
    if (n < expected) {
      check(false, "the process's threads are the ones expected", "%ld threads, %ld expected", n,
            expected);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Checks that nothing a test made is left: waits until every tracked pool is destroyed and every
// tracked thread has exited, then the live objects must be exactly 0.
inline void check_nothing_left() {
  enter_phase("waiting for tracked pools to be destroyed");
  wait_until_zero(stats.tracked_pools_);
  enter_phase("waiting for threads of pools destroyed from inside to exit");
  wait_until_zero(stats.tracked_threads_);
  background::wait();
  enter_phase("final checks");
  const long live = stats.live_.load();
  check(live == 0, "every object captured or returned by a task is freed",
        "%ld live objects left after all pools were destroyed and all futures dropped", live);
}

// The exit status: 0 if every invariant held, else 1 with a line naming the first invariant.
inline int finish(const char* program) {
  const long violations = stats.violations_.load();
  if (violations == 0) {
    std::printf("%s: all invariants held (seed %llu)\n", program,
                static_cast<unsigned long long>(stats.seed_));
    return 0;
  }
  std::fprintf(stderr, "%s: FAILED (seed %llu): %ld violations; first: %s\n", program,
               static_cast<unsigned long long>(stats.seed_), violations,
               stats.first_violation_.load());
  return 1;
}

}  // namespace stress

#endif  // BACKGROUND_TESTS_STRESS_SUPPORT_HPP
