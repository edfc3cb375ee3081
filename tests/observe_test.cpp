// Tests for seeing into pools: worker names and hooks (pool_options), pool::stats() and
// background::stats(), and background::this_pool().
#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <latch>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "background/background.hpp"
#include "background/detail/testing.hpp"
#include "support/blocked_workers.hpp"
#include "support/error_log.hpp"
#include "support/thread_name.hpp"

namespace {

using background::testing::blocked_workers;
using background::testing::error_log;
using background::testing::thread_name;

class ObserveTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t size() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, ObserveTest, ::testing::Values(1, 2, 4, 8, 64));

// A generous bound for loops that poll for something another thread is about to do (a worker
// leaving after a shrink, a worker marking itself busy): a hang detector, not a timing measure.
constexpr int poll_limit = 1'000'000;

// Yields until `done()` or poll_limit tries; returns done().
template <class Done>
bool poll_until(Done done) {
  for (int i = 0; i < poll_limit; ++i) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

background::pool_options named(std::string name) {
  background::pool_options options;
  options.name = std::move(name);
  return options;
}

// "<prefix>-0" ... "<prefix>-<count - 1>".
std::multiset<std::string> names(const std::string& prefix, std::size_t count) {
  std::multiset<std::string> r;
  for (std::size_t k = 0; k < count; ++k) r.insert(prefix + "-" + std::to_string(k));
  return r;
}

// Runs one task on each of the pool's `count` workers at once (each waits for all the others),
// and returns the name of every worker's thread.
std::multiset<std::string> worker_names(background::pool& pool, std::size_t count) {
  std::latch all{static_cast<std::ptrdiff_t>(count)};
  std::mutex mutex;
  std::multiset<std::string> seen;
  std::vector<background::future<void>> futures;
  for (std::size_t i = 0; i < count; ++i) {
    futures.push_back(pool.run([&] {
      {
        std::lock_guard<std::mutex> lock(mutex);
        seen.insert(thread_name());
      }
      all.arrive_and_wait();
    }));
  }
  for (auto& f : futures) f.get();
  return seen;
}

// What the hooks of one pool saw, for the hook tests.
struct hook_log {
  std::mutex mutex;
  std::vector<std::size_t> started, stopped;
  std::vector<std::string> problems;  // anything a hook found wrong, checked by the test
  std::atomic<int> starts{0}, stops{0};

  void problem(std::string what) {
    std::lock_guard<std::mutex> lock(mutex);
    problems.push_back(std::move(what));
  }
};

// The index that on_thread_start gave this thread, if it ran here.
thread_local std::size_t hooked_index = SIZE_MAX;

// Options whose hooks record into `log` and check what they can see on their own thread.
background::pool_options logging_options(const std::string& name, hook_log& log) {
  background::pool_options options;
  options.name = name;
  options.on_thread_start = [&log, name](std::size_t k) {
    if (hooked_index != SIZE_MAX) log.problem("on_thread_start twice on one thread");
    hooked_index = k;
    if (thread_name() != name + "-" + std::to_string(k)) {
      log.problem("on_thread_start(" + std::to_string(k) + ") on thread " + thread_name());
    }
    if (background::this_pool() == nullptr) log.problem("this_pool() null in on_thread_start");
    {
      std::lock_guard<std::mutex> lock(log.mutex);
      log.started.push_back(k);
    }
    ++log.starts;
  };
  options.on_thread_stop = [&log, name](std::size_t k) {
    if (hooked_index != k) {
      log.problem("on_thread_stop(" + std::to_string(k) + ") on the thread started with " +
                  std::to_string(hooked_index));
    }
    if (thread_name() != name + "-" + std::to_string(k)) {
      log.problem("on_thread_stop(" + std::to_string(k) + ") on thread " + thread_name());
    }
    {
      std::lock_guard<std::mutex> lock(log.mutex);
      log.stopped.push_back(k);
    }
    ++log.stops;
  };
  return options;
}

// ---- Worker names ---------------------------------------------------------------------------

TEST_P(ObserveTest, WorkersAreNamedAfterThePool) {
  background::pool pool{size(), named("x")};
  // Indices are distinct among live workers and below the size: with every worker in a task at
  // once, they are exactly 0 .. size - 1.
  EXPECT_EQ(worker_names(pool, size()), names("x", size()));
}

TEST_P(ObserveTest, DefaultNameIsBackground) {
  background::pool pool{size()};
  EXPECT_EQ(worker_names(pool, size()), names("background", size()));
  background::pool empty_name{size(), named("")};
  EXPECT_EQ(worker_names(empty_name, size()), names("background", size()));
}

TEST(ObserveDefaultPoolTest, DefaultPoolWorkersAreNamedBackground) {
  const std::size_t n = background::n;
  EXPECT_EQ(worker_names(background::default_pool(), n), names("background", n));
  EXPECT_EQ(background::run(thread_name).get().rfind("background-", 0), 0u);
}

TEST_P(ObserveTest, ALongNameIsCutKeepingTheNumber) {
  const std::string name = "averyveryverylongpoolname";
  background::pool pool{size(), named(name)};
  std::multiset<std::string> expected;
  for (std::size_t k = 0; k < size(); ++k) {
    const std::string number = "-" + std::to_string(k);
    expected.insert(name.substr(0, 15 - number.size()) + number);
  }
  const auto seen = worker_names(pool, size());
  EXPECT_EQ(seen, expected);
  for (const auto& s : seen) EXPECT_EQ(s.size(), 15u) << s;
  // Exactly 15 fits as it is; 14 characters plus "-10" is cut by two.
  background::pool fifteen{1, named("fifteen-chars")};  // 13 + "-0"
  EXPECT_EQ(worker_names(fifteen, 1), names("fifteen-chars", 1));
}

TEST_P(ObserveTest, IndicesAreReusedAfterAShrink) {
  background::pool pool{size(), named("r")};
  pool.resize(size() + 3);
  EXPECT_EQ(worker_names(pool, size() + 3), names("r", size() + 3));
  pool.resize(1);
  ASSERT_TRUE(poll_until([&] { return background::detail::worker_threads(pool) == 1; }));
  EXPECT_EQ(worker_names(pool, 1).size(), 1u);
  // The new workers take the smallest free indices: 0 .. size + 2 again, none twice.
  pool.resize(size() + 3);
  EXPECT_EQ(worker_names(pool, size() + 3), names("r", size() + 3));
}

// ---- on_thread_start and on_thread_stop -----------------------------------------------------

TEST_P(ObserveTest, HooksRunOnceOnEachWorkerWithItsIndex) {
  hook_log log;
  std::vector<std::size_t> seen_by_tasks;
  {
    background::pool pool{size(), logging_options("h", log)};
    // Each worker runs one task; by then its on_thread_start has run, on that thread.
    std::latch all{static_cast<std::ptrdiff_t>(size())};
    std::mutex mutex;
    std::vector<background::future<void>> futures;
    for (std::size_t i = 0; i < size(); ++i) {
      futures.push_back(pool.run([&] {
        {
          std::lock_guard<std::mutex> lock(mutex);
          seen_by_tasks.push_back(hooked_index);
        }
        all.arrive_and_wait();
      }));
    }
    for (auto& f : futures) f.get();
    EXPECT_EQ(log.starts, static_cast<int>(size()));
    EXPECT_EQ(log.stops, 0);
  }  // joined: every worker has called on_thread_stop
  EXPECT_EQ(log.starts, static_cast<int>(size()));
  EXPECT_EQ(log.stops, static_cast<int>(size()));
  std::vector<std::size_t> all_indices(size());
  for (std::size_t k = 0; k < size(); ++k) all_indices[k] = k;
  std::sort(seen_by_tasks.begin(), seen_by_tasks.end());
  std::sort(log.started.begin(), log.started.end());
  std::sort(log.stopped.begin(), log.stopped.end());
  EXPECT_EQ(seen_by_tasks, all_indices);  // no task ran before its worker's hook
  EXPECT_EQ(log.started, all_indices);
  EXPECT_EQ(log.stopped, all_indices);
  EXPECT_EQ(log.problems, std::vector<std::string>{});
}

TEST_P(ObserveTest, OnThreadStopRunsAsWorkersLeaveOnAShrink) {
  hook_log log;
  const std::size_t big = size() + 1;
  {
    background::pool pool{big, logging_options("s", log)};
    EXPECT_EQ(worker_names(pool, big).size(), big);  // every start hook has run
    pool.resize(1);
    ASSERT_TRUE(poll_until([&] { return log.stops.load() == static_cast<int>(big - 1); }));
    // A leaving worker runs its stop hook, then gives its index back and counts as gone: wait
    // for that too, or the regrowth below could find an index still taken (resize() does not
    // wait for leaving workers, by design).
    ASSERT_TRUE(poll_until([&] { return background::detail::worker_threads(pool) == 1; }));
    EXPECT_EQ(log.stops, static_cast<int>(big - 1));  // no more than the surplus left
    {
      std::lock_guard<std::mutex> lock(log.mutex);
      EXPECT_EQ(std::set<std::size_t>(log.stopped.begin(), log.stopped.end()).size(), big - 1);
    }
    pool.resize(big);
    EXPECT_EQ(worker_names(pool, big), names("s", big));
    EXPECT_EQ(log.starts, static_cast<int>(2 * big - 1));
    EXPECT_EQ(log.stops, static_cast<int>(big - 1));
  }
  EXPECT_EQ(log.starts, static_cast<int>(2 * big - 1));
  EXPECT_EQ(log.stops, log.starts.load());
  EXPECT_EQ(log.problems, std::vector<std::string>{});
}

TEST_P(ObserveTest, OnThreadStopRunsForEveryWorkerByTheTimeShutdownReturns) {
  hook_log log;
  background::pool pool{size(), logging_options("d", log)};
  EXPECT_EQ(worker_names(pool, size()).size(), size());
  pool.shutdown();
  EXPECT_EQ(log.stops, static_cast<int>(size()));
  EXPECT_EQ(log.problems, std::vector<std::string>{});
}

TEST_P(ObserveTest, ThrowingHooksGoToOnErrorAndThePoolWorks) {
  error_log errors;
  {
    background::pool_options options;
    options.name = "t";
    options.on_thread_start = [](std::size_t) { throw std::runtime_error("start"); };
    options.on_thread_stop = [](std::size_t) { throw std::runtime_error("stop"); };
    background::pool pool{size(), std::move(options)};
    std::vector<background::future<int>> futures;
    for (int i = 0; i < 200; ++i) futures.push_back(pool.run([i] { return i; }));
    for (int i = 0; i < 200; ++i) EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i);
    EXPECT_EQ(worker_names(pool, size()), names("t", size()));
    EXPECT_EQ(errors.count(), static_cast<int>(size()));  // every worker has started
  }
  EXPECT_EQ(errors.count(), static_cast<int>(2 * size()));
}

