// Tests for pool.hpp: running, resizing, nested waits, callbacks, shutdown and bad input.
#include "background/pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "background/detail/testing.hpp"
#include "background/error.hpp"
#include "support/counted.hpp"
#include "support/error_log.hpp"

namespace {

using background::testing::counted;
using background::testing::error_log;

class PoolTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t size() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, PoolTest, ::testing::Values(1, 2, 4, 8, 64));

TEST_P(PoolTest, EveryTaskRunsExactlyOnce) {
  constexpr int tasks = 5000;
  std::vector<std::atomic<int>> runs(tasks);
  background::pool pool{size()};
  for (int i = 0; i < tasks; ++i) pool.run([&runs, i] { ++runs[static_cast<std::size_t>(i)]; });
  pool.wait();
  for (int i = 0; i < tasks; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)], 1) << "task " << i;
}

TEST(PoolQueueTest, OneWorkerRunsABacklogBeyondTheRingInSubmissionOrder) {
  // 5000 tasks queued behind a blocked worker: past the ring (1024), the rest wait on the
  // overflow list, and a pop moves them back onto the ring. One worker runs them in order.
  background::pool pool{1};
  std::latch release{1};
  pool.run([&release] { release.wait(); });
  constexpr int tasks = 5000;
  std::vector<int> order;
  order.reserve(tasks);
  for (int i = 0; i < tasks; ++i) pool.run([&order, i] { order.push_back(i); });
  release.count_down();
  pool.wait();
  ASSERT_EQ(order.size(), std::size_t{tasks});
  for (int i = 0; i < tasks; ++i) ASSERT_EQ(order[static_cast<std::size_t>(i)], i) << "at " << i;
}

TEST(PoolQueueTest, OneWorkerKeepsSubmissionOrderWhileItDrainsABacklog) {
  // The worker has taken a few tasks off a full ring (it is held in the 10th) while older ones
  // wait on the overflow list; the tasks submitted now must queue behind those, not in the
  // ring cells it freed.
  background::pool pool{1};
  std::latch release{1};
  std::latch hold{1};
  std::atomic<bool> holding{false};
  pool.run([&release] { release.wait(); });
  constexpr int before = 3000;
  constexpr int tasks = 6000;
  std::vector<int> order;
  order.reserve(tasks);
  for (int i = 0; i < tasks; ++i) {
    if (i == before) {
      release.count_down();
      while (!holding.load()) std::this_thread::yield();
    }
    if (i == before + 100) hold.count_down();
    pool.run([&order, &hold, &holding, i] {
      order.push_back(i);
      if (i == 9) {
        holding.store(true);
        hold.wait();
      }
    });
  }
  pool.wait();
  ASSERT_EQ(order.size(), std::size_t{tasks});
  for (int i = 0; i < tasks; ++i) ASSERT_EQ(order[static_cast<std::size_t>(i)], i) << "at " << i;
}

