// Tests for future.hpp: values, exceptions, waiting, cancellation, then(), and memory.
#include "background/future.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "background/background.hpp"
#include "support/counted.hpp"
#include "support/held_pool.hpp"

namespace {

using background::testing::counted;
using background::testing::held_pool;

using namespace std::chrono_literals;

class FutureTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  background::pool pool_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, FutureTest, ::testing::Values(1, 2, 4, 8, 64));

TEST_P(FutureTest, GetReturnsValue) {
  background::future<int> f = pool_.run([](int a, int b) { return a * b; }, 6, 7);
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.get(), 42);  // an lvalue get() may be repeated
  EXPECT_TRUE(f.done());
}

TEST_P(FutureTest, VoidFutureCompletes) {
  std::atomic<bool> ran{false};
  background::future<void> f = pool_.run([&ran] { ran = true; });
  f.get();
  EXPECT_TRUE(ran);
}

TEST_P(FutureTest, RvalueGetMovesMoveOnlyResultOut) {
  auto f = pool_.run([] { return std::make_unique<std::string>("moved"); });
  std::unique_ptr<std::string> p = std::move(f).get();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, "moved");
}

TEST_P(FutureTest, MoveOnlyCallableAndArguments) {
  auto owned = std::make_unique<int>(5);
  auto f = pool_.run([q = std::make_unique<int>(2)](std::unique_ptr<int> p) { return *p * *q; },
                     std::move(owned));
  EXPECT_EQ(f.get(), 10);
}

TEST_P(FutureTest, StdRefPassesAReference) {
  int target = 0;
  pool_.run([](int& x) { x = 9; }, std::ref(target)).get();
  EXPECT_EQ(target, 9);  // get() makes the task's writes visible
}

int triple(int x) { return 3 * x; }

TEST_P(FutureTest, FunctionPointersAndMemberFunctions) {
  struct account {
    int balance = 10;
    int deposit(int amount) { return balance += amount; }
  };
  account acc;
  EXPECT_EQ(pool_.run(&triple, 4).get(), 12);
  EXPECT_EQ(pool_.run(&account::deposit, &acc, 5).get(), 15);
  EXPECT_EQ(acc.balance, 15);
}

TEST_P(FutureTest, ArgumentsAreCopiedAtSubmission) {
  std::string text = "before";
  auto f = pool_.run([](const std::string& s) { return s; }, text);
  text = "after";
  EXPECT_EQ(f.get(), "before");
}

TEST_P(FutureTest, GetRethrowsTheTasksException) {
  auto f = pool_.run([]() -> int { throw std::out_of_range("index 7"); });
  EXPECT_THROW(f.get(), std::out_of_range);
  EXPECT_NE(f.exception(), nullptr);
}

TEST_P(FutureTest, NonStdExceptionIsCarriedLikeAnyOther) {
  auto f = pool_.run([] { throw 42; });
  try {
    f.get();
    FAIL() << "get() did not throw";
  } catch (int v) {
    EXPECT_EQ(v, 42);
  }
}

TEST_P(FutureTest, ExceptionIsNullAfterSuccess) {
  auto f = pool_.run([] { return 1; });
  EXPECT_EQ(f.exception(), nullptr);
}

TEST_P(FutureTest, DoneIsFalseUntilTheTaskFinishes) {
  std::latch release{1};
  auto f = pool_.run([&release] { release.wait(); });
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.wait_for(0ms));
  EXPECT_FALSE(f.wait_for(-5s));
  EXPECT_FALSE(f.wait_for(1ms));
  EXPECT_FALSE(f.wait_until(std::chrono::steady_clock::now() - 1s));
  EXPECT_FALSE(f.wait_until(std::chrono::system_clock::now() + 1ms));
  release.count_down();
  f.wait();
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.wait_for(0ms));
  EXPECT_TRUE(f.wait_until(std::chrono::system_clock::now() - 1s));
}

TEST_P(FutureTest, TimedWaitsCompleteWhenTheTaskDoes) {
  auto f = pool_.run([] { return 3; });
  EXPECT_TRUE(f.wait_for(std::chrono::hours(1)));
  EXPECT_TRUE(f.wait_for(std::chrono::duration<double>::max()));
  EXPECT_TRUE(f.wait_until(std::chrono::steady_clock::time_point::max()));
  EXPECT_EQ(f.get(), 3);
}

