// alloc_failure_test: what every public call does when memory runs out (pool.hpp, future.hpp,
// background.hpp, error.hpp). The program replaces the global operator new (every replaceable
// form) with one that can be armed, on the calling thread only, to fail its k-th allocation:
// the throwing forms throw std::bad_alloc, the nothrow forms return null.
//
// Each scenario runs a public call once unarmed, counting the allocations the call makes on the
// calling thread (N), then once with each of them failing in turn. After every run it checks
// that std::bad_alloc came out of the call (or, where a path is documented to handle it, that
// the call completed and the failure went where the contract says), that a submission that
// threw never runs its task and one that returned runs it exactly once, that everything tasks
// captured is destroyed once the futures and pools are gone, and that the pool still works.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "background/background.hpp"
#include "background/detail/testing.hpp"
#include "support/counted.hpp"

namespace fault {

// Every task state must be one operator new here, so that the sweep's counts are exact: the
// per-thread block caches (src/task_memory.cpp) are off in this program.
const bool task_cache_off = (background::detail::use_task_cache(false), true);

// The calling thread's injection. Constant-initialized, so operator new can use it on any
// thread at any time, before main and during thread exit.
struct injection {
  bool active = false;  // counting this thread's allocations
  long seen = 0;        // allocations made while active
  long fail_at = 0;     // the one that fails (1 for the first); 0: none
  bool failed = false;  // it was reached, and failed
};
constinit thread_local injection state{};

// Counts this allocation if the thread is armed, and says whether it is the one to fail.
bool fail_this_one() noexcept {
  injection& s = state;
  if (!s.active || ++s.seen != s.fail_at) return false;
  s.failed = true;
  return true;
}

// The allocation behind every form: null when injected or out of memory.
void* try_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (fail_this_one()) return nullptr;
  if (size == 0) size = 1;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  // aligned_alloc wants a multiple of the alignment (ASan checks it).
  return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

void* allocate(std::size_t size, std::size_t alignment) {
  void* p = try_allocate(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// The deallocation behind every form. Not inlined: GCC would otherwise see free() called on
// what operator new returned, at every delete, and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }

}  // namespace fault

// The replaceable forms of operator new and delete. malloc and free underneath, so that ASan
// and LeakSanitizer still see every allocation.
void* operator new(std::size_t size) { return fault::allocate(size, 0); }
void* operator new[](std::size_t size) { return fault::allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return fault::allocate(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return fault::allocate(size, static_cast<std::size_t>(al));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return fault::try_allocate(size, 0);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return fault::try_allocate(size, 0);
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return fault::try_allocate(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return fault::try_allocate(size, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { fault::release(p); }
void operator delete[](void* p) noexcept { fault::release(p); }
void operator delete(void* p, std::size_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::size_t) noexcept { fault::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { fault::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { fault::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { fault::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { fault::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { fault::release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fault::release(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fault::release(p);
}

namespace {

using background::testing::counted;

// Arms the calling thread for its lifetime: counts the allocations the thread makes and fails
// the `fail_at`-th (none if 0). Other threads are never affected.
class armed {
 public:
  explicit armed(long fail_at) noexcept { fault::state = {true, 0, fail_at, false}; }
  ~armed() { fault::state.active = false; }
  armed(const armed&) = delete;
  armed& operator=(const armed&) = delete;

  long allocations() const noexcept { return fault::state.seen; }
  bool injected() const noexcept { return fault::state.failed; }
};

// What one call made under injection did.
struct attempt_result {
  long allocations = 0;          // on the calling thread, during the call
  bool injected = false;         // the chosen allocation was reached, and failed
  bool threw_bad_alloc = false;  // std::bad_alloc came out of the call
};

// Runs `call` with the `fail_at`-th allocation of this thread failing (none if 0). Any
// exception but std::bad_alloc goes on to the test.
template <class Call>
attempt_result attempt(long fail_at, Call&& call) {
  attempt_result r;
  armed guard(fail_at);
  try {
    std::forward<Call>(call)();
  } catch (const std::bad_alloc&) {
    r.threw_bad_alloc = true;
  }
  r.allocations = guard.allocations();
  r.injected = guard.injected();
  return r;
}

// For a call that must let std::bad_alloc out when one of its allocations fails: checks that,
// and returns whether the call succeeded (always, when `fail_at` is 0).
bool expect_throws_when_injected(const attempt_result& r, long fail_at) {
  if (fail_at == 0) {
    EXPECT_FALSE(r.threw_bad_alloc) << "std::bad_alloc with no allocation failing";
    return !r.threw_bad_alloc;
  }
  EXPECT_TRUE(r.injected) << "allocation " << fail_at
                          << " was not made this time: the count is not deterministic";
  EXPECT_TRUE(r.threw_bad_alloc) << "allocation " << fail_at
                                 << " failed, but no std::bad_alloc came out of the call";
  return !r.threw_bad_alloc;
}

// For a call documented to handle the failure itself (a noexcept call): checks that the
// injected failure happened and that nothing came out of the call.
void expect_handled_when_injected(const attempt_result& r, long fail_at) {
  if (fail_at != 0) {
    EXPECT_TRUE(r.injected) << "allocation " << fail_at
                            << " was not made this time: the count is not deterministic";
  }
  EXPECT_FALSE(r.threw_bad_alloc) << "std::bad_alloc came out of a call that must handle it";
}

// Prints N, the number of allocations the current test's call makes, and records it in the
// test's XML properties.
void print_count(long n) {
  const auto* test = testing::UnitTest::GetInstance()->current_test_info();
  std::printf("[  alloc   ] %s.%s: N = %ld\n", test->test_suite_name(), test->name(), n);
  testing::Test::RecordProperty("allocations", std::to_string(n));
}

// Runs `scenario(k)`, which makes its public call with its k-th allocation failing (none if
// k is 0) and returns how many allocations the call made: once to warm up (lazily created
// state: the pool registry, the default pool), once to count them (N), then for k = 1..N,
// stopping at the first failure. Prints and returns N.
template <class Scenario>
long sweep(Scenario&& scenario) {
  scenario(0L);
  if (testing::Test::HasFailure()) return 0;
  const long n = scenario(0L);
  for (long k = 1; k <= n && !testing::Test::HasFailure(); ++k) {
    SCOPED_TRACE("allocation " + std::to_string(k) + " of " + std::to_string(n) + " fails");
    scenario(k);
  }
  print_count(n);
  return n;
}

// What tasks capture: a live counter, and a string long enough to be on the heap, so that
// copying the capture into the library's state allocates too.
struct payload {
  counted token{0};
  std::string text = std::string(64, 'p');
};

// A long argument: copying it into the task allocates.
std::string long_argument() { return std::string(100, 'a'); }

// Checks that `p` still runs tasks, resizes and waits.
void expect_pool_works(background::pool& p) {
  EXPECT_EQ(p.run([](int x) { return x * 2; }, 21).get(), 42);
  const std::size_t before = p.size();
  p.resize(before + 1);
  EXPECT_EQ(p.size(), before + 1);
  p.resize(before);
  p.wait();
}

// Installs a handler that counts unobserved exceptions (capturing only `this`, so the library
// copies it without allocating), and checks at the end that nothing captured is alive.
class fault_fixture : public testing::Test {
 protected:
  void SetUp() override {
    counted::live = 0;
    previous_ = background::on_error([this](std::exception_ptr e) { record(std::move(e)); });
  }
  void TearDown() override {
    background::on_error(std::move(previous_));
    EXPECT_EQ(counted::live, 0) << "objects captured by tasks were not destroyed";
  }

  void record(std::exception_ptr e) {
    ++reports_;
    try {
      std::rethrow_exception(std::move(e));
    } catch (const std::bad_alloc&) {
      ++bad_alloc_reports_;
    } catch (...) {
    }
  }
  void reset_reports() {
    reports_ = 0;
    bad_alloc_reports_ = 0;
  }

  std::atomic<int> reports_{0};
  std::atomic<int> bad_alloc_reports_{0};

 private:
  background::error_handler previous_;
};

class AllocFailureTest : public fault_fixture, public testing::WithParamInterface<std::size_t> {
 protected:
  std::size_t size() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, AllocFailureTest, testing::Values(1, 2, 4));

// pool p{n}: the engine, its registry entry and each worker (list node, thread state). A
// failure throws std::bad_alloc and leaves no pool; the next pool starts as usual.
TEST_P(AllocFailureTest, PoolConstruction) {
  const long n = sweep([&](long k) {
    std::optional<background::pool> p;
    const attempt_result r = attempt(k, [&] { p.emplace(size()); });
    if (expect_throws_when_injected(r, k)) {
      EXPECT_EQ(p->size(), size());
    } else {
      EXPECT_FALSE(p.has_value());
      p.emplace(size());
    }
    expect_pool_works(*p);
    return r.allocations;
  });
  EXPECT_GE(n, 1 + static_cast<long>(size()));
}

// p.run(f, arg) with a capturing lambda that returns a value: the task's state, and the
// copies of the capture and the argument made in it. A task whose submission threw never runs;
// one that was accepted runs once and its value arrives.
TEST_P(AllocFailureTest, RunWithCapturingLambda) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      const payload data;
      const auto f = [data, &runs](const std::string& arg) {
        ++runs;
        return counted{static_cast<int>(arg.size() + data.text.size())};
      };
      const std::string arg = long_argument();
      std::optional<background::future<counted>> result;
      r = attempt(k, [&] { result = p.run(f, arg); });
      const bool accepted = expect_throws_when_injected(r, k);
      EXPECT_EQ(result.has_value(), accepted);
      if (accepted) {
        EXPECT_EQ(result->get().value, 164);
      }
      p.wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 3);  // the state, the capture's string, the argument
}

// p.run(f) of a void task whose future is dropped at once (fire-and-forget).
TEST_P(AllocFailureTest, FireAndForgetRun) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      const payload data;
      const auto f = [data, &runs] { ++runs; };
      r = attempt(k, [&] { p.run(f); });
      const bool accepted = expect_throws_when_injected(r, k);
      p.wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// p.task(f) (a copy of f), then a call of it (the state, f's copy in it, the argument).
TEST_P(AllocFailureTest, TaskThenCall) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      const payload data;
      const auto f = [data, &runs](const std::string& arg) {
        ++runs;
        return static_cast<int>(arg.size());
      };
      const std::string arg = long_argument();
      std::optional<background::future<int>> result;
      r = attempt(k, [&] {
        auto submit = p.task(f);
        result = submit(arg);
      });
      const bool accepted = expect_throws_when_injected(r, k);
      if (accepted) {
        EXPECT_EQ(result->get(), 100);
      }
      p.wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 4);
}

// p.task(f) with a move-only f, which the calls share (one shared allocation), then a call.
TEST_P(AllocFailureTest, TaskWithMoveOnlyCallableThenCall) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      auto f = [owned = std::make_unique<counted>(5), &runs](int x) {
        ++runs;
        return x + owned->value;
      };
      std::optional<background::future<int>> result;
      r = attempt(k, [&] {
        auto submit = p.task(std::move(f));
        result = submit(1);
      });
      const bool accepted = expect_throws_when_injected(r, k);
      if (accepted) {
        EXPECT_EQ(result->get(), 6);
      }
      p.wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// a.then(f) while `a` is still running: the continuation's state and the copy of f. A
// continuation whose then() threw never runs; `a` is unaffected.
TEST_P(AllocFailureTest, ThenOnPendingFuture) {
  const long n = sweep([&](long k) {
    std::atomic<int> continuation_runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      auto a = p.run([&release] {
        release.wait();
        return 20;
      });
      const payload data;
      const auto next = [data, &continuation_runs](int v) {
        ++continuation_runs;
        return v + 1;
      };
      std::optional<background::future<int>> b;
      r = attempt(k, [&] { b = a.then(next); });
      const bool accepted = expect_throws_when_injected(r, k);
      release.count_down();
      EXPECT_EQ(a.get(), 20);
      if (accepted) {
        EXPECT_EQ(b->get(), 21);
      }
      p.wait();
      EXPECT_EQ(continuation_runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// As above with a task that fails: whether then() succeeded or not, its exception is reported
// exactly once once every future is gone (a continuation left half-registered as a taker would
// hold the report back for ever).
TEST_P(AllocFailureTest, ThenOnPendingFailingFutureReportsOnce) {
  const long n = sweep([&](long k) {
    reset_reports();
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      std::optional<background::future<int>> a = p.run([&release]() -> int {
        release.wait();
        throw std::runtime_error("antecedent failed");
      });
      const payload data;
      const auto next = [data](int v) { return v; };
      std::optional<background::future<int>> b;
      r = attempt(k, [&] { b = a->then(next); });
      expect_throws_when_injected(r, k);
      a.reset();
      b.reset();
      release.count_down();
      p.wait();
      EXPECT_EQ(reports_, 1);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// a.then(f) on a finished `a`: the continuation is submitted at once.
TEST_P(AllocFailureTest, ThenOnFinishedFuture) {
  const long n = sweep([&](long k) {
    std::atomic<int> continuation_runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      auto a = p.run([] { return 20; });
      a.wait();
      const payload data;
      const auto next = [data, &continuation_runs](int v) {
        ++continuation_runs;
        return v + 1;
      };
      std::optional<background::future<int>> b;
      r = attempt(k, [&] { b = a.then(next); });
      const bool accepted = expect_throws_when_injected(r, k);
      if (accepted) {
        EXPECT_EQ(b->get(), 21);
      }
      p.wait();
      EXPECT_EQ(continuation_runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// a.then(f).then(g) on a pending `a`: if only the second then() throws, the first continuation
// (whose future was a temporary) still runs, once; g never does.
TEST_P(AllocFailureTest, ChainedThen) {
  const long n = sweep([&](long k) {
    std::atomic<int> first_runs{0};
    std::atomic<int> second_runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      auto a = p.run([&release] {
        release.wait();
        return 1;
      });
      const payload data;
      const auto first = [data, &first_runs](int v) {
        ++first_runs;
        return v + 1;
      };
      const auto second = [data, &second_runs](int v) {
        ++second_runs;
        return v * 10;
      };
      bool first_attached = false;
      std::optional<background::future<int>> c;
      r = attempt(k, [&] {
        auto b = a.then(first);
        first_attached = true;
        c = std::move(b).then(second);
      });
      const bool accepted = expect_throws_when_injected(r, k);
      release.count_down();
      if (accepted) {
        EXPECT_EQ(c->get(), 20);
      }
      p.wait();
      EXPECT_EQ(first_runs, first_attached ? 1 : 0);
      EXPECT_EQ(second_runs, accepted ? 1 : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 4);
}

// p.callback(f): the std::function holding f (and f's copy), and the pool's node for it. A
// callback whose registration threw is never called; one that was registered sees every later
// task, and what it captured goes with the pool.
TEST_P(AllocFailureTest, Callback) {
  constexpr int tasks = 10;
  const long n = sweep([&](long k) {
    std::atomic<int> calls{0};
    attempt_result r;
    {
      background::pool p{size()};
      const payload data;
      const auto f = [data, &calls](const background::outcome&) { ++calls; };
      r = attempt(k, [&] { p.callback(f); });
      const bool accepted = expect_throws_when_injected(r, k);
      for (int i = 0; i < tasks; ++i) p.run([] {});
      p.wait();
      EXPECT_EQ(calls, accepted ? tasks : 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// p.resize(8): each new worker's list node and thread state. A failure throws std::bad_alloc
// and leaves the size as it was (threads started by the call leave); the tasks queued behind
// busy workers all run, and the pool grows on the next try.
TEST_P(AllocFailureTest, ResizeGrowth) {
  constexpr std::size_t target = 8;
  constexpr int queued = 10;
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      for (std::size_t i = 0; i < size(); ++i) p.run([&release] { release.wait(); });
      for (int i = 0; i < queued; ++i) p.run([&runs] { ++runs; });
      r = attempt(k, [&] { p.resize(target); });
      const bool accepted = expect_throws_when_injected(r, k);
      EXPECT_EQ(p.size(), accepted ? target : size());
      release.count_down();
      p.wait();
      EXPECT_EQ(runs, queued);
      p.resize(target);
      EXPECT_EQ(p.size(), target);
      expect_pool_works(p);
    }
    return r.allocations;
  });
  EXPECT_GE(n, static_cast<long>(target - size()));
}

// cancel() is noexcept and allocates nothing itself; what allocates on its path is a callback,
// which the cancelling thread runs. A callback that throws std::bad_alloc is reported to the
// on_error() handler, as any throwing callback is, and cancel() still succeeds: the task and its
// continuation never run, and their captures are freed.
TEST_P(AllocFailureTest, CancelWithAnAllocatingCallback) {
  const long n = sweep([&](long k) {
    reset_reports();
    std::atomic<int> runs{0};
    std::atomic<int> continuation_runs{0};
    std::atomic<int> cancellations_seen{0};
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      for (std::size_t i = 0; i < size(); ++i) p.run([&release] { release.wait(); });
      p.callback([&cancellations_seen](const background::outcome& o) {
        auto note = std::make_unique<int>(o.cancelled() ? 1 : 0);  // the allocation
        cancellations_seen += *note;
      });
      const payload data;
      auto f = p.run([data, &runs] {
        ++runs;
        return 1;
      });
      auto g = f.then([data, &continuation_runs](int v) {
        ++continuation_runs;
        return v;
      });
      bool cancelled = false;
      r = attempt(k, [&] { cancelled = f.cancel(); });
      expect_handled_when_injected(r, k);
      EXPECT_TRUE(cancelled);
      EXPECT_EQ(cancellations_seen, k == 0 ? 1 : 0);
      EXPECT_EQ(reports_, k == 0 ? 0 : 1);
      EXPECT_EQ(bad_alloc_reports_, k == 0 ? 0 : 1);
      EXPECT_THROW(f.get(), background::cancelled);
      EXPECT_THROW(g.get(), background::cancelled);
      release.count_down();
      p.wait();
      EXPECT_EQ(runs, 0);
      EXPECT_EQ(continuation_runs, 0);
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_EQ(n, 1);  // only the callback's
}

// Copying, assigning, moving, waiting for, reading and dropping futures of finished tasks
// allocate nothing (copies, moves and destruction are noexcept), not even when the last copy of
// a failed task's future goes and its exception is reported (to a handler stored in place).
// Nothing can fail there, so there is nothing to sweep.
TEST_P(AllocFailureTest, CopyingWaitingAndDroppingFuturesAllocateNothing) {
  const long n = sweep([&](long k) {
    reset_reports();
    background::pool p{size()};
    std::optional<background::future<int>> ok = p.run([] { return 1; });
    std::optional<background::future<int>> failed =
        p.run([]() -> int { throw std::runtime_error("lost"); });
    ok->wait();
    failed->wait();
    bool rethrown = false;
    const attempt_result r = attempt(k, [&] {
      background::future<int> copy = *ok;
      background::future<int> other;
      other = copy;
      background::future<int> moved = std::move(other);
      if (!moved.done() || moved.get() != 1 || moved.exception() != nullptr) return;
      try {
        failed->get();
      } catch (const std::runtime_error&) {
        rethrown = failed->exception() != nullptr;
      }
      auto failed_copy = *failed;
      ok.reset();
      failed.reset();  // failed_copy is the last one now: it reports when it goes
    });
    expect_handled_when_injected(r, k);
    EXPECT_TRUE(rethrown);
    EXPECT_EQ(reports_, 0);  // get() observed it
    p.wait();
    return r.allocations;
  });
  EXPECT_EQ(n, 0);
}

// get() on a cancelled future makes the `cancelled` exception it throws (its message
// allocates): when that fails, std::bad_alloc comes out of get() instead.
TEST_P(AllocFailureTest, GetOnACancelledFuture) {
  const long n = sweep([&](long k) {
    attempt_result r;
    {
      background::pool p{size()};
      std::latch release{1};
      for (std::size_t i = 0; i < size(); ++i) p.run([&release] { release.wait(); });
      const payload data;
      auto f = p.run([data] {});
      EXPECT_TRUE(f.cancel());
      bool got_cancelled = false;
      r = attempt(k, [&] {
        try {
          f.get();
        } catch (const background::cancelled&) {
          got_cancelled = true;
        }
      });
      EXPECT_EQ(got_cancelled, expect_throws_when_injected(r, k));
      EXPECT_THROW(f.get(), background::cancelled);  // and once memory is back, as before
      release.count_down();
      expect_pool_works(p);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 1);
}

// ~pool() with tasks still queued (noexcept) allocates nothing: it runs them and joins.
TEST_P(AllocFailureTest, PoolDestructionAllocatesNothing) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    std::optional<background::pool> p{size()};
    std::latch release{1};
    for (std::size_t i = 0; i < size(); ++i) p->run([&release] { release.wait(); });
    for (int i = 0; i < 10; ++i) p->run([&runs] { ++runs; });
    release.count_down();
    const attempt_result r = attempt(k, [&] { p.reset(); });
    expect_handled_when_injected(r, k);
    EXPECT_EQ(runs, 10);
    return r.allocations;
  });
  EXPECT_EQ(n, 0);
}

// The same free functions on the default pool.
class AllocFailureDefaultPoolTest : public fault_fixture {};

// background::run(f, arg) on the default pool.
TEST_F(AllocFailureDefaultPoolTest, Run) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      const payload data;
      const auto f = [data, &runs](const std::string& arg) {
        ++runs;
        return static_cast<int>(arg.size());
      };
      const std::string arg = long_argument();
      std::optional<background::future<int>> result;
      r = attempt(k, [&] { result = background::run(f, arg); });
      const bool accepted = expect_throws_when_injected(r, k);
      if (accepted) {
        EXPECT_EQ(result->get(), 100);
      }
      background::wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
      EXPECT_EQ(background::run([] { return 3; }).get(), 3);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 3);
}

// background::task(f) then a call of it, on the default pool.
TEST_F(AllocFailureDefaultPoolTest, TaskThenCall) {
  const long n = sweep([&](long k) {
    std::atomic<int> runs{0};
    attempt_result r;
    {
      const payload data;
      const auto f = [data, &runs] { ++runs; };
      r = attempt(k, [&] { background::task(f)(); });
      const bool accepted = expect_throws_when_injected(r, k);
      background::wait();
      EXPECT_EQ(runs, accepted ? 1 : 0);
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 3);
}

// background::on_error(handler) with a handler stored on the heap: its copy into the parameter
// allocates. A failure throws std::bad_alloc and keeps the handler that was there; a success
// installs the new one and returns the old one, which works when put back.
TEST_F(AllocFailureDefaultPoolTest, OnError) {
  const long n = sweep([&](long k) {
    reset_reports();
    std::atomic<int> new_handler_calls{0};
    attempt_result r;
    {
      background::pool p{1};
      const payload data;
      const background::error_handler handler = [data, &new_handler_calls](std::exception_ptr) {
        ++new_handler_calls;
      };
      std::optional<background::error_handler> previous;
      r = attempt(k, [&] { previous = background::on_error(handler); });
      const bool accepted = expect_throws_when_injected(r, k);
      p.run([] { throw std::runtime_error("lost"); });
      p.wait();
      EXPECT_EQ(new_handler_calls, accepted ? 1 : 0);
      EXPECT_EQ(reports_, accepted ? 0 : 1);
      if (accepted) {
        EXPECT_TRUE(*previous);
        background::on_error(std::move(*previous));  // the fixture's again
        p.run([] { throw std::runtime_error("lost again"); });
        p.wait();
        EXPECT_EQ(reports_, 1);
        EXPECT_EQ(new_handler_calls, 1);
      }
    }
    EXPECT_EQ(counted::live, 0);
    return r.allocations;
  });
  EXPECT_GE(n, 2);
}

// The report of an exception nobody observed, made on the thread that drops the last future,
// with a handler stored on the heap (copying it would allocate). The contract (error.hpp):
// reporting allocates nothing, so no allocation can fail there, and the exception reaches the
// handler exactly once. Measured: the drop makes no allocation on this thread.
TEST_F(AllocFailureDefaultPoolTest, LastFutureDroppedReportsToAHeapHandlerWithoutAllocating) {
  for (int round = 0; round < 2; ++round) {  // the first one warms up lazily created state
    std::atomic<int> calls{0};
    attempt_result r;
    {
      const payload data;
      background::error_handler previous =
          background::on_error([data, &calls](std::exception_ptr) { ++calls; });
      {
        background::pool p{1};
        std::optional<background::future<void>> f =
            p.run([] { throw std::runtime_error("nobody keeps this future"); });
        f->wait();
        r = attempt(0, [&] { f.reset(); });  // the report happens here, on this thread
      }
      background::on_error(std::move(previous));
    }
    EXPECT_FALSE(r.threw_bad_alloc);
    EXPECT_EQ(r.allocations, 0) << "reporting to the handler allocated";
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(counted::live, 0);
  }
}

// As above with the default on_error() handler, which writes one line to stderr: that line is
// made without operator new, so it is written whatever the state of the heap.
TEST_F(AllocFailureDefaultPoolTest, LastFutureDroppedWithTheDefaultHandlerWithoutAllocating) {
  for (int round = 0; round < 2; ++round) {
    background::error_handler previous = background::on_error(nullptr);
    attempt_result r;
    std::string line;
    {
      background::pool p{1};
      std::optional<background::future<void>> f =
          p.run([] { throw std::runtime_error("nobody keeps this future"); });
      f->wait();
      testing::internal::CaptureStderr();
      r = attempt(0, [&] { f.reset(); });  // the report happens here, on this thread
      line = testing::internal::GetCapturedStderr();
    }
    background::on_error(std::move(previous));
    EXPECT_FALSE(r.threw_bad_alloc);
    EXPECT_EQ(r.allocations, 0) << "the default handler allocated";
    EXPECT_EQ(line,
              "background: unobserved exception in a task: std::runtime_error: nobody keeps "
              "this future\n");
  }
}

}  // namespace
