// Tests for background.hpp: task, run, n, callback and wait on the default pool.
#include "background/background.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

// Each test leaves the default pool at the size it found it.
class BackgroundTest : public ::testing::Test {
 protected:
  void TearDown() override {
    background::wait();
    background::n = initial_;
  }
  std::size_t initial_ = background::n;
};

TEST_F(BackgroundTest, TaskReturnsAFutureAtOnce) {
  std::latch release{1};
  auto send_email = background::task([&release](std::string to, std::string subject) {
    release.wait();
    return to + ": " + subject;
  });
  auto f = send_email("alice@example.com", "Hello");  // returns while the task is blocked
  EXPECT_FALSE(f.done());
  release.count_down();
  EXPECT_EQ(f.get(), "alice@example.com: Hello");
}

TEST_F(BackgroundTest, RunSubmitsOneCall) {
  EXPECT_EQ(background::run([](int a) { return a + 1; }, 41).get(), 42);
}

TEST_F(BackgroundTest, DefaultSizeIsAtLeastOne) {
  EXPECT_GE(static_cast<std::size_t>(background::n), 1u);
  EXPECT_EQ(static_cast<std::size_t>(background::n), background::default_pool().size());
}

TEST_F(BackgroundTest, AssigningNResizesTheDefaultPool) {
  background::n = 110;
  EXPECT_EQ(static_cast<std::size_t>(background::n), 110u);
  // All 110 threads exist at once: each task waits for all the others.
  std::latch all{110};
  std::vector<background::future<void>> futures;
  for (int i = 0; i < 110; ++i)
    futures.push_back(background::run([&all] { all.arrive_and_wait(); }));
  for (auto& f : futures) f.get();
  background::n = 3u;
  EXPECT_EQ(static_cast<std::size_t>(background::n), 3u);
}

TEST_F(BackgroundTest, BadSizesThrowAndChangeNothing) {
  background::n = 2;
  EXPECT_THROW(background::n = 0, std::invalid_argument);
  EXPECT_THROW(background::n = -1, std::invalid_argument);
  EXPECT_THROW(background::n = background::pool::max_size + 1, std::invalid_argument);
  EXPECT_EQ(static_cast<std::size_t>(background::n), 2u);
  EXPECT_EQ(background::run([] { return 1; }).get(), 1);
}

TEST_F(BackgroundTest, NestedWaitWithOneThreadCompletes) {
  background::n = 1;
  auto outer = background::run([] { return background::run([] { return 5; }).get() + 1; });
  EXPECT_EQ(outer.get(), 6);
}

TEST_F(BackgroundTest, ResizeFromInsideATask) {
  background::run([] { background::n = 4; }).get();
  EXPECT_EQ(static_cast<std::size_t>(background::n), 4u);
}

TEST_F(BackgroundTest, WaitBlocksUntilAllTasksFinish) {
  std::atomic<int> done{0};
  for (int i = 0; i < 500; ++i) background::run([&done] { ++done; });
  background::wait();
  EXPECT_EQ(done, 500);
}

TEST_F(BackgroundTest, WaitRunsNoTaskOnTheCallingThread) {
  background::n = 1;
  std::latch release{1};
  background::run([&release] { release.wait(); });
  std::vector<background::future<std::thread::id>> queued;
  for (int i = 0; i < 50; ++i) {
    queued.push_back(background::run([] { return std::this_thread::get_id(); }));
  }
  std::thread releaser([&release] { release.count_down(); });  // races with wait() below
  background::wait();
  releaser.join();
  for (auto& f : queued) EXPECT_NE(f.get(), std::this_thread::get_id());
}

TEST_F(BackgroundTest, FireAndForgetCallReturnsBeforeTheTaskRuns) {
  std::latch release{1};
  std::atomic<bool> finished{false};
  background::run([&] {
    release.wait();
    finished = true;
  });  // future dropped at once: must not block
  EXPECT_FALSE(finished);
  release.count_down();
  background::wait();
  EXPECT_TRUE(finished);
}

TEST_F(BackgroundTest, CallbackIsCalledForLaterTasks) {
  // Callbacks cannot be removed: this one only counts while `active` is set.
  static std::atomic<bool> active{false};
  static std::atomic<int> ok{0}, failed{0};
  static std::atomic<bool> registered{false};
  if (!registered.exchange(true)) {
    background::callback([](const background::outcome& o) {
      if (!active) return;
      if (o.failed()) {
        ++failed;
      } else {
        ++ok;
      }
    });
  }
  active = true;
  for (int i = 0; i < 30; ++i) background::run([] {});
  auto f = background::run([] { throw std::runtime_error("seen by the callback"); });
  EXPECT_THROW(f.get(), std::runtime_error);
  background::wait();
  active = false;
  EXPECT_EQ(ok, 30);
  EXPECT_EQ(failed, 1);
}