TEST(FutureWaitTest, TimedWaitsAndDoneNeverRunTheTaskInline) {
  // On the only worker of a pool, the inner task cannot start until the outer one ends, unless
  // the outer runs it inline: timed waits and done() must not; get() does.
  background::pool pool{1};
  auto outer = pool.run([&pool] {
    auto inner = pool.run([] { return 7; });
    const bool polled = inner.done() || inner.wait_for(std::chrono::milliseconds(1)) ||
                        inner.wait_until(std::chrono::steady_clock::now());
    return std::pair<bool, int>(polled, inner.get());
  });
  const auto [polled, value] = outer.get();
  EXPECT_FALSE(polled);
  EXPECT_EQ(value, 7);
}

TEST_P(FutureTest, DoneMakesTheTasksWritesVisible) {
  // ThreadSanitizer checks that reading `plain` after done() is not a race.
  int plain = 0;
  auto f = pool_.run([&plain] { plain = 77; });
  while (!f.done()) std::this_thread::yield();
  EXPECT_EQ(plain, 77);
}

TEST_P(FutureTest, DroppingAFutureNeitherBlocksNorCancels) {
  std::latch release{1};
  std::atomic<bool> ran{false};
  {
    auto f = pool_.run([&] {
      release.wait();
      ran = true;
    });
  }  // would deadlock here if dropping a future waited for its task
  release.count_down();
  pool_.wait();
  EXPECT_TRUE(ran);
}

TEST_P(FutureTest, CopiesShareOneTask) {
  std::atomic<int> runs{0};
  auto f = pool_.run([&runs] { return ++runs; });
  auto g = f;
  background::future<int> h;
  h = g;
  EXPECT_EQ(f.get(), 1);
  EXPECT_EQ(h.get(), 1);
  EXPECT_EQ(runs, 1);
}

TEST(FutureTest, EmptyFutureThrowsNoState) {
  background::future<int> f;
  EXPECT_FALSE(f.valid());
  EXPECT_THROW(f.get(), std::future_error);
  EXPECT_THROW((void)f.done(), std::future_error);
  EXPECT_THROW(f.wait(), std::future_error);
  EXPECT_THROW((void)f.then([](int) {}), std::future_error);
  background::future<int> g = background::run([] { return 1; });
  background::future<int> moved = std::move(g);
  EXPECT_FALSE(g.valid());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(moved.get(), 1);
}

TEST(FutureCancelTest, CancelBeforeStartMeansItNeverRuns) {
  held_pool held;
  std::atomic<bool> ran{false};
  auto f = held.pool().run([&ran] { ran = true; });
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancel());  // only once
  EXPECT_THROW(f.get(), background::cancelled);
  ASSERT_NE(f.exception(), nullptr);
  EXPECT_THROW(std::rethrow_exception(f.exception()), background::cancelled);
  held.release();
  held.pool().wait();
  EXPECT_FALSE(ran);
}

TEST(FutureCancelTest, CancelFailsOnceRunningOrDone) {
  background::pool pool{2};
  std::latch started{1};
  std::latch release{1};
  auto running = pool.run([&] {
    started.count_down();
    release.wait();
  });
  started.wait();
  EXPECT_FALSE(running.cancel());
  release.count_down();
  running.get();
  EXPECT_FALSE(running.cancel());
}

TEST(FutureCancelTest, CancelledTaskFreesItsCallableAtOnce) {
  held_pool held;
  ASSERT_EQ(counted::live, 0);
  auto f = held.pool().run([c = counted(1)] { return c.value; });
  EXPECT_EQ(counted::live, 1);
  EXPECT_TRUE(f.cancel());
  EXPECT_EQ(counted::live, 0);
}

TEST_P(FutureTest, ThenRunsAfterValue) {
  auto f = pool_.run([] { return 20; }).then([](int v) { return v + 1; }).then([](int v) {
    return std::to_string(v * 2);
  });
  EXPECT_EQ(f.get(), "42");
}

TEST_P(FutureTest, ThenOnVoidAndReturningVoid) {
  std::atomic<int> order{0};
  auto f = pool_.run([&order] { order = 1; }).then([&order] { return order.load() + 1; });
  EXPECT_EQ(f.get(), 2);
  std::atomic<int> seen{0};
  pool_.run([] { return 5; }).then([&seen](int v) { seen = v; }).get();
  EXPECT_EQ(seen, 5);
}

TEST_P(FutureTest, ThenOnAnRvalueMovesTheValueIn) {
  auto f = pool_.run([] { return std::make_unique<int>(8); }).then([](std::unique_ptr<int> p) {
    return *p + 1;
  });
  EXPECT_EQ(f.get(), 9);
}

