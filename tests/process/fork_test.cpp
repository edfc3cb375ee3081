// fork() with live pools: each test forks this (multi-threaded) process while the pools are
// idle, have tasks queued, run tasks, are being resized, or from inside a task, and checks in
// the child that every pool works at once (same size, new workers, wait(), n, callbacks,
// on_error(), exit) and that the parent's tasks report `background::forked` there; and in the
// parent that its tasks all ran exactly once. A child reports a failed check on stderr and in its
// exit status; the parent waits for it with a bound (a hang detector, not a timing assertion).
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <background/background.hpp>
#include <background/compose.hpp>
#include <background/detail/testing.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "support/sanitizers.hpp"
#include "support/wait_until_refusing.hpp"
#include "wait_for_child.hpp"

namespace {

namespace bg = background;
using namespace std::chrono_literals;

// In a child: reports a failed check and makes the child's status say so.
#define CHILD_CHECK(cond)                                                                         \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "child %d: check failed at line %d: %s\n", getpid(), __LINE__, #cond); \
      return __LINE__ % 200 + 1;                                                                  \
    }                                                                                             \
  } while (false)

using background::testing::wait_for_child;

// The sanitizers' runtimes cannot follow a child of a multi-threaded process that starts
// threads. ThreadSanitizer's registry keeps the parent's threads, and a new thread that gets the
// stack (and so the id) of one of them ends the child ("dup thread with used id").
// AddressSanitizer (GCC 12's runtime) does not hold its allocator's locks across fork(), so a
// child's new thread can block for ever on one that a parent's thread held (seen: new workers in
// SizeClassAllocator64::GetFromAllocator and QuarantineCallback::Allocate, even with the parent's
// workers idle). Under either, the children end at once, and these tests check the parent's side:
// the fork handlers, with every lock of the library, and the parent's tasks all running exactly
// once. The plain and clang builds run the children.
constexpr bool children_run =
    !background::testing::thread_sanitizer && !background::testing::address_sanitizer;

// Ends a child with `code` through exit(), so that its pools drain and static destructors run as
// at any program's end.
[[noreturn]] void end_child(int code) { std::exit(code); }

// Forks; the child runs `child()` and exits with what it returns (through exit(), so that the
// default pool drains and static destructors run, as at any program's end). Returns the child's
// status in the parent.
template <class F>
int in_child(F&& child) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -2;
  if (pid == 0) {
    if (!children_run) _exit(0);
    int code = 100;
    try {
      code = child();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: exception: %s\n", getpid(), e.what());
      code = 101;
    } catch (...) {
      code = 102;
    }
    end_child(code);
  }
  return wait_for_child(pid);
}

// The threads of this process, from /proc/self/status.
long process_threads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

// What a child does with a pool to show it works: tasks, a wait, a resize, and back.
int use(bg::pool& p) {
  const std::size_t size = p.size();
  std::atomic<int> ran{0};
  std::vector<bg::future<int>> fs;
  for (int i = 0; i < 50; ++i) {
    fs.push_back(p.run([&ran, i] {
      ran.fetch_add(1);
      return i;
    }));
  }
  for (int i = 0; i < 50; ++i) CHILD_CHECK(fs[static_cast<std::size_t>(i)].get() == i);
  p.wait();
  CHILD_CHECK(ran.load() == 50);
  p.resize(size + 2);
  CHILD_CHECK(p.size() == size + 2);
  CHILD_CHECK(p.run([] { return 7; }).get() == 7);
  p.resize(size);
  CHILD_CHECK(p.size() == size);
  p.wait();
  return 0;
}

// Whether get() on `f` throws `forked` (any other outcome is false).
template <class F>
bool throws_forked(const F& f) {
  try {
    (void)f.get();
  } catch (const bg::forked&) {
    return true;
  } catch (...) {
  }
  return false;
}