TEST(PoolParkingTest, SubmitsThatRaceAWorkerGoingToSleepAlwaysWakeIt) {
  // Each submit comes after a pause of 0 to 120 us, spread over the time a worker out of work
  // searches before it parks, so that some land while it is parking. A lost wake-up leaves
  // the task queued with its only worker asleep: the bounded wait then fails (a hang
  // detector with a generous bound, not a timing measure).
  background::pool pool{1};
  std::uint64_t x = 88172645463325252ULL;  // xorshift: no <random> state to seed
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const auto pause = std::chrono::nanoseconds(static_cast<long>(x % 120'000));
    const auto until = std::chrono::steady_clock::now() + pause;
    while (std::chrono::steady_clock::now() < until) {
    }
    auto f = pool.run([] {});
    ASSERT_TRUE(f.wait_for(std::chrono::seconds(30)))
        << "a submit did not wake the worker, at " << i;
  }
}

TEST(PoolParkingTest, ASubmitBetweenAWorkersLastLookAndItsSleepWakesIt) {
  // The hook runs on the worker after its last look at the queues and before it sleeps; there
  // it lets the test submit a task and waits until the submit has returned (so the submit's
  // wake-up came and went before the worker sleeps). The worker must still see it: the event
  // count's key was read before the look.
  static std::atomic<int> armed{0};  // 1: the next park lets the test in; 2: submitted
  armed = 0;
  background::detail::set_park_hook([](background::detail::park_point point) {
    if (point != background::detail::park_point::before_sleep) return;
    int expected = 1;
    if (!armed.compare_exchange_strong(expected, 3)) return;  // 3: the test may submit now
    while (armed.load() != 2) std::this_thread::yield();
  });
  {
    background::pool pool{1};
    for (int round = 0; round < 20; ++round) {
      armed = 1;
      // The worker parks after this task, in the window (or already was about to park).
      (void)pool.run([] {});
      while (armed.load() != 3) std::this_thread::yield();  // the worker is in the window
      auto f = pool.run([] {});
      armed = 2;
      ASSERT_TRUE(f.wait_for(std::chrono::seconds(30))) << "the wake-up was lost, round " << round;
    }
  }
  background::detail::set_park_hook(nullptr);
}

// A gate that the park hook holds a worker at: armed, then the worker is inside, then let go.
struct park_gate {
  std::atomic<int> state{0};  // 0 idle, 1 armed, 2 a worker is held, 3 released
  void hold() {
    int expected = 1;
    if (!state.compare_exchange_strong(expected, 2)) return;
    while (state.load() != 3) std::this_thread::yield();
  }
  void wait_held() const {
    while (state.load() != 2) std::this_thread::yield();
  }
};

TEST(PoolParkingTest, ARefillBetweenAParkersTwoLooksStrandsNothing) {
  // Worker A comes to park while two tasks wait on the overflow list and the ring is empty
  // (worker B, which drained it, is held in a task). If A's last look reaches the ring before
  // the list, it is held between the two looks while B pops the first task and moves the second
  // onto the ring; A must then not sleep, since the first task waits for the second. (Found in
  // review: a look that read the ring first, then the list's size, saw both empty and slept.)
  // If A's look reads the list first it sees the tasks and takes the first itself: also fine.
  using background::detail::park_point;
  static park_gate at_start;
  static park_gate between_looks;
  at_start.state = 0;
  between_looks.state = 0;
  background::detail::set_park_hook([](park_point point) {
    if (point == park_point::before_key) at_start.hold();
    if (point == park_point::between_looks) between_looks.hold();
  });
  {
    background::pool pool{2};
    std::latch b_running{1};
    std::latch b_go{1};
    std::latch last_running{1};
    std::latch last_go{1};
    std::atomic<bool> x1_running{false};
    std::latch x2_ran{1};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both start out parked
    at_start.state = 1;
    pool.run([&] {  // B: held here while the ring fills
      b_running.count_down();
      b_go.wait();
    });
    b_running.wait();
    (void)pool.run([] {});  // A runs it, then comes to park: held at its start
    at_start.wait_held();
    for (std::size_t i = 1; i < 1024; ++i) (void)pool.run([] {});
    pool.run([&] {  // the ring's last cell: B stops here, with the ring empty behind it
      last_running.count_down();
      last_go.wait();
    });
    auto x1 = pool.run([&] {  // on the overflow list
      x1_running = true;
      x2_ran.wait();
    });
    (void)pool.run([&] { x2_ran.count_down(); });  // on the overflow list, behind x1
    b_go.count_down();                             // B drains the ring
    last_running.wait();
    between_looks.state = 1;
    at_start.state = 3;  // A reads its key, counts itself sleeping and looks
    while (between_looks.state.load() != 2 && !x1_running.load()) std::this_thread::yield();
    const bool held = between_looks.state.load() == 2;
    last_go.count_down();  // B pops x1 (or, if A took it, x2) from the list
    if (held) {
      while (!x1_running.load()) std::this_thread::yield();  // B moved x2 onto the ring
    }
    // A finishes its look; and if it was never held, the gate must not catch a later park
    // (with nobody left to let it go, the pool's destructor would wait for it forever).
    between_looks.state = 3;
    const bool finished = x1.wait_for(std::chrono::seconds(10));
    background::detail::set_park_hook(nullptr);
    if (!finished) (void)pool.run([] {});  // wakes A, so that the test can end
    x1.wait();
    EXPECT_TRUE(finished) << "the second task sat on the ring while a worker slept";
  }
  background::detail::set_park_hook(nullptr);
}

TEST_P(PoolTest, ABacklogBeyondTheRingFromTwoProducersRunsExactlyOnce) {
  // Every worker is blocked while two producers queue 40000 tasks: most go to the overflow
  // list, and come back through the ring once the workers are released.
  background::pool pool{size()};
  std::latch release{1};
  for (std::size_t w = 0; w < size(); ++w) pool.run([&release] { release.wait(); });
  constexpr int per_producer = 20000;
  std::vector<std::atomic<int>> runs(2 * per_producer);
  auto produce = [&pool, &runs](int base) {
    for (int i = base; i < base + per_producer; ++i) {
      pool.run([&runs, i] { ++runs[static_cast<std::size_t>(i)]; });
    }
  };
  std::thread a(produce, 0);
  std::thread b(produce, per_producer);
  a.join();
  b.join();
  release.count_down();
  pool.wait();
  for (std::size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << "task " << i;
}

TEST_P(PoolTest, TaskFunctionSubmitsEachCall) {
  background::pool pool{size()};
  auto square = pool.task([](int x) { return x * x; });
  std::vector<background::future<int>> results;
  for (int i = 0; i < 100; ++i) results.push_back(square(i));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * i);
}

TEST_P(PoolTest, TaskFunctionSharesAMoveOnlyCallable) {
  background::pool pool{size()};
  auto add = pool.task([base = std::make_unique<int>(100)](int x) { return *base + x; });
  EXPECT_EQ(add(1).get(), 101);
  EXPECT_EQ(add(2).get(), 102);
  auto copy = add;  // copies share the callable
  EXPECT_EQ(copy(3).get(), 103);
}

TEST_P(PoolTest, RunsUpToSizeTasksAtOnce) {
  // All `size()` workers must be able to run at the same time: each task waits for all.
  background::pool pool{size()};
  std::latch all_started{static_cast<std::ptrdiff_t>(size())};
  std::vector<background::future<void>> futures;
  for (std::size_t i = 0; i < size(); ++i) {
    futures.push_back(pool.run([&all_started] { all_started.arrive_and_wait(); }));
  }
  for (auto& f : futures) f.get();
}

TEST_P(PoolTest, NestedWaitCompletes) {
  background::pool pool{size()};
  auto outer = pool.run([&pool] {
    auto inner = pool.run([] { return 21; });
    return inner.get() * 2;
  });
  EXPECT_EQ(outer.get(), 42);
}

TEST_P(PoolTest, NestedWaitOnAContinuationCompletes) {
  background::pool pool{size()};
  auto outer = pool.run([&pool] {
    return pool.run([] { return 1; })
        .then([](int v) { return v + 1; })
        .then([](int v) { return v * 10; })
        .get();
  });
  EXPECT_EQ(outer.get(), 20);
}

TEST(PoolNestedTest, WaitOnATwoLevelChainWakesForTheMiddleLink) {
  // W1 waits on c = a.then().then() while a runs on W0; then W0 is taken by a task that waits
  // for W1's. The middle link becomes queued only when a finishes: W1 must wake up for it.
  background::pool pool{2};
  std::latch release_a{1};
  std::latch chain_built{1};
  auto a = pool.run([&release_a] {
    release_a.wait();
    return 1;
  });
  auto t0 = pool.run([&a, &chain_built] {
    auto b = a.then([](int x) { return x + 1; });
    auto c = std::move(b).then([](int x) { return x + 1; });
    chain_built.count_down();
    return c.get();
  });
  chain_built.wait();
  auto t1 = pool.run([&t0] { return t0.get(); });  // queued before the middle link
  release_a.count_down();
  EXPECT_EQ(t1.get(), 3);
}

int fib(background::pool& pool, int n) {
  if (n < 2) return n;
  auto a = pool.run(fib, std::ref(pool), n - 1);
  auto b = pool.run(fib, std::ref(pool), n - 2);
  return a.get() + b.get();
}

TEST_P(PoolTest, RecursiveForkJoinCompletes) {
  background::pool pool{size()};
  EXPECT_EQ(pool.run(fib, std::ref(pool), 18).get(), 2584);
}

TEST_P(PoolTest, EveryWorkerBlockedInNestedWaits) {
  // Every worker waits on a task that is queued behind the others.
  background::pool pool{size()};
  std::latch all_waiting{static_cast<std::ptrdiff_t>(size())};
  std::vector<background::future<int>> outers;
  for (std::size_t i = 0; i < size(); ++i) {
    outers.push_back(pool.run([&pool, &all_waiting, i] {
      all_waiting.arrive_and_wait();  // now no worker is free
      return pool.run([i] { return static_cast<int>(i); }).get();
    }));
  }
  for (std::size_t i = 0; i < size(); ++i) EXPECT_EQ(outers[i].get(), static_cast<int>(i));
}

// With more than one worker, tasks that block for a long time (on a latch the test holds) hold
// only their own workers: every other task still runs, on the one worker left free.
class PoolBlockedTaskTest : public PoolTest {};

INSTANTIATE_TEST_SUITE_P(PoolSizesAboveOne, PoolBlockedTaskTest, ::testing::Values(2, 4, 8, 64));

// Every worker parked, then a burst of as many tasks as workers that can only finish together:
// each task must find a worker of its own, so the burst must wake them all (a submit that sees
// a searching worker wakes nobody; the searcher passes the search on when it finds work).
TEST_P(PoolBlockedTaskTest, BurstWakesAsManyParkedWorkersAsItNeeds) {
  background::pool pool{size()};
  for (int round = 0; round < 20; ++round) {
    pool.wait();
    // Long enough for the workers to stop searching and park (they search for ~50 us). If
    // they have not, the round is merely easier.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::latch all{static_cast<std::ptrdiff_t>(size())};
    std::vector<background::future<void>> burst;
    for (std::size_t i = 0; i < size(); ++i) {
      burst.push_back(pool.run([&all] { all.arrive_and_wait(); }));
    }
    for (auto& f : burst) f.get();  // a worker left asleep is a hang here, failed by timeout
  }
}

TEST_P(PoolBlockedTaskTest, BlockedTasksDoNotStopTheOthers) {
  constexpr int others = 1000;
  background::pool pool{size()};
  const auto blocked_count = static_cast<std::ptrdiff_t>(size() - 1);
  std::latch all_blocked{blocked_count};
  std::latch release{1};
  std::vector<background::future<int>> blocked;
  for (std::ptrdiff_t i = 0; i < blocked_count; ++i) {
    blocked.push_back(pool.run([&all_blocked, &release] {
      all_blocked.count_down();
      release.wait();
      return 1;
    }));
  }
  all_blocked.wait();  // every worker but one is held from now on
  std::vector<background::future<int>> results;
  for (int i = 0; i < others; ++i) results.push_back(pool.run([i] { return i * 2; }));
  // The test thread is no worker, so it never runs a task itself: the free worker runs them.
  for (int i = 0; i < others; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * 2);
  for (const auto& f : blocked) EXPECT_FALSE(f.done());  // still blocked all along
  release.count_down();
  for (auto& f : blocked) EXPECT_EQ(f.get(), 1);
}

TEST_P(PoolTest, ResizeChangesSize) {
  background::pool pool{size()};
  EXPECT_EQ(pool.size(), size());
  pool.resize(3);
  EXPECT_EQ(pool.size(), 3u);
  pool.resize(size());
  EXPECT_EQ(pool.size(), size());
}

TEST_P(PoolTest, GrowingStartsQueuedTasksAtOnce) {
  // With every worker held, tasks queued behind them start as soon as the pool grows.
  background::pool pool{size()};
  std::latch release{1};
  std::vector<background::future<void>> held;
  for (std::size_t i = 0; i < size(); ++i) held.push_back(pool.run([&release] { release.wait(); }));
  std::latch queued_ran{4};
  for (int i = 0; i < 4; ++i) pool.run([&queued_ran] { queued_ran.count_down(); });
  pool.resize(size() + 4);
  queued_ran.wait();  // would hang if the new threads waited for the next submission
  release.count_down();
  pool.wait();
}

TEST_P(PoolTest, ShrinkingNeverBlocks) {
  background::pool pool{size()};
  std::latch release{1};
  std::vector<background::future<void>> held;
  for (std::size_t i = 0; i < size(); ++i) held.push_back(pool.run([&release] { release.wait(); }));
  pool.resize(1);  // would hang if it waited for the busy workers
  EXPECT_EQ(pool.size(), 1u);
  release.count_down();
  for (auto& f : held) f.get();
  pool.wait();
  // The surplus threads leave once their tasks are done (a hang here fails by timeout).
  while (background::detail::worker_threads(pool) != 1) std::this_thread::yield();
  EXPECT_EQ(pool.run([] { return 3; }).get(), 3);
}

TEST_P(PoolTest, WorkerThreadsFollowTheSize) {
  background::pool pool{size()};
  const auto settles_at = [&pool](std::size_t n) {
    pool.wait();
    while (background::detail::worker_threads(pool) != n) std::this_thread::yield();
    return true;
  };
  EXPECT_TRUE(settles_at(size()));
  pool.resize(size() + 3);
  EXPECT_GE(background::detail::worker_threads(pool), size() + 3);  // started by resize()
  EXPECT_TRUE(settles_at(size() + 3));
  pool.resize(1);
  EXPECT_TRUE(settles_at(1));
  for (int i = 0; i < 100; ++i) pool.run([] {});
  pool.resize(size());
  EXPECT_TRUE(settles_at(size()));
}

TEST_P(PoolTest, ResizeUnderLoadLosesAndDuplicatesNothing) {
  constexpr int tasks = 20000;
  std::vector<std::atomic<int>> runs(tasks);
  background::pool pool{size()};
  std::thread resizer([&pool] {
    for (std::size_t k = 0; k < 200; ++k) pool.resize(1 + (k * 7) % 9);
  });
  for (int i = 0; i < tasks; ++i) {
    pool.run([&runs, &pool, i] {
      ++runs[static_cast<std::size_t>(i)];
      if (i % 1000 == 0) pool.resize(1 + static_cast<std::size_t>(i) % 5);  // from a task
    });
  }
  resizer.join();
  pool.wait();
  for (int i = 0; i < tasks; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)], 1) << "task " << i;
}