TEST(ObserveHookDeathTest, OnThreadStartMayAskItsPoolForItsSize) {
  // A hook that asks this_pool() for anything but its address. Run in a child: when it
  // fails, it crashes.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::atomic<int> wrong{0};
        background::pool_options options;
        options.on_thread_start = [&wrong](std::size_t) {
          if (background::this_pool()->size() != 64) ++wrong;
        };
        // Zeroed storage: a pool read before its constructor finished shows up as null.
        alignas(background::pool) unsigned char storage[sizeof(background::pool)] = {};
        auto* pool = new (storage) background::pool(64, std::move(options));
        (void)worker_names(*pool, 64);
        pool->~pool();
        std::exit(wrong.load() == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- pool::stats() --------------------------------------------------------------------------

TEST_P(ObserveTest, StatsAreExactAfterWait) {
  error_log errors;
  background::pool pool{size()};
  {
    const auto s = pool.stats();
    EXPECT_EQ(s.threads, size());
    EXPECT_EQ(s.busy, 0u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.completed, 0u);
    EXPECT_EQ(s.failed, 0u);
    EXPECT_EQ(s.cancelled, 0u);
  }
  constexpr int cancelled = 7;
  {
    blocked_workers blocked{pool, size()};
    for (int i = 0; i < cancelled; ++i) EXPECT_TRUE(pool.run([] {}).cancel());
  }
  constexpr int ok = 300;
  constexpr int throwing = 40;
  auto square = pool.task([](int x) { return x * x; });
  std::vector<background::future<int>> futures;
  for (int i = 0; i < ok; ++i)
    futures.push_back(i % 2 == 0 ? pool.run([i] { return i; }) : square(i));
  for (int i = 0; i < throwing; ++i) {
    if (i % 2 == 0) {
      futures.push_back(pool.run([]() -> int { throw std::runtime_error("x"); }));
    } else {
      (void)pool.run([] { throw std::runtime_error("dropped"); });  // reported, and counted
    }
  }
  pool.wait();
  const auto s = pool.stats();
  EXPECT_EQ(s.threads, size());
  EXPECT_EQ(s.busy, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.completed, static_cast<std::uint64_t>(ok) + size());  // and the blockers
  EXPECT_EQ(s.failed, static_cast<std::uint64_t>(throwing));
  EXPECT_EQ(s.cancelled, static_cast<std::uint64_t>(cancelled));
  for (auto& f : futures) (void)f.exception();
  pool.wait();
  EXPECT_EQ(errors.count(), throwing / 2);
}

TEST_P(ObserveTest, StatsCountContinuations) {
  background::pool pool{size()};
  constexpr int chains = 50;
  std::vector<background::future<int>> futures;
  for (int i = 0; i < chains; ++i) {
    futures.push_back(pool.run([i] { return i; }).then([](int v) { return v + 1; }));
    // A failed task's continuation finishes failed too.
    futures.push_back(
        pool.run([]() -> int { throw std::runtime_error("x"); }).then([](int v) { return v; }));
    // So does one that throws itself.
    futures.push_back(
        pool.run([] { return 1; }).then([](int) -> int { throw std::runtime_error("then"); }));
  }
  for (auto& f : futures) (void)f.exception();
  pool.wait();
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, static_cast<std::uint64_t>(chains * 3));
  EXPECT_EQ(s.failed, static_cast<std::uint64_t>(chains * 3));
  EXPECT_EQ(s.cancelled, 0u);
}

TEST_P(ObserveTest, StatsCountACancelledTasksContinuationsAsCancelled) {
  // pool_stats counts continuations by outcome: one cancelled with its antecedent is cancelled.
  background::pool pool{size()};
  {
    blocked_workers blocked{pool, size()};
    auto a = pool.run([] { return 1; });
    auto c = a.then([](int v) { return v; });
    EXPECT_TRUE(a.cancel());
    EXPECT_THROW(c.get(), background::cancelled);
  }
  pool.wait();
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, size());
  EXPECT_EQ(s.cancelled, 2u);
}

