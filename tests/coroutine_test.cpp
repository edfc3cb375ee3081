// Tests for coroutine.hpp: co_await on futures, future<T> as a coroutine's return type,
// resume_on(), cancellation of coroutines, and coroutines waited for from inside pools at n = 1.
//
// g++ 12 may destroy twice a capturing lambda written inside a co_await expression: every
// lambda here is named (or handed to run()) in a statement of its own, and the co_await takes
// the named future.
#include "background/coroutine.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "background/background.hpp"
#include "support/counted.hpp"
#include "support/error_log.hpp"
#include "support/thread_name.hpp"

namespace {

using background::testing::counted;
using background::testing::error_log;
using background::testing::thread_name;

using namespace std::chrono_literals;

// Counts copies, to tell a value copied out of a future from one moved out.
struct copy_counter {
  static inline std::atomic<int> copies{0};
  int value;
  explicit copy_counter(int v) : value(v) {}
  copy_counter(const copy_counter& o) : value(o.value) { ++copies; }
  copy_counter(copy_counter&& o) noexcept : value(o.value) {}
  copy_counter& operator=(const copy_counter&) = delete;
  ~copy_counter() = default;
};

// A coroutine type that is not background's: starts at once, frees itself at the end, and
// reports nothing. For co_await on a future from any coroutine.
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
};

// Waits at most 30 s for `f`. A pool caught in a deadlock can never be destroyed, so the
// program stops here instead of hanging until the ctest timeout.
template <class T>
void finish_or_die(const background::future<T>& f, const char* what) {
  if (f.wait_for(30s)) return;
  std::fprintf(stderr, "coroutine_test: %s did not finish in 30 s: deadlock\n", what);
  std::fflush(stderr);
  std::_Exit(EXIT_FAILURE);
}

// Occupies every worker of `p` until release() (or destruction), so what is submitted to `p`
// meanwhile stays queued.
class hold_all {
 public:
  explicit hold_all(background::pool& p)
      : size_(p.size()), started_(static_cast<std::ptrdiff_t>(size_)) {
    for (std::size_t i = 0; i < size_; ++i) {
      auto hold = [this] {
        started_.count_down();
        release_.wait();
      };
      held_.push_back(p.run(hold));
    }
    started_.wait();
  }
  hold_all(const hold_all&) = delete;
  hold_all& operator=(const hold_all&) = delete;
  ~hold_all() { release(); }
  void release() {
    if (released_) return;
    released_ = true;
    release_.count_down();
    for (auto& f : held_) f.wait();
  }

 private:
  std::size_t size_;
  std::latch started_;
  std::latch release_{1};
  bool released_ = false;
  std::vector<background::future<void>> held_;
};

// Sets the default pool's size for one test, and restores it.
class default_size {
 public:
  explicit default_size(std::size_t threads) : old_(background::n) { background::n = threads; }
  default_size(const default_size&) = delete;
  default_size& operator=(const default_size&) = delete;
  ~default_size() { background::n = old_; }

 private:
  std::size_t old_;
};

int seven() { return 7; }
int plus_one(int x) { return x + 1; }
void nothing() {}
int throw_out_of_range() { throw std::out_of_range("index 7"); }
std::unique_ptr<std::string> make_text() { return std::make_unique<std::string>("moved"); }
copy_counter make_copy_counter() { return copy_counter(5); }
counted make_counted(const counted& c) { return counted(c.value * 3); }

class CoroutineTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  background::pool pool_{GetParam(), background::pool_options{"corotest", {}, {}}};
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, CoroutineTest, ::testing::Values(1, 2, 4, 8, 64));

// ---------------------------------------------------------------------------------------------
// co_await on a future

background::future<bool> await_done(background::future<int> f, int expected) {
  const std::thread::id thread = std::this_thread::get_id();
  background::pool* const where = background::this_pool();
  const int v = co_await f;
  const bool same = std::this_thread::get_id() == thread && background::this_pool() == where;
  const bool ok = v == expected && same;
  co_return ok;
}

TEST_P(CoroutineTest, AwaitOnDoneFutureContinuesAtOnceOnTheSameThread) {
  auto f = pool_.run(&seven);
  f.wait();
  EXPECT_TRUE(await_done(f, 7).get());
}

background::future<int> await_pending(background::future<int> f, const int& written, int& seen) {
  const int v = co_await f;
  seen = written;  // the task's writes are visible after the co_await (TSan checks)
  co_return v;
}