TEST(PoolErrorTest, ZeroOrHugeSizeIsRejected) {
  EXPECT_THROW(background::pool{0}, std::invalid_argument);
  EXPECT_THROW(background::pool{background::pool::max_size + 1}, std::invalid_argument);
  background::pool pool{2};
  EXPECT_THROW(pool.resize(0), std::invalid_argument);
  EXPECT_THROW(pool.resize(static_cast<std::size_t>(-1)), std::invalid_argument);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(pool.run([] { return 5; }).get(), 5);
}

TEST(PoolErrorTest, FailingToStartAThreadLeavesThePoolAsItWas) {
  background::pool pool{2};
  std::latch release{1};
  auto held = pool.run([&release] { release.wait(); });
  std::atomic<int> ran{0};
  std::vector<background::future<void>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.run([&ran] { ++ran; }));
  background::detail::fail_next_thread_starts(1);
  try {
    pool.resize(6);
    FAIL() << "resize did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again);
  }
  background::detail::fail_next_thread_starts(0);
  EXPECT_EQ(pool.size(), 2u);
  release.count_down();
  for (auto& f : queued) f.get();  // the queue was kept
  EXPECT_EQ(ran, 10);
  pool.resize(4);  // and it can still grow
  EXPECT_EQ(pool.size(), 4u);
}