TEST_P(ObserveTest, StatsCountPostedTasksByOutcome) {
  // post() queues no task state (post_node.hpp), but its tasks are counted like the others:
  // completed, failed, or cancelled by shutdown(cancel_pending).
  error_log errors;
  background::pool pool{size()};
  constexpr int ok = 300;
  constexpr int throwing = 40;
  constexpr int cancelled = 25;
  for (int i = 0; i < ok; ++i) pool.post([] {});
  for (int i = 0; i < throwing; ++i) pool.post([] { throw std::runtime_error("posted"); });
  pool.wait();
  {
    const auto s = pool.stats();
    EXPECT_EQ(s.completed, static_cast<std::uint64_t>(ok));
    EXPECT_EQ(s.failed, static_cast<std::uint64_t>(throwing));
    EXPECT_EQ(s.cancelled, 0u);
  }
  // Every worker in a stoppable call, so that the next posts stay queued until the shutdown
  // cancels them.
  std::latch running{static_cast<std::ptrdiff_t>(size())};
  for (std::size_t i = 0; i < size(); ++i) {
    pool.post([&running](std::stop_token stop) {
      running.count_down();
      while (!stop.stop_requested()) std::this_thread::yield();
    });
  }
  running.wait();
  for (int i = 0; i < cancelled; ++i) pool.post([] {});
  pool.shutdown(background::cancel_pending);
  const auto s = pool.stats();
  EXPECT_EQ(s.completed, static_cast<std::uint64_t>(ok) + size());  // and the stoppable calls
  EXPECT_EQ(s.failed, static_cast<std::uint64_t>(throwing));
  EXPECT_EQ(s.cancelled, static_cast<std::uint64_t>(cancelled));
  EXPECT_EQ(errors.count(), throwing);
}