TEST_P(CoroutineTest, AwaitOnPendingFutureResumesAfterItFinishes) {
  std::latch gate{1};
  int written = 0;
  auto slow = [&gate, &written] {
    gate.wait();
    written = 11;
    return 5;
  };
  auto task = pool_.run(slow);
  int seen = 0;
  auto f = await_pending(task, written, seen);
  EXPECT_FALSE(f.done());  // the task cannot have finished: so neither can the coroutine
  gate.count_down();
  EXPECT_EQ(f.get(), 5);
  EXPECT_EQ(seen, 11);
}

background::future<int> await_lvalue(background::future<copy_counter> f) {
  const copy_counter v = co_await f;
  co_return v.value;
}

background::future<int> await_rvalue(background::future<copy_counter> f) {
  const copy_counter v = co_await std::move(f);
  co_return v.value;
}

TEST_P(CoroutineTest, AwaitOnLvalueCopiesAndOtherCopiesStillReadIt) {
  auto f = pool_.run(&make_copy_counter);
  f.wait();
  copy_counter::copies = 0;
  EXPECT_EQ(await_lvalue(f).get(), 5);
  EXPECT_GE(copy_counter::copies.load(), 1);
  EXPECT_EQ(f.get().value, 5);  // still there
}

std::string make_long_text() { return std::string(100, 'x'); }

background::future<std::size_t> await_string_lvalue(background::future<std::string> f) {
  const std::string v = co_await f;
  co_return v.size();
}

TEST_P(CoroutineTest, AwaitOnLvalueLeavesTheValueForOtherCopies) {
  auto f = pool_.run(&make_long_text);
  EXPECT_EQ(await_string_lvalue(f).get(), 100U);
  EXPECT_EQ(await_string_lvalue(f).get(), 100U);
  EXPECT_EQ(f.get(), std::string(100, 'x'));
}

TEST_P(CoroutineTest, AwaitOnRvalueMovesTheValueOut) {
  auto f = pool_.run(&make_copy_counter);
  f.wait();
  copy_counter::copies = 0;
  EXPECT_EQ(await_rvalue(f).get(), 5);
  EXPECT_EQ(copy_counter::copies.load(), 0);
}

background::future<std::string> await_move_only(background::pool& p) {
  auto f = p.run(&make_text);
  std::unique_ptr<std::string> a = co_await std::move(f);
  // A temporary future in the co_await expression (no lambda in it): moved out too.
  std::unique_ptr<std::string> b = co_await p.run(&make_text);
  co_return *a + "+" + *b;
}

TEST_P(CoroutineTest, AwaitMovesAMoveOnlyValueOut) {
  EXPECT_EQ(await_move_only(pool_).get(), "moved+moved");
}

background::future<int> await_void(background::pool& p, std::atomic<int>& ran) {
  auto bump = [&ran] { ++ran; };
  auto f = p.run(bump);
  co_await f;
  co_await std::move(f);  // a done future<void>, as an rvalue
  auto g = p.run(&nothing);
  co_await g;
  co_return ran.load();
}

TEST_P(CoroutineTest, AwaitOnVoidFuture) {
  std::atomic<int> ran{0};
  EXPECT_EQ(await_void(pool_, ran).get(), 1);
}

background::future<int> catch_and_continue(background::pool& p) {
  int caught = 0;
  auto bad = p.run(&throw_out_of_range);
  try {
    (void)co_await bad;
  } catch (const std::out_of_range& e) {
    caught += std::string(e.what()) == "index 7" ? 1 : 100;
  }
  // Again from a failed future that is done by now, as an rvalue.
  try {
    (void)co_await std::move(bad);
  } catch (const std::out_of_range&) {
    ++caught;
  }
  auto good = p.run(&plus_one, 1);
  const int v = co_await good;  // and go on
  co_return caught * 10 + v;
}

TEST_P(CoroutineTest, ExceptionOfTheAwaitedTaskIsRethrownAtTheCoAwait) {
  EXPECT_EQ(catch_and_continue(pool_).get(), 22);
}

background::future<int> await_and_catch_cancelled(background::future<int> f) {
  try {
    (void)co_await f;
  } catch (const background::cancelled&) {
    co_return 42;
  }
  co_return -1;
}

TEST_P(CoroutineTest, CancelledIsRethrownAtTheCoAwaitWhenAlreadyCancelled) {
  hold_all hold(pool_);
  auto t = pool_.run(&seven);
  ASSERT_TRUE(t.cancel());
  EXPECT_EQ(await_and_catch_cancelled(t).get(), 42);
}

TEST_P(CoroutineTest, CancelledIsRethrownAtTheCoAwaitWhileSuspended) {
  hold_all hold(pool_);
  auto t = pool_.run(&seven);
  auto f = await_and_catch_cancelled(t);
  background::wait();  // the coroutine's first step is over: it is suspended on t
  EXPECT_FALSE(f.done());
  ASSERT_TRUE(t.cancel());
  hold.release();  // its resumption was queued on pool_, behind the held workers
  finish_or_die(f, "a coroutine awaiting a cancelled task");
  EXPECT_EQ(f.get(), 42);
}