TEST_P(FutureTest, ThenOnAnLvalueLeavesTheValue) {
  auto f = pool_.run([] { return std::string("kept"); });
  auto g = f.then([](const std::string& s) { return s.size(); });
  EXPECT_EQ(g.get(), 4u);
  EXPECT_EQ(f.get(), "kept");
}

TEST_P(FutureTest, ThenAfterTheTaskFinished) {
  auto f = pool_.run([] { return 1; });
  f.wait();
  EXPECT_EQ(f.then([](int v) { return v + 1; }).get(), 2);
}

TEST_P(FutureTest, ManyContinuationsOfOneTask) {
  auto f = pool_.run([] { return 10; });
  std::vector<background::future<int>> all;
  for (int i = 0; i < 50; ++i) all.push_back(f.then([i](int v) { return v + i; }));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)].get(), 10 + i);
}

TEST_P(FutureTest, ThenForwardsAnExceptionWithoutCallingF) {
  std::atomic<bool> called{false};
  auto f = pool_.run([]() -> int { throw std::logic_error("first"); }).then([&called](int v) {
    called = true;
    return v;
  });
  EXPECT_THROW(f.get(), std::logic_error);
  EXPECT_FALSE(called);
}

TEST_P(FutureTest, ExceptionThrownByContinuationReachesItsFuture) {
  auto f = pool_.run([] { return 1; }).then([](int) -> int { throw std::domain_error("then"); });
  EXPECT_THROW(f.get(), std::domain_error);
}

TEST(FutureCancelTest, ThenForwardsCancellation) {
  held_pool held;
  std::atomic<bool> called{false};
  auto f = held.pool().run([] { return 1; });
  auto g = f.then([&called](int v) {
    called = true;
    return v;
  });
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(g.get(), background::cancelled);
  EXPECT_FALSE(called);
}

TEST(FutureCancelTest, PendingContinuationCanBeCancelled) {
  held_pool held;
  std::atomic<bool> called{false};
  auto f = held.pool().run([] { return 1; });
  auto g = f.then([&called](int v) {
    called = true;
    return v;
  });
  auto h = g.then([](int v) { return v; });
  EXPECT_TRUE(g.cancel());
  EXPECT_THROW(h.get(), background::cancelled);  // cancelled along with g, at once
  held.release();
  EXPECT_EQ(f.get(), 1);
  held.pool().wait();
  EXPECT_FALSE(called);
}

TEST(FutureCancelTest, ThenOnACancelledContinuationIsCancelled) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  auto c = a.then([](int x) { return x + 1; });  // pending
  EXPECT_TRUE(a.cancel());                       // c is cancelled with it, never scheduled
  EXPECT_THROW(c.get(), background::cancelled);
  auto d = c.then([](int x) { return x; });  // not a shutdown_error: the pool lives
  EXPECT_THROW(d.get(), background::cancelled);
}

TEST(FutureThenTest, FailedThenLeavesTheExceptionUnobserved) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr) { ++reports; });
  {
    auto pool = std::make_unique<background::pool>(1);
    auto f = pool->run([]() -> int { throw std::runtime_error("x"); });
    f.wait();
    pool.reset();
    EXPECT_THROW((void)f.then([](int v) { return v; }), background::shutdown_error);
  }  // the last future is gone, and nothing carried the exception on
  EXPECT_EQ(reports, 1);
  background::on_error(previous);
}

TEST(FutureThenTest, ThenOnAFinishedTaskOfADestroyedPoolThrows) {
  background::future<int> f;
  {
    background::pool pool{1};
    f = pool.run([] { return 1; });
    f.wait();
  }
  EXPECT_EQ(f.get(), 1);  // the future outlives its pool
  EXPECT_THROW((void)f.then([](int v) { return v; }), background::shutdown_error);
}

TEST_P(FutureTest, FinishedTaskIsFreedOnceItsFutureIsGone) {
  ASSERT_EQ(counted::live, 0);
  {
    auto f = pool_.run([c = counted(1)] { return counted(c.value + 1); });
    EXPECT_EQ(f.get().value, 2);
    EXPECT_EQ(counted::live, 1);  // the callable is gone once the task finished; the value stays
  }
  pool_.wait();  // the worker may still hold the task for a moment after its future is ready
  EXPECT_EQ(counted::live, 0);
  for (int i = 0; i < 1000; ++i) pool_.run([c = counted(i)] { return counted(c.value); });
  pool_.wait();
  EXPECT_EQ(counted::live, 0);  // fire-and-forget tasks free everything once done
}