TEST_P(ObserveTest, ThreadsFollowTheSize) {
  background::pool pool{size()};
  EXPECT_EQ(pool.stats().threads, size());
  pool.resize(size() + 2);  // growing starts them before it returns
  EXPECT_EQ(pool.stats().threads, size() + 2);
  EXPECT_EQ(pool.stats().threads, pool.size());
  pool.resize(1);  // shrinking does not wait: poll until they have left
  ASSERT_TRUE(poll_until([&] { return background::detail::worker_threads(pool) == 1; }));
  EXPECT_EQ(pool.stats().threads, 1u);
  EXPECT_EQ(pool.stats().threads, pool.size());
  pool.resize(size());
  EXPECT_EQ(pool.stats().threads, size());
}

TEST_P(ObserveTest, BusyCountsTheWorkersInTasks) {
  background::pool pool{size()};
  std::set<std::size_t> counts{1, size() / 2, size()};
  counts.erase(0);
  for (const std::size_t b : counts) {
    {
      blocked_workers blocked{pool, b};
      std::size_t busy = 0;
      bool over = false;
      ASSERT_TRUE(poll_until([&] {
        busy = pool.stats().busy;
        over = over || busy > b;
        return busy == b;
      })) << "busy "
          << busy << ", expected " << b;
      EXPECT_FALSE(over);
      // The others are idle: it stays at b.
      for (int i = 0; i < 100; ++i) ASSERT_EQ(pool.stats().busy, b);
      EXPECT_EQ(pool.stats().threads, size());
    }
    pool.wait();
    EXPECT_EQ(pool.stats().busy, 0u);
  }
}