TEST(PoolErrorTest, FailingToStartTheFirstThreadsThrows) {
  background::detail::fail_next_thread_starts(1);
  EXPECT_THROW(background::pool{3}, std::system_error);
  background::detail::fail_next_thread_starts(0);
}

TEST_P(PoolTest, WaitForReturnsTrueOnceEveryTaskHasRun) {
  background::pool pool{GetParam()};
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) pool.run([&ran] { ++ran; });
  EXPECT_TRUE(pool.wait_for(std::chrono::minutes(1)));
  EXPECT_EQ(ran, 100);
  EXPECT_TRUE(pool.wait_for(std::chrono::seconds(0)));  // idle: true at once
}

TEST_P(PoolTest, WaitForGivesUpWhileATaskRunsAndWaitsAgainAfter) {
  background::pool pool{GetParam()};
  std::latch release{1};
  std::atomic<bool> done{false};
  auto f = pool.run([&] {
    release.wait();
    done = true;
  });
  EXPECT_FALSE(pool.wait_for(std::chrono::milliseconds(1)));
  EXPECT_FALSE(pool.wait_until(std::chrono::steady_clock::now()));
  EXPECT_FALSE(done);
  release.count_down();
  EXPECT_TRUE(pool.wait_until(std::chrono::steady_clock::now() + std::chrono::minutes(1)));
  EXPECT_TRUE(done);  // true means the task has finished, as after wait()
  EXPECT_TRUE(f.done());
}

TEST(PoolErrorTest, WaitForFromItsOwnTaskIsALogicError) {
  background::pool pool{1};
  auto f = pool.run([&pool] { (void)pool.wait_for(std::chrono::seconds(1)); });
  EXPECT_THROW(f.get(), std::logic_error);
}