TEST_P(FutureTest, TasksRunInlineAreFreedByTheTimeWaitReturns) {
  ASSERT_EQ(counted::live, 0);
  auto outer = pool_.run([this] {
    int sum = 0;
    for (int i = 0; i < 100; ++i) {
      sum += pool_.run([c = counted(i)] { return counted(c.value); }).get().value;
    }
    return sum;
  });
  EXPECT_EQ(outer.get(), 4950);
  pool_.wait();  // also waits for the queue entries of tasks that the waiter ran itself
  EXPECT_EQ(counted::live, 0);
}

TEST_P(FutureTest, ContinuationChainsFreeTheirAntecedents) {
  ASSERT_EQ(counted::live, 0);
  auto f = pool_.run([] { return counted(0); });
  for (int i = 0; i < 200; ++i) {
    f = f.then([](const counted& c) { return counted(c.value + 1); });
  }
  EXPECT_EQ(f.get().value, 200);
  pool_.wait();
  EXPECT_EQ(counted::live, 1);  // only the last value: each link let go of the one before it
}

TEST_P(FutureTest, TasksRunInlineAreFreedByTheTimeWaitReturnsEveryTime) {
  // As above, many times over: wait() must also wait for the worker that drops the queue entry
  // of a task its waiter ran, which happens just after the outer task is counted done.
  ASSERT_EQ(counted::live, 0);
  for (int i = 0; i < 3000; ++i) {
    pool_.run([this, i] { (void)pool_.run([i] { return counted(i); }).get(); });
    pool_.wait();
    ASSERT_EQ(counted::live, 0) << "iteration " << i;
  }
}

// A waiter that runs a queued task inline and a worker that pops it race to claim it; exactly
// one of them must run it. Several threads submit and wait at once, on every pool size.
TEST_P(FutureTest, AWaiterAndAWorkerNeverBothRunATask) {
  constexpr int threads = 4;
  constexpr int per_thread = 3000;
  std::vector<std::atomic<int>> runs(threads * per_thread);
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([this, &runs, t] {
      for (int i = 0; i < per_thread; ++i) {
        const auto slot = static_cast<std::size_t>(t * per_thread + i);
        pool_.run([&runs, slot] { runs[slot].fetch_add(1); }).get();
      }
    });
  }
  for (auto& s : submitters) s.join();
  pool_.wait();
  for (std::size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i], 1) << "task " << i;
}

// then() from several threads at once on copies of one future, while its task finishes: every
// continuation is kept, runs once, and its future becomes ready.
TEST_P(FutureTest, ThenFromManyThreadsAtOnceKeepsEveryContinuation) {
  constexpr int threads = 4;
  constexpr int rounds = 500;
  std::atomic<int> calls{0};
  std::vector<std::vector<background::future<int>>> continuations(threads);
  for (int r = 0; r < rounds; ++r) {
    std::latch start{threads + 1};
    auto f = pool_.run([&start] {
      start.arrive_and_wait();  // finishes while the threads attach
      return 1;
    });
    std::vector<std::thread> attachers;
    for (int t = 0; t < threads; ++t) {
      attachers.emplace_back([&, t, f] {
        start.arrive_and_wait();
        continuations[static_cast<std::size_t>(t)].push_back(f.then([&calls](int v) {
          calls.fetch_add(v);
          return v;
        }));
      });
    }
    for (auto& a : attachers) a.join();
    f.wait();  // the task has left `start` before the next round's latch takes its place
  }
  pool_.wait();
  EXPECT_EQ(calls, threads * rounds);
  for (auto& list : continuations) {
    for (auto& c : list) {
      ASSERT_TRUE(c.done()) << "a continuation was lost";
      EXPECT_EQ(c.get(), 1);
    }
  }
}

}  // namespace

namespace {
// A generic lambda gets the value: asking whether it takes the future instead must not
// instantiate its body with one (a hard error, not a substitution failure).
TEST(FutureThenTest, AGenericLambdaWithADeducedReturnTypeGetsTheValue) {
  background::pool pool{1};
  auto doubled = pool.run([] { return 21; }).then([](auto v) { return v * 2; });
  EXPECT_EQ(doubled.get(), 42);
  auto named = pool.run([] { return std::string("a"); }).then([](const auto& s) { return s + "b"; });
  EXPECT_EQ(named.get(), "ab");
}
}  // namespace