TEST_P(ObserveTest, QueuedCountsTheTasksBehindBlockedWorkers) {
  background::pool pool{size()};
  // Work first, so that workers have batches to settle: wait() settles them.
  for (int i = 0; i < 500; ++i) pool.run([] {});
  pool.wait();
  EXPECT_EQ(pool.stats().queued, 0u);
  constexpr std::size_t queued = 100;
  std::vector<background::future<void>> futures;
  {
    blocked_workers blocked{pool, size()};
    ASSERT_TRUE(poll_until([&] { return pool.stats().busy == size(); }));
    EXPECT_EQ(pool.stats().queued, 0u);
    for (std::size_t i = 0; i < queued; ++i) futures.push_back(pool.run([] {}));
    EXPECT_EQ(pool.stats().queued, queued);
    EXPECT_EQ(pool.stats().busy, size());
    // Cancelled ones are no longer queued.
    for (std::size_t i = 0; i < 10; ++i) EXPECT_TRUE(futures[i].cancel());
    EXPECT_EQ(pool.stats().queued, queued - 10);
  }
  pool.wait();
  const auto s = pool.stats();
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.busy, 0u);
  EXPECT_EQ(s.completed, 500 + queued - 10 + size());
  EXPECT_EQ(s.cancelled, 10u);
}