// A worker's thread may still be ending (thread_local destructors) after it has left the
// pool. If that end waits for a lock whose holder waits for the pool's own lock (an embedding's
// GIL: Python's size() under the GIL while a leaving worker's thread state waits for the GIL),
// resize() must not join the thread while it holds the pool's lock.
std::mutex outside_lock;          // stands for the GIL
std::atomic<bool> ending{false};  // a worker's thread is in its thread_local destructor
struct ends_under_outside_lock {
  bool armed = false;
  ~ends_under_outside_lock() {
    if (!armed) return;
    ending = true;
    std::lock_guard<std::mutex> lock(outside_lock);
  }
};
thread_local ends_under_outside_lock thread_end;

TEST(PoolResizeTest, JoiningALeftWorkerDoesNotHoldThePoolsLock) {
  background::pool_options options;
  options.on_thread_start = [](std::size_t) { thread_end.armed = true; };
  auto* pool = new background::pool{2, options};  // leaked if the test fails: threads stuck
  std::unique_lock<std::mutex> outside(outside_lock);
  pool->resize(1);  // one worker leaves; its thread's end blocks on outside_lock
  for (int i = 0; i < 1'000'000 && !ending; ++i) std::this_thread::yield();
  ASSERT_TRUE(ending);
  std::atomic<bool> resized{false};
  std::thread resizer([pool, &resized] {
    pool->resize(2);  // takes the left worker out of the list, joins it
    resized = true;
  });
  // The holder of outside_lock asks for the pool's size meanwhile: it needs the pool's lock.
  // (Once the resizer has had time to get that far: if it has not, this passes vacuously.)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::atomic<bool> sized{false};
  std::thread asker([pool, &sized] {
    (void)pool->size();
    sized = true;
  });
  for (int i = 0; i < 20'000 && !sized; ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  if (!sized) {
    ADD_FAILURE() << "size() blocked behind a resize() that joins a thread under the pool's lock";
    std::_Exit(1);  // the threads are deadlocked: no clean way out
  }
  outside.unlock();
  resizer.join();
  asker.join();
  EXPECT_TRUE(resized);
  EXPECT_EQ(pool->size(), 2u);
  delete pool;
}

TEST(PoolErrorTest, WaitFromItsOwnTaskIsALogicError) {
  background::pool pool{2};
  auto f = pool.run([&pool] { pool.wait(); });
  EXPECT_THROW(f.get(), std::logic_error);
  background::pool other{1};
  other.run([&pool] { pool.wait(); }).get();  // another pool's task may wait
}

TEST_P(PoolTest, DestructorRunsEveryQueuedTask) {
  std::atomic<int> ran{0};
  {
    background::pool pool{size()};
    for (int i = 0; i < 1000; ++i) pool.run([&ran] { ++ran; });
  }
  EXPECT_EQ(ran, 1000);
}

TEST_P(PoolTest, DestructorRunsWhatQueuedTasksSubmit) {
  std::atomic<int> ran{0};
  {
    background::pool pool{size()};
    for (int i = 0; i < 100; ++i) {
      pool.run([&pool, &ran] {
        pool.run([&ran] { ++ran; });                              // nested, during the drain
        pool.run([] { return 1; }).then([&ran](int) { ++ran; });  // and a continuation
      });
    }
  }
  EXPECT_EQ(ran, 200);
}

TEST(PoolShutdownTest, SubmittingFromOutsideDuringShutdownThrows) {
  std::latch in_task{1};
  std::latch release{1};
  auto pool = std::make_unique<background::pool>(1);
  pool->run([&] {
    in_task.count_down();
    release.wait();
  });
  in_task.wait();
  background::pool* raw = pool.get();
  std::thread destroyer([&pool] { pool.reset(); });
  // Until the destructor has started, submissions still succeed; afterwards they throw. Find
  // the moment without sleeping: keep submitting until one throws.
  bool threw = false;
  while (!threw) {
    try {
      raw->run([] {});
    } catch (const background::shutdown_error&) {
      threw = true;
    }
  }
  release.count_down();
  destroyer.join();
}

TEST(PoolShutdownTest, PoolDestroyedFromItsOwnTask) {
  auto* pool = new background::pool(2);
  std::atomic<int> ran{0};
  std::latch destroyed{1};
  for (int i = 0; i < 50; ++i) pool->run([&ran] { ++ran; });
  pool->run([pool, &destroyed] {
    delete pool;
    destroyed.count_down();
  });
  destroyed.wait();
  EXPECT_EQ(ran, 50);
}

TEST(PoolShutdownTest, PoolDestroyedFromItsOwnTaskRepeatedly) {
  // The task may run (and destroy the pool) before run() has even returned to its submitter.
  for (int i = 0; i < 300; ++i) {
    auto* pool = new background::pool(1 + static_cast<std::size_t>(i) % 3);
    std::latch destroyed{1};
    pool->run([pool, &destroyed] {
      delete pool;
      destroyed.count_down();
    });
    destroyed.wait();
  }
}