// A task that blocks until released, to hold a worker or keep tasks queued behind it.
struct gate {
  std::atomic<bool> open{false};
  std::atomic<int> entered{0};
  void pass() {
    entered.fetch_add(1);
    while (!open.load()) std::this_thread::sleep_for(1ms);
  }
  void wait_entered(int n) const {
    while (entered.load() < n) std::this_thread::sleep_for(1ms);
  }
};

TEST(ForkTest, AnIdleChildStartsNoThreadUntilItsFirstTask) {
  bg::pool p(3);
  EXPECT_EQ(p.run([] { return 1; }).get(), 1);
  bg::run([] {}).get();
  const int status = in_child([&] {
    CHILD_CHECK(process_threads() == 1);  // only the thread that forked
    CHILD_CHECK(p.size() == 3);
    CHILD_CHECK(bg::detail::worker_threads(p) == 0);
    CHILD_CHECK(p.stats().threads == 0);
    p.wait();  // nothing to wait for
    CHILD_CHECK(process_threads() == 1);
    CHILD_CHECK(p.run([] { return 2; }).get() == 2);
    CHILD_CHECK(bg::detail::worker_threads(p) == 3);
    CHILD_CHECK(use(p) == 0);
    CHILD_CHECK(bg::run([] { return 3; }).get() == 3);
    return use(bg::default_pool());
  });
  EXPECT_EQ(status, 0);
  EXPECT_EQ(p.run([] { return 4; }).get(), 4);  // the parent's pool is untouched
}

TEST(ForkTest, ANewPoolInTheChildWorks) {
  bg::pool p(2);
  const int status = in_child([] {
    bg::pool mine(4);
    return use(mine);
  });
  EXPECT_EQ(status, 0);
  EXPECT_EQ(p.run([] { return 1; }).get(), 1);
}