TEST_P(ObserveTest, CountsSurviveAShrink) {
  // Every worker completes, fails and cancels something of its own, then all but one leave.
  const std::size_t big = size() + 1;
  background::pool pool{big};
  std::latch started{static_cast<std::ptrdiff_t>(big)};
  std::latch release{1};
  std::latch cancelled_all{static_cast<std::ptrdiff_t>(big)};
  std::vector<background::future<void>> victims;
  std::vector<background::future<void>> blockers;
  for (std::size_t i = 0; i < big; ++i) {
    blockers.push_back(pool.run([&, i] {
      started.count_down();
      release.wait();
      EXPECT_TRUE(victims[i].cancel());  // counted by this worker
      cancelled_all.arrive_and_wait();
      throw std::runtime_error("blocker");
    }));
  }
  started.wait();
  for (std::size_t i = 0; i < big; ++i) victims.push_back(pool.run([] {}));
  release.count_down();
  for (auto& b : blockers) EXPECT_THROW(b.get(), std::runtime_error);
  constexpr int ok = 200;
  for (int i = 0; i < ok; ++i) pool.run([] {});
  pool.wait();
  const auto before = pool.stats();
  EXPECT_EQ(before.completed, static_cast<std::uint64_t>(ok));
  EXPECT_EQ(before.failed, big);
  EXPECT_EQ(before.cancelled, big);
  pool.resize(1);
  ASSERT_TRUE(poll_until([&] { return background::detail::worker_threads(pool) == 1; }));
  const auto after = pool.stats();
  EXPECT_EQ(after.threads, 1u);
  EXPECT_EQ(after.completed, before.completed);
  EXPECT_EQ(after.failed, before.failed);
  EXPECT_EQ(after.cancelled, before.cancelled);
  pool.shutdown();  // and the last one's, once it has left too
  const auto last = pool.stats();
  EXPECT_EQ(last.threads, 0u);
  EXPECT_EQ(last.completed, before.completed);
  EXPECT_EQ(last.failed, before.failed);
  EXPECT_EQ(last.cancelled, before.cancelled);
}

// Holds the workers of one pool at their next park until released (see
// StatsDuringShutdownKeepTheCounts).
std::atomic<background::pool*> park_target{nullptr};
std::atomic<bool> park_holding{false};
std::atomic<int> park_held{0};

void hold_parking_workers(background::detail::park_point point) {
  if (point != background::detail::park_point::before_key) return;
  if (!park_holding.load() || background::this_pool() != park_target.load()) return;
  ++park_held;
  while (park_holding.load()) std::this_thread::yield();
  --park_held;
}

TEST_P(ObserveTest, StatsDuringShutdownKeepTheCounts) {
  // A thread that polls stats() while shutdown() joins the workers must not see the counts of
  // workers that have not left yet disappear. The park hook holds the idle workers just before
  // they park, so the join waits for the test to let them go.
  background::detail::set_park_hook(hold_parking_workers);
  {
    background::pool pool{size()};
    park_target = &pool;
    constexpr int ok = 100;
    for (int i = 0; i < ok; ++i) pool.run([] {});
    pool.wait();
    {
      // Armed while every worker is in a task, so that none is caught on its way to park
      // before it has taken one; each is held at its next park, once the tasks end.
      blocked_workers blocked{pool, size()};
      park_holding = true;
    }
    const bool all_held = poll_until([&] { return park_held.load() == static_cast<int>(size()); });
    EXPECT_TRUE(all_held);
    std::thread closer([&pool] { pool.shutdown(); });
    // resize() throws once the shutdown has drained and stopped the workers (under the lock
    // that stats() takes): from then on it only joins them.
    const bool stopped = poll_until([&] {
      try {
        pool.resize(size());
        return false;
      } catch (const background::shutdown_error&) {
        return true;
      }
    });
    const auto during = pool.stats();
    park_holding = false;
    closer.join();
    park_target = nullptr;
    const auto after = pool.stats();
    EXPECT_TRUE(stopped);
    EXPECT_EQ(after.completed, static_cast<std::uint64_t>(ok) + size());
    // `threads` may already leave them out (pool.hpp says so); the finished tasks stay counted.
    EXPECT_EQ(during.completed, after.completed);
  }
  background::detail::set_park_hook(nullptr);
}

