// Tests for error.hpp: the error types and the default and custom handlers.
#include "background/error.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "background/detail/testing.hpp"
#include "background/pool.hpp"

namespace {

TEST(ErrorTest, TypesDeriveFromStdExceptions) {
  const background::cancelled c;
  const background::shutdown_error s;
  const std::runtime_error& as_runtime = c;
  EXPECT_NE(std::string(as_runtime.what()).find("cancelled"), std::string::npos);
  EXPECT_NE(std::string(s.what()).find("shutting down"), std::string::npos);
}

TEST(ErrorTest, DefaultHandlerWritesOneLineWithTypeAndWhat) {
  background::on_error(nullptr);
  ::testing::internal::CaptureStderr();
  {
    background::pool pool{1};
    pool.run([] { throw std::invalid_argument("bad input 17"); });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err,
            "background: unobserved exception in a task: std::invalid_argument: bad input 17\n");
}

TEST(ErrorTest, DefaultHandlerNamesNonStdExceptions) {
  background::on_error(nullptr);
  ::testing::internal::CaptureStderr();
  {
    background::pool pool{1};
    pool.run([] { throw 3.5; });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err,
            "background: unobserved exception in a task: double (not derived from "
            "std::exception)\n");
}

TEST(ErrorTest, OnErrorReturnsThePreviousHandler) {
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  background::on_error([&first](std::exception_ptr) { ++first; });
  auto previous = background::on_error([&second](std::exception_ptr) { ++second; });
  ASSERT_TRUE(previous);
  previous(nullptr);
  EXPECT_EQ(first, 1);
  background::on_error(nullptr);
}

TEST(ErrorTest, ThrowingHandlerIsContained) {
  background::on_error([](std::exception_ptr) { throw std::runtime_error("handler broke"); });
  ::testing::internal::CaptureStderr();
  {
    background::pool pool{1};
    pool.run([] { throw std::runtime_error("task"); });
    EXPECT_EQ(pool.run([] { return 2; }).get(), 2);  // the worker survived
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("the on_error handler threw: std::runtime_error: handler broke"),
            std::string::npos);
  background::on_error(nullptr);
}

// The exception of a failed task whose futures are gone is owed to its continuations; when the
// last of them is cancelled before it runs, nobody will ever take it, and it is reported then.
TEST(ErrorTest, CancellingTheLastContinuationReportsTheAntecedentsException) {
  std::atomic<int> reports{0};
  auto previous = background::on_error([&reports](std::exception_ptr) { ++reports; });
  {
    background::pool pool{1};
    std::latch a_may_fail{1};
    std::latch b_started{1};
    std::latch b_may_end{1};
    std::optional<background::future<void>> a = pool.run([&a_may_fail] {
      a_may_fail.wait();
      throw std::runtime_error("only the continuation could have taken this");
    });
    auto c = a->then([] {});  // attached while `a` runs
    auto b = pool.run([&b_started, &b_may_end] {
      b_started.count_down();
      b_may_end.wait();
    });
    a_may_fail.count_down();  // `a` fails and queues `c` behind `b`
    b_started.wait();         // the only worker now runs `b`: `c` is queued
    a->wait();
    a.reset();  // `c` still owes the exception: no report yet
    EXPECT_EQ(reports, 0);
    EXPECT_TRUE(c.cancel());
    b_may_end.count_down();
    pool.wait();
    EXPECT_THROW(c.get(), background::cancelled);
  }
  EXPECT_EQ(reports, 1);
  background::on_error(previous);
}

// The report hook below holds the first thread that reaches it (the worker settling the failed
// task) until the test lets it go; every later call passes.
std::atomic<int> report_hook_stage{0};  // 0 armed, 1 a thread is held, 2 let go
void hold_first_report_check() {
  int armed = 0;
  if (!report_hook_stage.compare_exchange_strong(armed, 1)) return;
  while (report_hook_stage.load() != 2) std::this_thread::yield();
}

// A then() made, and the last future dropped, while the worker that settles the failed task is
// between report_if_lost()'s two looks (held there by the seam): the continuation takes the
// exception over and passes it on, so it is not reported. Had the worker looked at the takers
// first, it would have seen none, then no future, and reported an exception that the
// continuation's future carries.
TEST(ErrorTest, ThenAndTheLastFutureDroppedDuringTheReportCheckReportNothing) {
  std::atomic<int> reported{0};
  auto previous = background::on_error([&reported](std::exception_ptr) { ++reported; });
  background::pool pool{1};
  report_hook_stage = 0;
  background::detail::set_report_hook(hold_first_report_check);
  std::optional<background::future<void>> failed =
      pool.run([] { throw std::runtime_error("passed on"); });
  while (report_hook_stage.load() != 1) std::this_thread::yield();  // the worker is held
  auto next = failed->then([] { return 1; });  // runs on the held worker, later
  failed.reset();                              // the last future of the failed task
  report_hook_stage = 2;
  EXPECT_THROW(
      {
        try {
          next.get();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "passed on");
          throw;
        }
      },
      std::runtime_error);
  pool.wait();
  background::detail::set_report_hook(nullptr);
  background::on_error(previous);
  EXPECT_EQ(reported, 0);
}

// on_error() returns the handler it replaces even while that handler is running a report on
// another thread (then the slot does not hold the only reference to it, and it is copied out
// rather than moved): the caller gets it back to restore or to chain to.
TEST(ErrorTest, OnErrorReturnsThePreviousHandlerWhileItRunsAReport) {
  std::latch in_handler{1};
  std::latch replaced{1};
  std::atomic<int> calls{0};
  auto original = background::on_error([&](std::exception_ptr) {
    if (calls++ == 0) {
      in_handler.count_down();
      replaced.wait();
    }
  });
  {
    background::pool pool{1};
    std::latch go{1};
    // The future is dropped before the task fails, so the report runs on the worker.
    pool.run([&go] {
      go.wait();
      throw std::runtime_error("reported");
    });
    go.count_down();
    in_handler.wait();  // the worker is inside the handler
    auto previous = background::on_error(nullptr);
    replaced.count_down();
    pool.wait();
    ASSERT_TRUE(previous) << "on_error() did not return the handler that was running";
    previous(nullptr);
    EXPECT_EQ(calls, 2);
  }
  background::on_error(std::move(original));
}

}  // namespace