TEST_F(BackgroundTest, UnobservedExceptionIsReportedExactlyOnce) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr e) {
    EXPECT_THROW(std::rethrow_exception(e), std::runtime_error);
    ++reports;
  });
  for (int i = 0; i < 25; ++i) background::run([] { throw std::runtime_error("lost?"); });
  {
    auto kept = background::run([] { throw std::runtime_error("dropped after the fact"); });
    kept.wait();  // finished; dropping the last future now reports it
  }
  background::wait();
  EXPECT_EQ(reports, 26);
  background::on_error(previous);
}

TEST_F(BackgroundTest, ForwardedExceptionIsReportedOnceByTheLastLink) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr) { ++reports; });
  background::run([]() -> int {
    throw std::runtime_error("down the chain");
  }).then([](int v) {
      return v + 1;
    }).then([](int v) { return v * 2; });  // every future dropped at once
  background::wait();
  EXPECT_EQ(reports, 1);
  background::on_error(previous);
}

TEST_F(BackgroundTest, CancelledContinuationHandsTheExceptionBack) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr) { ++reports; });
  background::n = 1;
  std::latch release{1};
  background::run([&release] { release.wait(); });
  {
    auto failing = background::run([]() -> int { throw std::runtime_error("nobody"); });
    auto next = failing.then([](int v) { return v; });
    EXPECT_TRUE(next.cancel());  // the only taker is gone before it took anything
  }
  release.count_down();
  background::wait();
  EXPECT_EQ(reports, 1);
  background::on_error(previous);
}

TEST_F(BackgroundTest, ObservedExceptionIsNeverReported) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr) { ++reports; });
  {
    auto a = background::run([] { throw std::runtime_error("a"); });
    EXPECT_THROW(a.get(), std::runtime_error);
    auto b = background::run([] { throw 7; });
    EXPECT_NE(b.exception(), nullptr);
    auto c = background::run([]() -> int { throw std::runtime_error("c"); });
    auto d = c.then([](int v) { return v; });  // c is observed through d
    EXPECT_THROW(d.get(), std::runtime_error);
  }
  background::wait();
  EXPECT_EQ(reports, 0);
  background::on_error(previous);
}

}  // namespace

TEST(BackgroundPostTest, PostRunsOnTheDefaultPoolAndWaitWaitsForIt) {
  std::atomic<int> ran{0};
  std::atomic<bool> on_default{true};
  for (int i = 0; i < 100; ++i) {
    background::post(
        [&](int k) {
          ran += k;
          if (background::this_pool() != &background::default_pool()) on_default = false;
        },
        1);
  }
  background::wait();
  EXPECT_EQ(ran, 100);
  EXPECT_TRUE(on_default);
}

namespace {

// A callable that demands more alignment than malloc gives (16 on x86-64), as one holding an
// SIMD vector or a cache-line-aligned counter does.
struct alignas(64) aligned_call {
  unsigned char bytes[64] = {};
  // Where the call's object lies, modulo 64: 0 when the library stored it aligned.
  std::uintptr_t operator()() const { return reinterpret_cast<std::uintptr_t>(this) % 64; }
};

struct alignas(64) aligned_value {
  unsigned char bytes[64] = {};
};

}  // namespace

// run(), task(), then() and post() store an over-aligned callable, and a future an over-aligned
// value, at the alignment its type asks for (the task's memory comes from the library's block
// caches, which serve malloc's alignment only).
TEST(BackgroundAlignmentTest, OverAlignedCallablesAndValuesAreAligned) {
  background::pool pool{2};
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(pool.run(aligned_call{}).get(), 0u);
    EXPECT_EQ(background::run(aligned_call{}).get(), 0u);
    EXPECT_EQ(background::task(aligned_call{})().get(), 0u);
    auto then = pool.run([] { return 1; }).then([c = aligned_call{}](int) { return c(); });
    EXPECT_EQ(then.get(), 0u);
    std::atomic<std::uintptr_t> posted{1};
    std::latch done{1};
    pool.post([c = aligned_call{}, &posted, &done] {
      posted = c();
      done.count_down();
    });
    done.wait();
    EXPECT_EQ(posted.load(), 0u);
    auto value = pool.run([] { return aligned_value{}; });
    value.wait();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&value.get()) % 64, 0u);
  }
}