TEST(ObserveDefaultPoolTest, BackgroundStatsAreTheDefaultPools) {
  background::wait();
  const auto before = background::stats();
  EXPECT_EQ(before.threads, static_cast<std::size_t>(background::n));
  EXPECT_EQ(before.threads, background::default_pool().stats().threads);
  constexpr int tasks = 100;
  for (int i = 0; i < tasks; ++i) background::run([] {});
  background::pool other{2};
  for (int i = 0; i < tasks; ++i) other.run([] {});  // not the default pool's
  other.wait();
  background::wait();
  const auto after = background::stats();
  EXPECT_EQ(after.completed - before.completed, static_cast<std::uint64_t>(tasks));
  EXPECT_EQ(after.failed, before.failed);
  EXPECT_EQ(after.queued, 0u);
  EXPECT_EQ(after.busy, 0u);
  EXPECT_EQ(other.stats().completed, static_cast<std::uint64_t>(tasks));
}

// ---- this_pool() ----------------------------------------------------------------------------

TEST(ObserveThisPoolTest, NullOffThePools) {
  EXPECT_EQ(background::this_pool(), nullptr);
  background::pool* seen = &background::default_pool();
  std::thread([&seen] { seen = background::this_pool(); }).join();
  EXPECT_EQ(seen, nullptr);
}

TEST_P(ObserveTest, ThisPoolInATaskIsItsPool) {
  background::pool pool{size()};
  EXPECT_EQ(pool.run(background::this_pool).get(), &pool);
  EXPECT_EQ(pool.task([] { return background::this_pool(); })().get(), &pool);
  EXPECT_EQ(pool.run([](std::stop_token) { return background::this_pool(); }).get(), &pool);
  EXPECT_EQ(background::run(background::this_pool).get(), &background::default_pool());
  EXPECT_EQ(background::this_pool(), nullptr);
}

TEST_P(ObserveTest, ThisPoolInAContinuation) {
  background::pool pool{size()};
  auto a = pool.run([] { return 1; });
  EXPECT_EQ(a.then([](int) { return background::this_pool(); }).get(), &pool);
  EXPECT_EQ(a.then([](background::future<int>) { return background::this_pool(); }).get(), &pool);
  background::pool other{1};
  EXPECT_EQ(a.then(other, [](int) { return background::this_pool(); }).get(), &other);
  auto d = background::run([] {}).then([] { return background::this_pool(); });
  EXPECT_EQ(d.get(), &background::default_pool());
}

TEST_P(ObserveTest, ThisPoolInCallbacks) {
  background::pool pool{size()};
  std::atomic<int> on_pool{0};
  std::atomic<int> off_pool{0};
  std::atomic<int> elsewhere{0};
  pool.callback([&](const background::outcome& o) {
    background::pool* p = background::this_pool();
    if (p == &pool) {
      ++on_pool;
    } else if (p == nullptr && o.cancelled()) {
      ++off_pool;  // cancelled on this (main) thread
    } else {
      ++elsewhere;
    }
  });
  for (int i = 0; i < 50; ++i) pool.run([] {});
  pool.wait();
  {
    blocked_workers blocked{pool, size()};
    EXPECT_TRUE(pool.run([] {}).cancel());
  }
  pool.wait();
  EXPECT_EQ(on_pool, 50 + static_cast<int>(size()));
  EXPECT_EQ(off_pool, 1);
  EXPECT_EQ(elsewhere, 0);
}

TEST_P(ObserveTest, ThisPoolInATaskRunInlineByAnotherPoolsWorker) {
  // A task of `b` that a worker of `a` runs inline while it waits for it sees `a`: this_pool()
  // names the pool whose worker is calling (as pool.hpp says), not the pool the task was
  // submitted to.
  background::pool a{size(), named("a")};
  background::pool b{1, named("b")};
  blocked_workers blocked{b, 1};  // so that b's task stays queued until a's worker takes it
  auto outer = a.run([&b] {
    auto inner = b.run([] { return std::make_pair(background::this_pool(), thread_name()); });
    return inner.get();
  });
  const auto [where, name] = outer.get();
  EXPECT_EQ(where, &a);
  EXPECT_EQ(name.rfind("a-", 0), 0u) << name;
}

}  // namespace