TEST(PoolShutdownTest, DestroyedFromATaskWhileQueuedTasksForkAndJoin) {
  // With one worker, the destroying task drains the queue itself; the tasks it runs there run
  // their children inline and count them in the worker's batch of done tasks, which the drain
  // must settle rather than wait for. (A hang here before the drain settled it.)
  auto* pool = new background::pool(1);
  std::latch queued{1};
  std::latch destroyed{1};
  pool->run([pool, &queued, &destroyed] {
    queued.wait();
    delete pool;
    destroyed.count_down();
  });
  std::atomic<int> children{0};
  for (int i = 0; i < 3; ++i) {
    // Deliberate: these run inside ~pool (the drain), and submit to the pool being destroyed,
    // which its own tasks may do until the drain is over.
    pool->run([pool, &children] {
      auto child = pool->run([&children] { ++children; });
      child.get();  // taken back from the worker's own deque and run here
    });
  }
  queued.count_down();
  destroyed.wait();
  EXPECT_EQ(children, 3);
}

TEST(PoolShutdownTest, CancelThatDestroysThePool) {
  // The cancelled task's callable holds the last reference to its pool: dropping it inside
  // cancel() runs the pool's destructor, which must not wait for the task being cancelled.
  auto pool = std::make_shared<background::pool>(1);
  std::latch release{1};
  std::latch callable_dropped{1};
  auto held = pool->run([&release] { release.wait(); });
  struct signal_on_destruction {
    explicit signal_on_destruction(std::latch* l) : latch(l) {}
    signal_on_destruction(signal_on_destruction&& o) noexcept
        : latch(std::exchange(o.latch, nullptr)) {}
    ~signal_on_destruction() {
      if (latch != nullptr) latch->count_down();
    }
    std::latch* latch;
  };
  struct payload {
    std::shared_ptr<background::pool> keep;
    signal_on_destruction signal;  // destroyed first: members go last to first
  };
  auto queued = pool->run([p = payload{pool, signal_on_destruction(&callable_dropped)}] {});
  pool.reset();
  bool cancelled = false;
  std::thread canceller([&queued, &cancelled] { cancelled = queued.cancel(); });
  callable_dropped.wait();  // the destructor is about to wait for `held`
  release.count_down();
  canceller.join();
  EXPECT_TRUE(cancelled);
  held.get();
}

TEST(PoolShutdownTest, ContinuationOfTheTaskThatDestroyedItsPool) {
  // Another pool's worker waits for the continuation; it must run, once, and the pool must
  // stay alive until it has.
  background::pool other{1};
  auto* pool = new background::pool(1);
  std::latch waiting{1};
  auto destroyer = pool->run([pool, &waiting] {
    waiting.wait();
    delete pool;
  });
  auto next = destroyer.then([] { return 5; });
  auto waiter = other.run([&next, &waiting] {
    waiting.count_down();
    return next.get();
  });
  EXPECT_EQ(waiter.get(), 5);
}

TEST(PoolCallbackTest, WaitFromACallbackOnTheCancellingThreadThrows) {
  background::pool pool{1};
  std::atomic<int> threw{0};
  pool.callback([&pool, &threw](const background::outcome& o) {
    if (!o.cancelled()) return;
    try {
      pool.wait();
    } catch (const std::logic_error&) {
      ++threw;
    }
  });
  std::latch release{1};
  auto held = pool.run([&release] { release.wait(); });
  auto f = pool.run([] {});
  EXPECT_TRUE(f.cancel());  // the callback runs here, inside cancel()
  EXPECT_EQ(threw, 1);
  release.count_down();
  pool.wait();
}

TEST_P(PoolTest, CallbacksSeeEveryLaterTaskOnce) {
  background::pool pool{size()};
  std::atomic<int> succeeded{0}, failed{0}, cancelled{0};
  std::latch release{1};
  auto early = pool.run([&release] { release.wait(); });  // submitted before the callback
  pool.callback([&](const background::outcome& o) {
    if (o.succeeded()) ++succeeded;
    if (o.failed()) {
      ++failed;
      EXPECT_NE(o.exception(), nullptr);
    }
    if (o.cancelled()) ++cancelled;
  });
  release.count_down();  // `early` finishes after the callback exists, but is not counted
  for (int i = 0; i < 100; ++i) pool.run([] {});
  std::vector<background::future<void>> failures;
  for (int i = 0; i < 10; ++i) failures.push_back(pool.run([] { throw std::runtime_error("x"); }));
  pool.wait();
  EXPECT_EQ(succeeded, 100);
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(cancelled, 0);
}

// pool::callback() runs "after its future is ready": a callback that looks at the future of the
// task it is called for finds it done, whether the task returned or threw, every time.
TEST_P(PoolTest, CallbacksRunAfterTheirTasksFutureIsReady) {
  background::pool pool{size()};
  std::atomic<background::future<int>*> current{nullptr};
  std::atomic<int> calls{0}, not_ready{0};
  pool.callback([&](const background::outcome&) {
    ++calls;
    background::future<int>* f = current.load();
    if (f == nullptr || !f->done()) ++not_ready;
  });
  constexpr int rounds = 300;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> published{false};
    auto f = pool.run([&published, round] {
      while (!published.load()) std::this_thread::yield();  // until `current` is this future
      if (round % 3 == 1) throw std::runtime_error("x");
      return round;
    });
    current = &f;
    published = true;
    pool.wait();  // callbacks included
    current = nullptr;
    if (round % 3 == 1) {
      EXPECT_THROW(f.get(), std::runtime_error);
    } else {
      EXPECT_EQ(f.get(), round);
    }
  }
  EXPECT_EQ(calls, rounds);
  EXPECT_EQ(not_ready, 0);
}