background::future<int> await_empty() {
  background::future<int> empty;
  try {
    (void)co_await empty;
  } catch (const std::future_error& e) {
    co_return e.code() == std::future_errc::no_state ? 1 : 2;
  }
  co_return 0;
}

TEST(CoroutineAwaitTest, AwaitOnEmptyFutureThrowsFutureError) { EXPECT_EQ(await_empty().get(), 1); }

// ---------------------------------------------------------------------------------------------
// future<T> as a coroutine's return type

background::future<int> waits_for_go(std::latch& go, std::atomic<bool>& on_default) {
  on_default = background::this_pool() == &background::default_pool();
  go.wait();
  co_return 5;
}

TEST(CoroutineReturnTest, CallReturnsAtOnceAndBodyRunsOnTheDefaultPool) {
  std::latch go{1};
  std::atomic<bool> on_default{false};
  auto f = waits_for_go(go, on_default);  // would deadlock if the body ran here
  EXPECT_FALSE(f.done());
  go.count_down();
  EXPECT_EQ(f.get(), 5);
  EXPECT_TRUE(on_default);
}

background::future<background::pool*> where_it_starts() { co_return background::this_pool(); }

TEST_P(CoroutineTest, BodyStartsOnTheDefaultPoolWhenCalledFromAnotherPool) {
  // A timed wait does not run the body inline, as get() from a worker may (see the n = 1 tests).
  auto call = [] {
    auto f = where_it_starts();
    return f.wait_for(30s) ? f.get() : nullptr;
  };
  EXPECT_EQ(pool_.run(call).get(), &background::default_pool());
}

background::future<void> void_body(std::atomic<int>& ran) {
  ++ran;
  co_return;
}

background::future<std::string> string_body(std::string s) { co_return s + "!"; }

TEST(CoroutineReturnTest, CoReturnValueAndVoid) {
  std::atomic<int> ran{0};
  void_body(ran).get();
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(string_body("hi").get(), "hi!");
}

background::future<int> throws_out(bool really) {
  if (really) throw std::invalid_argument("from the body");
  co_return 1;
}

background::future<void> throws_after_await(background::pool& p) {
  auto f = p.run(&seven);
  (void)co_await f;
  throw std::length_error("after the co_await");
}

// Converts to int by throwing: co_return of one fails the coroutine.
struct bad_int {
  operator int() const { throw std::domain_error("no int here"); }  // NOLINT: implicit on purpose
};

background::future<int> returns_bad_int() { co_return bad_int{}; }

TEST(CoroutineReturnTest, ExceptionFromTheCoReturnedValuesConversionFailsTheFuture) {
  EXPECT_THROW((void)returns_bad_int().get(), std::domain_error);
}

TEST_P(CoroutineTest, ExceptionEscapingTheBodyIsRethrownByGet) {
  auto f = throws_out(true);
  EXPECT_THROW((void)f.get(), std::invalid_argument);
  EXPECT_NE(f.exception(), nullptr);
  EXPECT_THROW(throws_after_await(pool_).get(), std::length_error);
  EXPECT_EQ(throws_out(false).get(), 1);
}

background::future<void> never_awaits(counted param) {
  counted local{param.value};
  co_return;
}

background::future<int> locals_and_params(counted param, background::pool& p) {
  counted local{2};
  auto f = p.run(&seven);
  const int v = co_await f;
  co_return v + local.value + param.value;
}

