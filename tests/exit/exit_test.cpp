// exit_test: how a program that uses background ends (pool.hpp: ~pool, default_pool). Each test
// runs one scenario of exit_scenarios in a child process and checks its output and exit status:
// tasks still queued run when main returns, when a task calls std::exit and when a pool is
// deleted by its own task; an unobserved exception is reported once; statics used by tasks
// outlive them when used as documented; a pool that cannot start threads (the system's thread
// limit) throws and keeps working; and nothing hangs. Each test also counts the lines, so
// that any other line (a sanitizer's report, a line the scenario must never reach) fails it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace {

using exit_tests::child_result;
using exit_tests::lines_of;

constexpr int task_count = 200;  // as in exit_scenarios.cpp

child_result run_scenario(const std::vector<std::string>& args) {
  return exit_tests::run_child(BACKGROUND_EXIT_SCENARIOS, args);
}

// The index of the one line equal to `line`, or -1 if it is missing or repeated.
long find_once(const std::vector<std::string>& lines, const std::string& line) {
  long found = -1;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] != line) continue;
    if (found >= 0) return -1;
    found = static_cast<long>(i);
  }
  return found;
}

// Whether "task 0" .. "task 199" each appear exactly once, all after the line `before` and, if
// `after` is not empty, all before the line `after` (each of which must appear once).
testing::AssertionResult all_tasks_ran_between(const std::vector<std::string>& lines,
                                               const std::string& before,
                                               const std::string& after = "") {
  const long first = find_once(lines, before);
  if (first < 0) return testing::AssertionFailure() << "no single line \"" << before << "\"";
  long last = static_cast<long>(lines.size());
  if (!after.empty()) {
    last = find_once(lines, after);
    if (last < 0) return testing::AssertionFailure() << "no single line \"" << after << "\"";
  }
  std::vector<int> runs(task_count, 0);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("task ", 0) != 0) continue;
    const int task = std::stoi(lines[i].substr(5));
    if (task < 0 || task >= task_count) {
      return testing::AssertionFailure() << "unexpected line \"" << lines[i] << "\"";
    }
    const auto at = static_cast<long>(i);
    if (at < first || at > last) {
      return testing::AssertionFailure()
             << "\"" << lines[i] << "\" is not between \"" << before << "\" and \""
             << (after.empty() ? "the end" : after) << "\"";
    }
    ++runs[static_cast<std::size_t>(task)];
  }
  for (int task = 0; task < task_count; ++task) {
    if (runs[static_cast<std::size_t>(task)] != 1) {
      return testing::AssertionFailure()
             << "task " << task << " ran " << runs[static_cast<std::size_t>(task)] << " times";
    }
  }
  return testing::AssertionSuccess();
}

long count_lines(const std::vector<std::string>& lines, const std::string& line) {
  return std::count(lines.begin(), lines.end(), line);
}

// a: main returns while 200 tasks wait behind a task that holds the default pool's only worker.
TEST(ExitTest, QueuedTasksRunWhenMainReturns) {
  const child_result r = run_scenario({"main_returns"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "main returns")) << r.output;
  EXPECT_EQ(count_lines(lines, "first task"), 1) << r.output;
  EXPECT_EQ(lines.size(), task_count + 2u) << r.output;
}

// b: std::exit(3) in a task of the default pool (n = 4, the other workers busy) while 200 tasks
// are queued: the exit status is kept, and the queued tasks run during exit.
TEST(ExitTest, ExitFromTaskRunsQueuedTasksAndKeepsStatus) {
  const child_result r = run_scenario({"exit_from_task", "4"});
  ASSERT_TRUE(r.exited_with(3)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "exit called")) << r.output;
  EXPECT_EQ(lines.size(), task_count + 1u) << r.output;
}

// c: as b with n = 1: the only worker calls std::exit, so the pool's destructor, on that worker,
// must run the queued tasks itself.
TEST(ExitTest, ExitFromOnlyWorkerRunsQueuedTasks) {
  const child_result r = run_scenario({"exit_from_task", "1"});
  ASSERT_TRUE(r.exited_with(3)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "exit called")) << r.output;
  EXPECT_EQ(lines.size(), task_count + 1u) << r.output;
}

// i: 200 tasks queued behind the default pool's only worker run in its drain at exit, and each
// submits, with background::run(), the task that writes its line: the default pool takes its
// own tasks' submissions until it has drained, so every line is written once, after "main
// returns" and "first task", with no report of a shutdown_error.
TEST(ExitTest, QueuedTasksSubmitMoreWhileTheDefaultPoolDrainsAtExit) {
  const child_result r = run_scenario({"submit_while_draining_at_exit"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "first task")) << r.output;
  const long main_returns = find_once(lines, "main returns");
  EXPECT_GE(main_returns, 0) << r.output;
  EXPECT_LT(main_returns, find_once(lines, "first task")) << r.output;
  EXPECT_EQ(lines.size(), task_count + 2u) << r.output;
}