TEST(PoolCallbackTest, CallbackSeesCancellation) {
  background::pool pool{1};
  std::atomic<int> cancelled{0};
  pool.callback([&cancelled](const background::outcome& o) {
    if (o.cancelled()) ++cancelled;
  });
  std::latch release{1};
  auto held = pool.run([&release] { release.wait(); });
  auto f = pool.run([] {});
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(cancelled, 1);  // on the cancelling thread, before cancel() returns
  release.count_down();
  pool.wait();
}

TEST(PoolCallbackTest, ThrowingCallbackHarmsNothingElse) {
  background::pool pool{2};
  std::atomic<int> second{0};
  std::atomic<int> reported{0};
  auto previous = background::on_error([&reported](std::exception_ptr) { ++reported; });
  pool.callback([](const background::outcome&) { throw std::runtime_error("callback"); });
  pool.callback([&second](const background::outcome&) { ++second; });
  for (int i = 0; i < 20; ++i) EXPECT_EQ(pool.run([i] { return i; }).get(), i);
  pool.wait();
  background::on_error(previous);
  EXPECT_EQ(second, 20);
  EXPECT_EQ(reported, 20);
}

TEST(PoolCallbackTest, WaitReturnsAfterCallbacks) {
  background::pool pool{4};
  std::atomic<int> calls{0};
  pool.callback([&calls](const background::outcome&) { ++calls; });
  for (int round = 1; round <= 20; ++round) {
    for (int i = 0; i < 50; ++i) pool.run([] {});
    pool.wait();
    ASSERT_EQ(calls, round * 50);
  }
}

TEST_P(PoolTest, PublicCallsFromManyThreadsAtOnce) {
  background::pool pool{size()};
  std::atomic<int> ran{0};
  std::atomic<int> cancelled{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&pool, &ran, &cancelled, p] {
      for (int i = 0; i < 500; ++i) {
        auto f = pool.run([&ran] { return ++ran; });
        if (i % 50 == 0) pool.resize(1 + static_cast<std::size_t>(p + i) % 4);
        if (i % 7 == 0 && f.cancel()) ++cancelled;
        if (i % 11 == 0) (void)f.then([](int v) { return v; });
        if (i % 100 == 0) (void)pool.size();
      }
    });
  }
  for (auto& t : producers) t.join();
  pool.wait();
  EXPECT_EQ(ran + cancelled, 2000);  // each task ran exactly once, or was cancelled
}

}  // namespace

// ---- pool::post() ------------------------------------------------------------------------------

namespace {

class PostTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(PoolSizes, PostTest, ::testing::Values(1, 2, 4, 8, 64));

}  // namespace

TEST_P(PostTest, EachCallRunsExactlyOnceFromOutsideAndFromTasks) {
  background::pool pool{GetParam()};
  constexpr int outside = 1000;
  constexpr int inside = 100;
  std::vector<std::atomic<int>> runs(outside + outside * inside);
  for (int i = 0; i < outside; ++i) {
    pool.post(
        [&pool, &runs](int k) {
          ++runs[static_cast<std::size_t>(k)];
          for (int j = 0; j < inside; ++j) {
            pool.post([&runs](int m) { ++runs[static_cast<std::size_t>(m)]; },
                      outside + k * inside + j);
          }
        },
        i);
  }
  pool.wait();  // waits for the posted calls, and what they post
  for (std::size_t k = 0; k < runs.size(); ++k) ASSERT_EQ(runs[k].load(), 1) << "call " << k;
}