TEST(ForkTest, TasksQueuedAtTheForkRunOnlyInTheParent) {
  bg::pool p(1);
  gate g;
  std::atomic<int> ran{0};
  auto blocker = p.run([&g] { g.pass(); });
  g.wait_entered(1);
  std::vector<bg::future<int>> queued;
  for (int i = 0; i < 100; ++i) {
    queued.push_back(p.run([&ran, i] {
      ran.fetch_add(1);
      return i;
    }));
  }
  auto chained = queued.front().then([](int x) { return x + 1; });
  const int status = in_child([&] {
    for (auto& f : queued) {
      CHILD_CHECK(f.done());
      CHILD_CHECK(throws_forked(f));
    }
    CHILD_CHECK(blocker.wait_for(0s));  // running in the parent: forked here
    CHILD_CHECK(blocker.exception() != nullptr);
    CHILD_CHECK(throws_forked(chained));  // the parent's continuation of the parent's task
    CHILD_CHECK(use(p) == 0);
    p.wait();
    CHILD_CHECK(ran.load() == 0);  // none of the parent's tasks ran here
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  p.wait();
  EXPECT_EQ(ran.load(), 100);  // each exactly once, in the parent
  for (int i = 0; i < 100; ++i) EXPECT_EQ(queued[static_cast<std::size_t>(i)].get(), i);
  EXPECT_EQ(chained.get(), 1);
}

TEST(ForkTest, TheParentsFuturesInTheChildComposeAndCancelAsFinished) {
  bg::pool p(2);
  gate g;
  auto running = p.run([&g] {
    g.pass();
    return 5;
  });
  g.wait_entered(1);
  const int status = in_child([&] {
    // cancel() cannot cancel what has started (in the parent): false, and it is done.
    CHILD_CHECK(!running.cancel());
    CHILD_CHECK(running.done());
    // A continuation made in the child sees the failure; one that takes the future runs.
    auto next = running.then([](int x) { return x; });
    CHILD_CHECK(throws_forked(next));
    auto seen = running.then([](bg::future<int> f) { return f.exception() != nullptr; });
    CHILD_CHECK(seen.get());
    auto all = bg::when_all(std::vector<bg::future<int>>{running, p.run([] { return 1; })});
    CHILD_CHECK(throws_forked(all));
    CHILD_CHECK(bg::when_any(std::vector<bg::future<int>>{running}).get() == 0);
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  EXPECT_EQ(running.get(), 5);
}

TEST(ForkTest, ForkedFuturesAreNotReportedToOnError) {
  std::atomic<int> reports{0};
  bg::pool p(1);
  gate g;
  auto blocker = p.run([&g] { g.pass(); });
  g.wait_entered(1);
  auto queued = p.run([]() -> int { throw std::runtime_error("parent's"); });
  std::vector<bg::future<int>> more;
  for (int i = 0; i < 3; ++i) more.push_back(p.run([i] { return i; }));
  const int status = in_child([&] {
    bg::on_error([&reports](std::exception_ptr) { reports.fetch_add(1); });
    {
      auto dropped = std::move(queued);  // the parent's task, never observed here
      CHILD_CHECK(dropped.done());
    }
    // Nor when the child's own continuation, combination or task lets `forked` through.
    {
      auto next = more[0].then([](int x) { return x; });
      auto all = bg::when_all(std::vector<bg::future<int>>{more[1]});
      next.wait();
      all.wait();
    }
    (void)p.run([f = more[2]] { return f.get(); });
    p.wait();
    CHILD_CHECK(reports.load() == 0);
    // A child's own failing task is reported as in any process.
    (void)p.run([] { throw std::runtime_error("child's"); });
    p.wait();
    CHILD_CHECK(reports.load() == 1);
    bg::on_error({});
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  EXPECT_THROW((void)queued.get(), std::runtime_error);
}

TEST(ForkTest, CallbacksOfTheParentAndTheChildAreCalledInTheChild) {
  bg::pool p(2);
  std::atomic<int> parents{0};
  p.callback([&parents](const bg::outcome&) { parents.fetch_add(1); });
  p.run([] {}).get();
  p.wait();
  const int before = parents.load();
  const int status = in_child([&] {
    std::atomic<int> childs{0};
    p.callback([&childs](const bg::outcome&) { childs.fetch_add(1); });
    for (int i = 0; i < 10; ++i) (void)p.run([] {});
    p.wait();
    CHILD_CHECK(parents.load() == before + 10);
    CHILD_CHECK(childs.load() == 10);
    CHILD_CHECK(p.stats().completed >= 10);
    return 0;
  });
  EXPECT_EQ(status, 0);
}

TEST(ForkTest, ForkFromInsideATask) {
  bg::pool p(2);
  std::atomic<int> ran{0};
  auto forker = p.run([&p, &ran] {
    ran.fetch_add(1);
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      if (!children_run) _exit(0);
      // The child: this thread was one of p's workers; p has a new engine here.
      int code = 0;
      try {
        code = use(p);
        if (code == 0) code = bg::run([] { return 0; }).get();
      } catch (...) {
        code = 103;
      }
      end_child(code);
    }
    return wait_for_child(pid);
  });
  EXPECT_EQ(forker.get(), 0);
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(p.run([] { return 1; }).get(), 1);
}

TEST(ForkTest, ForkWhileAnotherThreadResizes) {
  bg::pool p(2);
  std::atomic<bool> stop{false};
  std::atomic<long> ran{0};
  std::thread resizer([&] {
    for (std::size_t k = 0; !stop.load(); ++k) {
      p.resize(1 + k % 6);
      for (int i = 0; i < 20; ++i) (void)p.run([&ran] { ran.fetch_add(1); });
    }
  });
  long submitted_before = 0;
  for (int round = 0; round < 20; ++round) {
    const int status = in_child([&] { return use(p); });
    EXPECT_EQ(status, 0) << "round " << round;
    submitted_before = ran.load();
  }
  stop = true;
  resizer.join();
  p.wait();
  EXPECT_GE(ran.load(), submitted_before);
}

TEST(ForkTest, ForkWhileTasksRunAndSubmit) {
  bg::pool p(4);
  std::atomic<bool> stop{false};
  std::atomic<long> submitted{0}, ran{0};
  std::vector<std::thread> producers;
  for (int k = 0; k < 2; ++k) {
    producers.emplace_back([&] {
      while (!stop.load()) {
        submitted.fetch_add(1);
        (void)p.run([&ran] {
          ran.fetch_add(1);
          std::this_thread::yield();
        });
        bg::post([] {});
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    const int status = in_child([&] {
      CHILD_CHECK(use(p) == 0);
      return use(bg::default_pool());
    });
    EXPECT_EQ(status, 0) << "round " << round;
  }
  stop = true;
  for (auto& t : producers) t.join();
  p.wait();
  EXPECT_EQ(ran.load(), submitted.load());  // every task of the parent's exactly once
}

// Each process of the tree (depth 3, two children each: 14 in all) forks while its pools
// work, uses them, and reports its subtree's failures in its exit status.
int fork_tree(bg::pool& p, int depth) {
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) (void)p.run([&ran] { ran.fetch_add(1); });
  int failures = 0;
  if (depth > 0) {
    for (int k = 0; k < 2; ++k) {
      std::fflush(nullptr);
      const pid_t pid = fork();
      if (pid == 0) {
        // Under a sanitizer, _exit() as in in_child(): exit() would run LeakSanitizer's check
        // in a child whose parent's threads are gone, which can hang (seen in CI under ASan).
        if (!children_run) _exit(0);
        end_child(fork_tree(p, depth - 1));
      }
      if (pid < 0 || wait_for_child(pid) != 0) ++failures;
    }
  }
  p.wait();
  if (ran.load() != 20) ++failures;
  if (use(p) != 0) ++failures;
  return failures;
}

TEST(ForkTest, ForkTreesOfDepthThree) {
  bg::pool p(3);
  EXPECT_EQ(fork_tree(p, 3), 0);
}

// A counter in memory shared by the parent and its children (MAP_SHARED survives fork()).
std::atomic<int>* shared_counter() {
  void* m = mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  return new (m) std::atomic<int>(0);
}

// A task that forks and lets the child return from it (a "fork a worker process" pattern):
// the child's thread finishes the parent's task there and goes back to the old engine's loop,
// which leaves; the child then ends when its last thread does (exit(0)). The pool has a
// callback: the parent's engine gave its callback list to the child's new engine, so
// finishing the task on the old one must not walk a list that is gone.
TEST(ForkTest, AChildThatReturnsFromTheForkingTaskEndsCleanlyWithCallbacks) {
  bg::pool p(2);
  std::atomic<int> calls{0};
  p.callback([&calls](const bg::outcome&) { calls.fetch_add(1); });
  auto forker = p.run([]() -> int {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      if (!children_run) _exit(0);
      return -1;  // the child goes on: the task returns here too
    }
    return wait_for_child(pid);
  });
  EXPECT_EQ(forker.get(), 0);  // the child ended by exit(0), not by a signal
  p.wait();
  EXPECT_EQ(calls.load(), 1);
}

// As above, with a continuation of the forking task, made by the parent: it is the parent's
// task, so it runs once, in the parent, never in the child where the forking task returns.
TEST(ForkTest, TheParentsContinuationOfTheForkingTaskDoesNotRunInTheChild) {
  std::atomic<int>* runs = shared_counter();
  ASSERT_NE(runs, nullptr);
  bg::pool p(2);
  std::atomic<bool> go{false};
  auto forker = p.run([&go]() -> int {
    while (!go.load()) std::this_thread::sleep_for(1ms);
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      if (!children_run) _exit(0);
      return -1;
    }
    return wait_for_child(pid);
  });
  auto next = forker.then([runs](int status) {
    runs->fetch_add(1);
    return status;
  });
  go = true;
  EXPECT_EQ(next.get(), 0);
  EXPECT_EQ(runs->load(), 1);  // 2: it ran in the child as well
  munmap(runs, sizeof(std::atomic<int>));
}

// A callable whose destructor blocks until a gate opens: cancel() makes the task final, then
// destroys the callable, then closes the task's continuation stack; a fork() in between leaves
// the child a final task whose stack is still open.
struct slow_to_destroy {
  gate* g;
  explicit slow_to_destroy(gate* gate_) : g(gate_) {}
  slow_to_destroy(slow_to_destroy&& other) noexcept : g(std::exchange(other.g, nullptr)) {}
  slow_to_destroy(const slow_to_destroy&) = delete;
  ~slow_to_destroy() {
    if (g != nullptr) g->pass();
  }
  int operator()() const { return 1; }
};

TEST(ForkTest, AContinuationInTheChildOfATaskCancelledAtTheForkFinishes) {
  bg::pool p(1);
  gate blocker_gate, dtor_gate;
  auto blocker = p.run([&blocker_gate] { blocker_gate.pass(); });
  blocker_gate.wait_entered(1);
  auto queued = p.run(slow_to_destroy(&dtor_gate));
  std::thread canceller([&queued] { (void)queued.cancel(); });
  dtor_gate.wait_entered(1);  // final (cancelled), its callable being destroyed
  const int status = in_child([&] {
    CHILD_CHECK(queued.done());
    auto next = queued.then([](int x) { return x; });
    CHILD_CHECK(next.wait_for(10s));  // hangs: pushed on a stack nobody will ever close
    return 0;
  });
  EXPECT_EQ(status, 0);
  dtor_gate.open = true;
  canceller.join();
  blocker_gate.open = true;
  p.wait();
}

// as_completed() made before the fork, over tasks queued at the fork: the child's copy yields
// them (with `forked`) rather than waiting for ever for a notification from the parent.
TEST(ForkTest, AnAsCompletedRangeMadeBeforeTheForkEndsInTheChild) {
  bg::pool p(1);
  gate g;
  auto blocker = p.run([&g] { g.pass(); });
  g.wait_entered(1);
  std::vector<bg::future<int>> fs;
  for (int i = 0; i < 3; ++i) fs.push_back(p.run([i] { return i; }));
  auto range = bg::as_completed(fs);
  const int status = in_child([&] {
    alarm(10);  // a hang ends the child with SIGALRM
    int yielded = 0;
    for (const auto& f : range) {
      CHILD_CHECK(f.done());
      ++yielded;
    }
    CHILD_CHECK(yielded == 3);
    alarm(0);
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  int seen = 0;
  for (const auto& f : range) {
    (void)f.get();
    ++seen;
  }
  EXPECT_EQ(seen, 3);
}

// The child's first look at a parent's future may be any of them: get() (wait()), then(),
// when_all()/when_any() (relink()) or cancel(), none preceded by done(). Each must see the
// parent's task as finished with `forked`, never wait for it or take it over.
TEST(ForkTest, EachFirstLookAtAParentsQueuedFutureSeesItForked) {
  bg::pool p(1);
  gate g;
  auto blocker = p.run([&g] { g.pass(); });
  g.wait_entered(1);
  std::vector<bg::future<int>> fs;
  for (int i = 0; i < 5; ++i) fs.push_back(p.run([i] { return i; }));
  const int status = in_child([&] {
    alarm(20);                                        // a hang ends the child with SIGALRM
    CHILD_CHECK(throws_forked(fs[0]));                // get() first: wait()
    auto next = fs[1].then([](int x) { return x; });  // then() first: attach_continuation()
    CHILD_CHECK(next.wait_for(10s));
    CHILD_CHECK(throws_forked(next));
    auto all = bg::when_all(std::vector<bg::future<int>>{fs[2]});  // relink()
    CHILD_CHECK(all.wait_for(10s));
    CHILD_CHECK(!fs[3].cancel());  // cancel() first: it cannot cancel the parent's task
    CHILD_CHECK(throws_forked(fs[3]));
    CHILD_CHECK(p.stats().cancelled == 0);
    auto any = bg::when_any(std::vector<bg::future<int>>{fs[4]});  // relink() of a node
    CHILD_CHECK(any.wait_for(10s));
    CHILD_CHECK(any.get() == 0);
    alarm(0);
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].get(), i);
}

// stats() in the child counts what the pool finished in the parent before the fork, then the
// child's own tasks, as one pool.
TEST(ForkTest, StatsInTheChildCarryTheParentsCounts) {
  bg::on_error([](std::exception_ptr) {});  // the failures below are expected
  bg::pool p(2);
  for (int i = 0; i < 10; ++i) (void)p.run([] {});
  for (int i = 0; i < 3; ++i) (void)p.run([] { throw std::runtime_error("counted"); });
  p.wait();
  const bg::pool_stats before = p.stats();
  const int status = in_child([&] {
    const bg::pool_stats at_fork = p.stats();
    CHILD_CHECK(at_fork.completed == before.completed);
    CHILD_CHECK(at_fork.failed == before.failed);
    CHILD_CHECK(at_fork.cancelled == before.cancelled);
    for (int i = 0; i < 4; ++i) (void)p.run([] {});
    p.wait();
    CHILD_CHECK(p.stats().completed == before.completed + 4);
    return 0;
  });
  bg::on_error({});
  EXPECT_EQ(status, 0);
}

// A pool's task() made before the fork submits, in the child, to the child's engine: its calls
// run on the child's workers (and p.wait() waits for them), not inline on the caller.
TEST(ForkTest, ATaskFunctionMadeBeforeTheForkSubmitsToTheChildsEngine) {
  bg::pool p(2);
  auto where = p.task([](int x) { return std::make_pair(bg::this_pool(), x); });
  EXPECT_EQ(where(1).get().first, &p);
  const int status = in_child([&] {
    const auto r = where(2).get();
    CHILD_CHECK(r.first == &p);  // null: it ran inline on this thread, on the parent's engine
    CHILD_CHECK(r.second == 2);
    CHILD_CHECK(bg::detail::worker_threads(p) == 2);
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// A pool that another thread is shutting down when the process forks stays shut in the child
// (it gets a closed engine, and its registry entry stays, pointing at it): submits and then(p, f)
// throw shutdown_error there, and the other pools work.
TEST(ForkTest, APoolShuttingDownAtTheForkStaysShutInTheChild) {
  gate g;
  bg::pool closing(1);
  closing.post([&g] { g.pass(); });
  g.wait_entered(1);
  std::thread shutter([&closing] { closing.shutdown(); });
  background::testing::wait_until_refusing(closing);  // shutdown() has started
  const int status = in_child([&] {
    bool refused = false;
    try {
      (void)closing.run([] { return 1; });
    } catch (const bg::shutdown_error&) {
      refused = true;
    }
    CHILD_CHECK(refused);
    refused = false;
    try {
      (void)bg::run([] { return 1; }).then(closing, [](int x) { return x; });
    } catch (const bg::shutdown_error&) {
      refused = true;
    }
    CHILD_CHECK(refused);
    CHILD_CHECK(closing.stats().threads == 0);
    CHILD_CHECK(bg::run([] { return 2; }).get() == 2);
    return 0;
  });
  EXPECT_EQ(status, 0);
  g.open = true;
  shutter.join();
}

// The error handler's lock, taken by another thread that keeps setting the handler while this
// one forks: the child still reports and sets handlers.
TEST(ForkTest, ForkWhileAnotherThreadSetsTheErrorHandler) {
  bg::pool p(2);
  std::atomic<bool> stop{false};
  std::thread setter([&stop] {
    while (!stop.load()) {
      bg::on_error([](std::exception_ptr) {});
      bg::on_error({});
    }
  });
  for (int round = 0; round < 40; ++round) {
    const int status = in_child([&] {
      alarm(10);
      std::atomic<int> reports{0};
      bg::on_error([&reports](std::exception_ptr) { reports.fetch_add(1); });
      p.post([] { throw std::runtime_error("child's"); });
      p.wait();
      bg::on_error({});
      CHILD_CHECK(reports.load() == 1);
      alarm(0);
      return 0;
    });
    EXPECT_EQ(status, 0) << "round " << round;
  }
  stop = true;
  setter.join();
}

}  // namespace