TEST_P(CoroutineTest, LocalsAndParametersAreDestroyedOnce) {
  counted::live = 0;
  {
    auto f = locals_and_params(counted{1}, pool_);
    EXPECT_EQ(f.get(), 10);
  }
  // And once the pools are idle, nothing of the frame is left either.
  background::wait();
  pool_.wait();
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(CoroutineTest, ParametersAndLocalsAreGoneOnceTheFutureIsDone) {
  // The frame is destroyed before the future is finished: get() returning means they are gone.
  counted::live = 0;
  auto f = locals_and_params(counted{1}, pool_);
  EXPECT_EQ(f.get(), 10);
  EXPECT_EQ(counted::live.load(), 0);
  auto g = never_awaits(counted{2});
  g.wait();
  EXPECT_EQ(counted::live.load(), 0);
}

// A parameter that, destroyed in the frame, records whether the watched future was done then.
struct witness {
  static inline std::atomic<const background::future<int>*> watched{nullptr};
  static inline std::atomic<int> done_when_destroyed{-1};
  bool in_frame = false;
  witness() = default;
  witness(witness&& o) noexcept : in_frame(true) { o.in_frame = false; }
  witness(const witness&) = delete;
  witness& operator=(const witness&) = delete;
  ~witness() {
    const background::future<int>* f = watched.load();
    if (in_frame && f != nullptr) done_when_destroyed = f->done() ? 1 : 0;
  }
};

background::future<int> with_witness(witness w, std::latch& go) {
  (void)w;
  go.wait();
  co_return 1;
}

TEST(CoroutineReturnTest, FrameIsDestroyedBeforeTheFutureIsDone) {
  std::latch go{1};
  witness::done_when_destroyed = -1;
  auto f = with_witness(witness{}, go);
  witness::watched = &f;
  go.count_down();
  EXPECT_EQ(f.get(), 1);
  witness::watched = nullptr;
  EXPECT_EQ(witness::done_when_destroyed.load(), 0);
}

background::future<int> fails_later(std::latch& go) {
  go.wait();
  throw std::runtime_error("nobody looks");
  co_return 0;
}

background::future<void> rethrows_awaited(background::pool& p, std::latch& go) {
  go.wait();
  auto bad = p.run(&throw_out_of_range);
  (void)co_await bad;  // observed here, rethrown out of the body
}

TEST_P(CoroutineTest, UnobservedExceptionOfADroppedCoroutineIsReportedOnce) {
  error_log reports;
  {
    std::latch go{1};
    { auto dropped = fails_later(go); }
    go.count_down();
    background::wait();
    EXPECT_EQ(reports.count(), 1);
  }
  {
    // The awaited task's exception was observed by the co_await; the coroutine's own failure
    // is the one report.
    std::latch go{1};
    { auto dropped = rethrows_awaited(pool_, go); }
    go.count_down();
    background::wait();
    pool_.wait();
    EXPECT_EQ(reports.count(), 2);
  }
  {
    // Observed by get(): no report.
    std::latch go{1};
    auto kept = fails_later(go);
    go.count_down();
    EXPECT_THROW((void)kept.get(), std::runtime_error);
    background::wait();
    EXPECT_EQ(reports.count(), 2);
  }
  EXPECT_EQ(catch_and_continue(pool_).get(), 22);  // exceptions caught inside: no report
  background::wait();
  pool_.wait();
  EXPECT_EQ(reports.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// resume_on()

struct hop_report {
  bool before_on_p = false;
  bool after_on_p = false;
  std::string name_after;
};

background::future<hop_report> hop(background::pool& p) {
  hop_report r;
  r.before_on_p = background::this_pool() == &p;
  co_await background::resume_on(p);
  r.after_on_p = background::this_pool() == &p;
  r.name_after = thread_name();
  co_return r;
}

TEST_P(CoroutineTest, ResumeOnMovesTheRestOntoThePool) {
  const hop_report r = hop(pool_).get();
  EXPECT_FALSE(r.before_on_p);
  EXPECT_TRUE(r.after_on_p);
  EXPECT_EQ(r.name_after.rfind("corotest-", 0), 0U) << r.name_after;
}

background::future<bool> hop_twice(background::pool& p) {
  co_await background::resume_on(p);
  const std::thread::id thread = std::this_thread::get_id();
  co_await background::resume_on(p);  // already there: no hop
  const bool same = std::this_thread::get_id() == thread && background::this_pool() == &p;
  co_return same;
}

TEST_P(CoroutineTest, ResumeOnThePoolItIsOnDoesNotHop) {
  pool_.wait();
  const std::uint64_t before = pool_.stats().completed;
  EXPECT_TRUE(hop_twice(pool_).get());
  pool_.wait();
  // One task on pool_ ran the whole coroutine from the first resume_on() on.
  EXPECT_EQ(pool_.stats().completed - before, 1U);
}

TEST_P(CoroutineTest, ResumeOnIsNotRunInlineByAWaitingWorkerOfAnotherPool) {
  // The only worker of `other` waits for a coroutine whose rest is queued on pool_, whose
  // workers are all held: it must leave that step to pool_.
  background::pool other{1};
  hold_all hold(pool_);
  auto call = [this] { return hop(pool_).get(); };
  auto outer = other.run(call);
  // Until the step is queued on pool_ (or, wrongly, done already).
  while (pool_.stats().queued == 0 && !outer.done()) std::this_thread::yield();
  EXPECT_FALSE(outer.done());
  hold.release();
  finish_or_die(outer, "a coroutine resumed on a pool that was held");
  const hop_report r = outer.get();
  EXPECT_TRUE(r.after_on_p);
  EXPECT_EQ(r.name_after.rfind("corotest-", 0), 0U) << r.name_after;
}

background::future<int> resume_on_shut_down(background::pool& p) {
  try {
    co_await background::resume_on(p);
  } catch (const background::shutdown_error&) {
    co_return background::this_pool() == &background::default_pool() ? 1 : 2;
  }
  co_return 0;
}

TEST_P(CoroutineTest, ResumeOnAShutDownPoolThrowsShutdownErrorAtTheCoAwait) {
  pool_.shutdown();
  EXPECT_EQ(resume_on_shut_down(pool_).get(), 1);
}

// Awaits futures from `a` and `b` in turn; `a` and `b` have one worker each. The awaited task is
// held until a task queued behind this coroutine on its current pool runs, so the coroutine is
// always suspended when it finishes: it must resume on the awaited task's pool.
background::future<int> ping_pong(background::pool& a, background::pool& b, int rounds,
                                  std::atomic<int>& misplaced) {
  co_await background::resume_on(a);
  int sum = 0;
  for (int i = 0; i < rounds; ++i) {
    background::pool& here = i % 2 == 0 ? a : b;
    background::pool& there = i % 2 == 0 ? b : a;
    if (background::this_pool() != &here) ++misplaced;
    auto gate = std::make_shared<std::latch>(1);
    auto held = [gate, i] {
      gate->wait();
      return i;
    };
    auto opener = [gate] { gate->count_down(); };
    auto f = there.run(held);
    here.run(opener);  // only once this coroutine has left `here`'s one worker
    sum += co_await f;
  }
  if (background::this_pool() != (rounds % 2 == 0 ? &a : &b)) ++misplaced;
  co_return sum;
}

TEST(CoroutineResumeTest, ResumesOnTheAwaitedFuturesPool) {
  background::pool a{1, background::pool_options{"ping", {}, {}}};
  background::pool b{1, background::pool_options{"pong", {}, {}}};
  std::atomic<int> misplaced{0};
  auto f = ping_pong(a, b, 101, misplaced);
  finish_or_die(f, "ping_pong");
  EXPECT_EQ(f.get(), 100 * 101 / 2);
  EXPECT_EQ(misplaced, 0);
}

// Awaits futures of `a` and `b` in turn, on pools of any size: after each co_await it is on the
// pool it was on (the future was done) or on the future's.
background::future<int> alternate(background::pool& a, background::pool& b, int rounds,
                                  std::atomic<int>& misplaced) {
  int sum = 0;
  for (int i = 0; i < rounds; ++i) {
    background::pool& there = i % 2 == 0 ? b : a;
    background::pool* const here = background::this_pool();
    auto f = there.run(&plus_one, i);
    sum += co_await f;
    if (background::this_pool() != &there && background::this_pool() != here) ++misplaced;
  }
  co_return sum;
}

TEST_P(CoroutineTest, ChainOverTwoPoolsEndsOnTheRightPools) {
  background::pool other{3};
  std::atomic<int> misplaced{0};
  EXPECT_EQ(alternate(pool_, other, 200, misplaced).get(), 200 * 201 / 2);
  EXPECT_EQ(misplaced, 0);
}

// ---------------------------------------------------------------------------------------------
// Long chains, recursion, many coroutines

background::future<long> many_done(const std::vector<background::future<int>>& fs) {
  long sum = 0;
  for (const auto& f : fs) sum += co_await f;
  co_return sum;
}

TEST_P(CoroutineTest, TenThousandAwaitsOfDoneFutures) {
  std::vector<background::future<int>> fs;
  for (int i = 0; i < 10000; ++i) fs.push_back(pool_.run(&plus_one, i));
  for (auto& f : fs) f.wait();
  EXPECT_EQ(many_done(fs).get(), 10000L * 10001 / 2);
}

// On the one worker of `p`, every task it submits to `p` is still queued at the co_await.
background::future<long> many_pending(background::pool& p, int count, int& was_done) {
  co_await background::resume_on(p);
  long sum = 0;
  for (int i = 0; i < count; ++i) {
    auto f = p.run(&plus_one, i);
    was_done += f.done() ? 1 : 0;
    sum += co_await f;
  }
  co_return sum;
}

TEST(CoroutineChainTest, TenThousandAwaitsOfPendingFutures) {
  background::pool one{1};
  int was_done = 0;
  auto f = many_pending(one, 10000, was_done);
  finish_or_die(f, "10,000 pending co_awaits");
  EXPECT_EQ(f.get(), 10000L * 10001 / 2);
  EXPECT_EQ(was_done, 0);
}

background::future<long> many_from(background::pool& p, int count) {
  long sum = 0;
  for (int i = 0; i < count; ++i) {
    auto f = p.run(&plus_one, i);
    sum += co_await f;
  }
  co_return sum;
}

TEST_P(CoroutineTest, TenThousandAwaitsOfFuturesFromAPool) {
  EXPECT_EQ(many_from(pool_, 10000).get(), 10000L * 10001 / 2);
}

background::future<int> fib(int k) {
  if (k < 2) co_return k;
  auto a = fib(k - 1);
  auto b = fib(k - 2);
  const int x = co_await a;
  const int y = co_await b;
  co_return x + y;
}

TEST_P(CoroutineTest, CoroutinesAwaitingCoroutinesFib15) {
  const default_size size(GetParam());
  EXPECT_EQ(fib(15).get(), 610);
}

background::future<int> square_on(background::pool& p, int x) {
  auto f = p.run(&plus_one, x - 1);
  const int v = co_await f;
  const int square = v * v;
  co_return square;
}

TEST_P(CoroutineTest, AThousandCoroutinesAtOnce) {
  std::vector<background::future<int>> fs;
  for (int i = 0; i < 1000; ++i) fs.push_back(square_on(pool_, i));
  const std::vector<int> squares = background::when_all(fs).get();
  ASSERT_EQ(squares.size(), 1000U);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(squares[static_cast<std::size_t>(i)], i * i);
}

// ---------------------------------------------------------------------------------------------
// n = 1: a task that waits for a coroutine runs its pending steps

background::future<int> awaits_three_on(background::pool& p) {
  int sum = 0;
  for (int i = 0; i < 3; ++i) {
    auto f = p.run(&plus_one, i);
    sum += co_await f;
  }
  co_return sum;
}

TEST(CoroutineNestedTest, TaskOfOneWorkerPoolGetsCoroutineAwaitingThatPool) {
  const default_size size(1);
  background::pool p1{1};
  auto outer_call = [&p1] { return awaits_three_on(p1).get(); };
  auto outer = p1.run(outer_call);
  finish_or_die(outer, "get() on a coroutine from the one worker it awaits");
  EXPECT_EQ(outer.get(), 6);
}

TEST(CoroutineNestedTest, TaskOfOneWorkerPoolGetsCoroutineWhileTheDefaultPoolIsBusy) {
  // The coroutine's start is queued behind a held default pool: the waiter must run it too.
  const default_size size(1);
  background::pool p1{1};
  hold_all hold(background::default_pool());
  auto outer_call = [&p1] { return awaits_three_on(p1).get(); };
  auto outer = p1.run(outer_call);
  finish_or_die(outer, "get() on a coroutine whose start waits behind a busy default pool");
  EXPECT_EQ(outer.get(), 6);
}

background::future<int> hops_onto(background::pool& p) {
  co_await background::resume_on(p);
  auto f = p.run(&plus_one, 1);
  const int v = co_await f;
  co_return v + (background::this_pool() == &p ? 10 : 20);
}

TEST(CoroutineNestedTest, TaskOfOneWorkerPoolGetsCoroutineThatResumesOnIt) {
  const default_size size(1);
  background::pool p1{1};
  for (int i = 0; i < 200; ++i) {
    auto outer_call = [&p1] { return hops_onto(p1).get(); };
    auto outer = p1.run(outer_call);
    finish_or_die(outer, "get() on a coroutine that resumes on the waiter's one-worker pool");
    ASSERT_EQ(outer.get(), 12);
  }
}

background::future<int> ping_pong_hops(background::pool& a, background::pool& b, int hops) {
  for (int i = 0; i < hops; ++i) co_await background::resume_on(i % 2 == 0 ? a : b);
  co_return hops;
}

TEST(CoroutineNestedTest, TwoWaitingWorkersAndAHoppingCoroutine) {
  // Workers of `waiters` wait for a coroutine that hops between `a` and `b`: while one of them
  // runs its steps inline, the other keeps looking at it, and may find each new resumption the
  // moment it is linked to the coroutine.
  background::pool a{1};
  background::pool b{1};
  background::pool waiters{2};
  for (int round = 0; round < 20; ++round) {
    auto f = ping_pong_hops(a, b, 2000);
    auto get = [f] { return f.get(); };
    auto w1 = waiters.run(get);
    auto w2 = waiters.run(get);
    finish_or_die(w1, "a waiter of a hopping coroutine");
    finish_or_die(w2, "a waiter of a hopping coroutine");
    ASSERT_EQ(w1.get(), 2000);
    ASSERT_EQ(w2.get(), 2000);
  }
  a.wait();
  b.wait();
}

background::future<int> away_and_back(background::pool& away, background::pool& home, int hops) {
  for (int i = 0; i < hops; ++i) {
    co_await background::resume_on(away);
    co_await background::resume_on(home);
  }
  co_return hops;
}

TEST(CoroutineNestedTest, OneWorkerWaiterAndACoroutineThatLeavesAndComesBack) {
  // The only worker of `home` waits for a coroutine that goes to `away` and back to `home`
  // again and again: each return to `home` is work only that waiter can run.
  background::pool away{1};
  background::pool home{1};
  for (int round = 0; round < 20; ++round) {
    auto call = [&away, &home] { return away_and_back(away, home, 1000).get(); };
    auto outer = home.run(call);
    finish_or_die(outer, "the one worker of a pool waiting for a coroutine that returns to it");
    ASSERT_EQ(outer.get(), 1000);
  }
}

TEST(CoroutineNestedTest, PoolsDestroyedAsSoonAsTheCoroutineHasReturnedToThem) {
  // The last step is queued on `home` by a worker of `away` while home's worker waits for the
  // coroutine and may run it at once: the pools go as soon as it is done, and the queuing
  // thread must not touch `home` after its task can have run.
  for (int round = 0; round < 300; ++round) {
    background::pool away{1};
    background::pool home{1};
    auto call = [&away, &home] { return away_and_back(away, home, 1).get(); };
    auto outer = home.run(call);
    finish_or_die(outer, "a coroutine returning to the pool whose worker waits for it");
    ASSERT_EQ(outer.get(), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Cancellation

background::future<int> never_started(counted param, std::atomic<bool>& ran) {
  ran = true;
  counted local{1};
  co_return param.value + local.value;
}

TEST(CoroutineCancelTest, CancelBeforeTheBodyStartsDestroysTheFrame) {
  counted::live = 0;
  counted::destroyed = 0;
  std::atomic<bool> ran{false};
  {
    hold_all hold(background::default_pool());
    auto f = never_started(counted{4}, ran);
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.done());
    EXPECT_THROW((void)f.get(), background::cancelled);
    EXPECT_FALSE(f.cancel());
  }
  background::wait();  // the queued start runs, and destroys the frame instead
  EXPECT_FALSE(ran);
  EXPECT_EQ(counted::live.load(), 0);
}

background::future<int> started_then_waits(std::latch& started, std::latch& go) {
  started.count_down();
  go.wait();
  co_return 3;
}

TEST(CoroutineCancelTest, CancelAfterTheBodyStartedReturnsFalse) {
  std::latch started{1};
  std::latch go{1};
  auto f = started_then_waits(started, go);
  started.wait();
  EXPECT_FALSE(f.cancel());
  go.count_down();
  EXPECT_EQ(f.get(), 3);
}

background::future<int> suspended_then_cancel(background::pool& p, std::latch& gate) {
  auto wait_gate = [&gate] { gate.wait(); };
  auto f = p.run(wait_gate);
  co_await f;
  co_return 9;
}

TEST_P(CoroutineTest, CancelWhileSuspendedReturnsFalse) {
  std::latch gate{1};
  auto f = suspended_then_cancel(pool_, gate);
  background::wait();  // suspended on the gate's task
  EXPECT_FALSE(f.cancel());
  gate.count_down();
  EXPECT_EQ(f.get(), 9);
}

// A task that holds a worker until its pool's shutdown(cancel_pending) asks it to stop.
void hold_until_stop(std::stop_token st, std::latch* started) {
  started->count_down();
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, st, [] { return false; });
}

background::future<int> hop_after_local(background::pool& p, std::atomic<bool>& after) {
  counted local{1};
  co_await background::resume_on(p);
  after = true;
  co_return local.value;
}

TEST_P(CoroutineTest, ShutdownCancelPendingCancelsAQueuedResumption) {
  counted::live = 0;
  counted::destroyed = 0;
  std::latch started{static_cast<std::ptrdiff_t>(GetParam())};
  for (std::size_t i = 0; i < GetParam(); ++i) pool_.run(&hold_until_stop, &started);
  started.wait();
  std::atomic<bool> after{false};
  auto f = hop_after_local(pool_, after);
  background::wait();  // its resumption is queued on pool_, behind the held workers
  pool_.shutdown(background::cancel_pending);
  ASSERT_TRUE(f.done());
  EXPECT_THROW((void)f.get(), background::cancelled);
  EXPECT_FALSE(after);
  EXPECT_EQ(counted::destroyed.load(), 1);
  EXPECT_EQ(counted::live.load(), 0);
}

background::future<int> await_on_pool_then_mark(background::pool& p, std::atomic<bool>& after) {
  counted local{1};
  auto f = p.run(&seven);
  const int v = co_await f;
  after = true;
  co_return v + local.value;
}

TEST_P(CoroutineTest, ShutdownCancelPendingCancelsTheAwaitedTask) {
  counted::live = 0;
  counted::destroyed = 0;
  std::latch started{static_cast<std::ptrdiff_t>(GetParam())};
  for (std::size_t i = 0; i < GetParam(); ++i) pool_.run(&hold_until_stop, &started);
  started.wait();
  std::atomic<bool> after{false};
  auto f = await_on_pool_then_mark(pool_, after);
  background::wait();  // suspended on a task queued on pool_
  pool_.shutdown(background::cancel_pending);
  background::wait();
  ASSERT_TRUE(f.done());
  EXPECT_THROW((void)f.get(), background::cancelled);
  EXPECT_FALSE(after);
  EXPECT_EQ(counted::destroyed.load(), 1);
  EXPECT_EQ(counted::live.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// Other coroutine types, then(), when_all()

detached detached_await(background::future<int> f, std::atomic<background::pool*>& where,
                        std::atomic<int>& value, std::latch& done) {
  value = co_await f;
  where = background::this_pool();
  done.count_down();
}

TEST_P(CoroutineTest, AwaitInsideANonBackgroundCoroutineResumesOnTheFuturesPool) {
  std::latch gate{1};
  auto held = [&gate] {
    gate.wait();
    return 8;
  };
  auto f = pool_.run(held);
  std::atomic<background::pool*> where{nullptr};
  std::atomic<int> value{0};
  std::latch done{1};
  detached_await(f, where, value, done);  // suspends at once: the task is held
  gate.count_down();
  done.wait();
  EXPECT_EQ(value, 8);
  EXPECT_EQ(where.load(), &pool_);
  pool_.wait();
}

detached detached_hop(background::pool& p, std::atomic<background::pool*>& where,
                      std::latch& done) {
  co_await background::resume_on(p);
  where = background::this_pool();
  done.count_down();
}

TEST_P(CoroutineTest, ResumeOnInsideANonBackgroundCoroutine) {
  std::atomic<background::pool*> where{nullptr};
  std::latch done{1};
  detached_hop(pool_, where, done);
  done.wait();
  EXPECT_EQ(where.load(), &pool_);
  pool_.wait();
}

TEST_P(CoroutineTest, NonBackgroundCoroutineIsResumedWhenShutdownCancelsItsResumption) {
  // Its frame is not the library's to destroy: it resumes, and its co_await goes on.
  std::latch started{static_cast<std::ptrdiff_t>(GetParam())};
  for (std::size_t i = 0; i < GetParam(); ++i) pool_.run(&hold_until_stop, &started);
  started.wait();
  std::atomic<background::pool*> where{nullptr};
  std::latch done{1};
  detached_hop(pool_, where, done);
  pool_.shutdown(background::cancel_pending);
  done.wait();
}

TEST_P(CoroutineTest, ThenOnACoroutinesFuture) {
  auto twice = [](int v) { return 2 * v; };
  EXPECT_EQ(square_on(pool_, 4).then(twice).get(), 32);
  auto f = square_on(pool_, 3);
  f.wait();
  EXPECT_EQ(f.then(twice).get(), 18);  // on a finished coroutine
  auto recover = [](background::future<int> g) {
    try {
      return g.get();
    } catch (const std::invalid_argument&) {
      return -1;
    }
  };
  EXPECT_EQ(throws_out(true).then(recover).get(), -1);
}

TEST_P(CoroutineTest, WhenAllOverCoroutines) {
  std::vector<background::future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(square_on(pool_, i));
  const std::vector<int> v = background::when_all(fs).get();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], i * i);
  std::atomic<int> ran{0};
  auto [s, nothing_there] = background::when_all(string_body("x"), void_body(ran)).get();
  EXPECT_EQ(s, "x!");
  (void)nothing_there;
  EXPECT_EQ(ran, 1);
  std::vector<background::future<int>> failing;
  failing.push_back(square_on(pool_, 2));
  failing.push_back(throws_out(true));
  EXPECT_THROW((void)background::when_all(failing).get(), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// The g++ 12 trap: the library's own temporaries inside co_await expressions (a future from
// run() with a plain function and its copied argument, an awaiter from resume_on()) are
// destroyed exactly once. No capturing lambda appears inside a co_await here.

background::future<int> temporaries_in_co_await(background::pool& p, const counted& arg) {
  co_await background::resume_on(p);
  const counted c = co_await p.run(&make_counted, arg);
  co_return c.value;
}

TEST_P(CoroutineTest, LibraryTemporariesInsideCoAwaitAreDestroyedOnce) {
  counted::live = 0;
  {
    const counted arg{5};
    EXPECT_EQ(temporaries_in_co_await(pool_, arg).get(), 15);
    pool_.wait();
    background::wait();
  }
  EXPECT_EQ(counted::live.load(), 0);
}

}  // namespace