TEST_P(PostTest, AnExceptionGoesToTheHandlerOnceAndCallbacksSeeIt) {
  error_log errors;
  std::atomic<int> failed{0};
  std::atomic<int> succeeded{0};
  {
    background::pool pool{GetParam()};
    pool.callback([&](const background::outcome& o) { ++(o.failed() ? failed : succeeded); });
    pool.post([] { throw std::runtime_error("posted"); });
    pool.post([] { return 42; });  // a result nobody can read: dropped
    pool.wait();
    EXPECT_EQ(errors.messages(), std::vector<std::string>{"posted"});
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(errors.messages().size(), 1u);  // once, not again when the pool goes
}

TEST_P(PostTest, TheCallableAndItsResultAreFreedOnce) {
  {
    background::pool pool{GetParam()};
    for (int i = 0; i < 100; ++i) {
      pool.post([c = counted{0}] { return counted{0}; });
    }
    pool.wait();
    EXPECT_EQ(counted::live, 0);  // wait() returning means finished tasks are freed
  }
  EXPECT_EQ(counted::live, 0);
}

TEST_P(PostTest, CallbacksSeeThePostsThatFinishAfterThem) {
  // A post calls the callbacks registered by the time it has run (it does not remember those
  // of its submission, as a task from run() does): one posted before the callback, and released
  // after it, is seen too.
  background::pool pool{GetParam()};
  std::atomic<int> succeeded{0};
  std::atomic<int> failed{0};
  std::latch release{1};
  pool.post([&release] { release.wait(); });  // posted before the callback
  pool.callback([&](const background::outcome& o) { ++(o.failed() ? failed : succeeded); });
  release.count_down();  // it finishes after the callback exists: counted
  for (int i = 0; i < 100; ++i) pool.post([] {});
  {
    error_log errors;
    for (int i = 0; i < 10; ++i) pool.post([] { throw std::runtime_error("x"); });
    pool.wait();
  }
  EXPECT_EQ(succeeded, 101);
  EXPECT_EQ(failed, 10);
}

TEST_P(PostTest, CancelPendingCancelsQueuedPostsAndStopsRunningOnes) {
  error_log errors;
  std::atomic<int> cancelled{0};
  std::atomic<int> ran{0};
  std::atomic<bool> stopped{false};
  background::pool pool{GetParam()};
  pool.callback([&](const background::outcome& o) { cancelled += o.cancelled() ? 1 : 0; });
  std::latch running{static_cast<std::ptrdiff_t>(GetParam())};
  for (std::size_t i = 0; i < GetParam(); ++i) {
    pool.post([&](std::stop_token stop) {
      running.count_down();
      while (!stop.stop_requested()) std::this_thread::yield();
      stopped = true;
    });
  }
  running.wait();  // every worker is in a stoppable call: what follows stays queued
  for (int i = 0; i < 50; ++i) pool.post([&ran] { ++ran; });
  pool.shutdown(background::cancel_pending);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(cancelled, 50);
  EXPECT_EQ(errors.messages(), std::vector<std::string>{});  // a cancellation is no error
}

TEST_P(PostTest, APostedTaskMayDestroyItsPool) {
  // The destructor, called from a posted task, drains the other tasks and keeps the pool alive
  // until that task is done (its frame holds the pool, as a task from run() does).
  for (int round = 0; round < 20; ++round) {
    auto* pool = new background::pool(GetParam());
    std::atomic<int> ran{0};
    std::latch destroyed{1};
    for (int i = 0; i < 50; ++i) pool->post([&ran] { ++ran; });
    pool->post([pool, &ran, &destroyed] {
      delete pool;
      EXPECT_EQ(ran, 50) << "the destructor drained the other posts";
      destroyed.count_down();
    });
    destroyed.wait();
  }
}

TEST_P(PostTest, PostsFromThePoolsOwnTasksAreAcceptedWhileItCloses) {
  // A closing pool refuses posts from outside, but not from its own tasks: the destructor
  // drains what they post too.
  error_log errors;
  constexpr int outer = 100;
  std::atomic<int> ran{0};
  std::latch release{1};
  auto pool = std::make_unique<background::pool>(GetParam());
  background::pool* raw = pool.get();
  for (int i = 0; i < outer; ++i) {
    raw->post([raw, &release, &ran] {
      release.wait();  // until the pool is closing
      raw->post([&ran] { ++ran; });
    });
  }
  std::thread destroyer([&pool] { pool.reset(); });
  // Find the moment the destructor has started without sleeping: post until one throws.
  for (bool refused = false; !refused;) {
    try {
      raw->post([] {});
    } catch (const background::shutdown_error&) {
      refused = true;
    }
  }
  release.count_down();
  destroyer.join();
  EXPECT_EQ(ran, outer);
  EXPECT_EQ(errors.messages().size(), 0u);
}

TEST(PostErrorTest, APostRefusedDuringShutdownDoesNotHoldUpTheDrain) {
  // A refused post was counted as pending for a moment: it must be uncounted, or the
  // destructor's drain, which waits for every pending task, never ends.
  std::latch in_task{1};
  std::latch release{1};
  auto pool = std::make_unique<background::pool>(1);
  pool->post([&] {
    in_task.count_down();
    release.wait();
  });
  in_task.wait();
  background::pool* raw = pool.get();
  std::thread destroyer([&pool] { pool.reset(); });
  // Until the destructor has started, posts are accepted; afterwards they throw. Find the
  // moment without sleeping: keep posting until one throws.
  std::atomic<int> ran{0};
  int accepted = 0;
  int refused = 0;
  while (refused < 100) {
    try {
      raw->post([&ran] { ++ran; });
      ++accepted;
    } catch (const background::shutdown_error&) {
      ++refused;
    }
  }
  release.count_down();
  destroyer.join();
  EXPECT_EQ(ran, accepted);
}

TEST(PostErrorTest, PostToAShutDownPoolThrowsAndQueuesNothing) {
  background::pool pool{1};
  pool.shutdown();
  bool ran = false;
  EXPECT_THROW(pool.post([&ran] { ran = true; }), background::shutdown_error);
  EXPECT_FALSE(ran);
  EXPECT_EQ(counted::live, 0);
  EXPECT_THROW(pool.post([c = counted{0}] {}), background::shutdown_error);
  EXPECT_EQ(counted::live, 0);  // the task's state was freed with its callable
}

// The registry, where a then(p, f) continuation finds its pool by id when its antecedent
// finishes, holds the live pools and nothing else: a pool destroyed, shut down, or destroyed
// from its own task leaves it, so a continuation that outlives its pool finds none (and is
// cancelled) rather than a freed one.
TEST(PoolRegistryTest, APoolLeavesTheRegistryWhenItShutsDown) {
  const std::size_t before = background::detail::registered_pools();
  {
    background::pool p(2);
    EXPECT_EQ(background::detail::registered_pools(), before + 1);
    background::pool q(1);
    EXPECT_EQ(background::detail::registered_pools(), before + 2);
    q.shutdown();
    EXPECT_EQ(background::detail::registered_pools(), before + 1);
  }
  EXPECT_EQ(background::detail::registered_pools(), before);
  auto* self = new background::pool(1);
  EXPECT_EQ(background::detail::registered_pools(), before + 1);
  self->run([self] { delete self; }).get();
  EXPECT_EQ(background::detail::registered_pools(), before);
}