// d: a task throws and its future is dropped at once: one report line, then a normal exit.
TEST(ExitTest, UnobservedExceptionIsReportedOnce) {
  const child_result r = run_scenario({"unobserved_exception"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_EQ(count_lines(lines,
                        "background: unobserved exception in a task: std::runtime_error: "
                        "nobody keeps this future"),
            1)
      << r.output;
  EXPECT_EQ(lines.size(), 1u) << r.output;
}

// e: a function-local static constructed before the default pool's first use is still there
// for the tasks that the pool's destructor runs at exit, and is destroyed after them.
TEST(ExitTest, StaticConstructedBeforePoolOutlivesQueuedTasks) {
  const child_result r = run_scenario({"static_before_pool"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "main returns", "logger destroyed after 201 lines"))
      << r.output;
  EXPECT_EQ(lines.back(), "logger destroyed after 201 lines") << r.output;
  EXPECT_EQ(lines.size(), task_count + 3u) << r.output;
}

// e2: a static constructed after the default pool (inside a task) is safe when main calls
// background::wait() before it returns: every task has run before any static is destroyed.
TEST(ExitTest, WaitBeforeReturnProtectsStaticConstructedAfterPool) {
  const child_result r = run_scenario({"wait_before_return"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "first task", "main returns")) << r.output;
  EXPECT_EQ(lines.back(), "logger destroyed after 201 lines") << r.output;
  EXPECT_EQ(lines.size(), task_count + 3u) << r.output;
}

// g: std::exit(3) in a task of a user pool that is a global static: its destructor, run by
// std::exit on that task's thread, runs the queued tasks and returns.
TEST(ExitTest, ExitFromTaskOfGlobalPoolRunsQueuedTasks) {
  const child_result r = run_scenario({"exit_from_global_pool_task"});
  ASSERT_TRUE(r.exited_with(3)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "exit called")) << r.output;
  EXPECT_EQ(lines.size(), task_count + 1u) << r.output;
}

// h: with the thread limit (RLIMIT_NPROC) below what the child's user already has, growing a
// pool throws std::system_error (resource_unavailable_try_again) and leaves it as it was, twice;
// a new pool throws the same; the 200 tasks queued behind its busy workers all run; and once the
// limit is back, the pool grows. Skipped when the child, running as root, cannot become nobody
// (root is not bound by the limit).
TEST(ExitTest, ThreadLimitMakesGrowingThrowAndKeepsThePool) {
  const child_result r = run_scenario({"nproc_limit"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  if (lines.size() == 1 && lines[0].rfind("skip: ", 0) == 0) GTEST_SKIP() << lines[0];
  const std::vector<std::string> before = {
      "resize to 8: system_error resource_unavailable_try_again", "size 2",
      "resize to 3: system_error resource_unavailable_try_again", "size 2",
      "new pool: system_error resource_unavailable_try_again",    "workers released",
  };
  const std::vector<std::string> after = {
      "all tasks done",
      "resize to 4 after the limit is restored: ok",
      "size 4",
  };
  ASSERT_EQ(lines.size(), before.size() + task_count + after.size()) << r.output;
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(lines[i], before[i]) << r.output;
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(lines[before.size() + task_count + i], after[i]) << r.output;
  }
  EXPECT_TRUE(all_tasks_ran_between(lines, "workers released", "all tasks done")) << r.output;
}

// f: a heap pool of each size is deleted by one of its own tasks while 200 tasks are queued:
// the destructor runs them all, then returns on that task's thread, and the task finishes.
class PoolDeletedFromOwnTaskTest : public testing::TestWithParam<int> {};

TEST_P(PoolDeletedFromOwnTaskTest, DestructorRunsQueuedTasksAndReturns) {
  const child_result r = run_scenario({"pool_deleted_by_own_task", std::to_string(GetParam())});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  const auto lines = lines_of(r.output);
  EXPECT_TRUE(all_tasks_ran_between(lines, "delete called", "destructor returned")) << r.output;
  EXPECT_EQ(lines.back(), "main returns") << r.output;
  EXPECT_EQ(lines.size(), task_count + 3u) << r.output;
}

INSTANTIATE_TEST_SUITE_P(ExitTest, PoolDeletedFromOwnTaskTest, testing::Values(1, 2, 4, 8));

}  // namespace
