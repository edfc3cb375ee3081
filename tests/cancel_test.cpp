// Tests for cancellation: std::stop_token tasks, future::cancel() on running and queued tasks,
// pool::shutdown() and shutdown(cancel_pending), then(f) with a callable that takes the future,
// and then(p, f).
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <latch>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "background/background.hpp"
#include "support/blocked_workers.hpp"
#include "support/error_log.hpp"
#include "support/thread_name.hpp"

namespace {

using background::testing::blocked_workers;
using background::testing::error_log;
using background::testing::thread_name;

class CancelTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t size() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, CancelTest, ::testing::Values(1, 2, 4, 8, 64));

// Submits tasks that add one to `ran` from this (outside) thread until the pool refuses one
// with shutdown_error; returns how many it accepted. The way to find, without sleeping, the
// moment a shutdown() on another thread has started.
int submit_until_closed(background::pool& pool, std::atomic<int>& ran) {
  int accepted = 0;
  for (;;) {
    try {
      pool.run([&ran] { ++ran; });
      ++accepted;
    } catch (const background::shutdown_error&) {
      return accepted;
    }
  }
}

// Options that only name the pool's workers.
background::pool_options named(std::string name) {
  background::pool_options options;
  options.name = std::move(name);
  return options;
}

// Does f.get() throw background::cancelled?
template <class T>
bool is_cancelled(const background::future<T>& f) {
  try {
    f.get();
  } catch (const background::cancelled&) {
    return true;
  }
  return false;
}

// Yields until stop is requested on `st`; false if it never is within a generous number of
// looks (a hang detector, not a timing measure: a test fails instead of hanging).
bool await_stop(const std::stop_token& st) {
  for (int i = 0; i < 500'000; ++i) {
    if (st.stop_requested()) return true;
    std::this_thread::yield();
  }
  return st.stop_requested();
}

// A move-only callable that takes a stop token.
struct move_only_stoppable {
  std::unique_ptr<int> base;
  int operator()(std::stop_token st, int x) const { return st.stop_possible() ? *base + x : -1; }
};

// ---- std::stop_token parameters ------------------------------------------------------------

TEST_P(CancelTest, RunPassesAStopTokenFirst) {
  background::pool pool{size()};
  auto f = pool.run(
      [](std::stop_token st, int x) {
        // A token of the task's own stop source: stop is possible, and not requested.
        return st.stop_possible() && !st.stop_requested() ? x : -1;
      },
      5);
  static_assert(std::is_same_v<decltype(f), background::future<int>>);
  EXPECT_EQ(f.get(), 5);
  auto g = pool.run([](std::stop_token st) { return st.stop_possible(); });
  EXPECT_TRUE(g.get());
}

TEST(CancelDefaultPoolTest, RunAndTaskPassAStopTokenOnTheDefaultPool) {
  EXPECT_EQ(
      background::run([](std::stop_token st, int x) { return st.stop_possible() ? x : -1; }, 7)
          .get(),
      7);
  auto t = background::task(
      [](std::stop_token st, int x, int y) { return st.stop_possible() ? x * y : -1; });
  EXPECT_EQ(t(6, 7).get(), 42);
}

TEST_P(CancelTest, TaskPassesAStopTokenToEachCall) {
  background::pool pool{size()};
  auto t = pool.task([](std::stop_token st, int x) { return st.stop_possible() ? x * 2 : -1; });
  std::vector<background::future<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(t(i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * 2);
}

TEST_P(CancelTest, ExtraArgumentsFollowTheToken) {
  background::pool pool{size()};
  auto f = pool.run(
      [](std::stop_token st, int x, std::string s, std::unique_ptr<int> p) {
        return st.stop_possible() ? s + std::to_string(x + *p) : std::string("no token");
      },
      40, std::string("answer "), std::make_unique<int>(2));
  EXPECT_EQ(f.get(), "answer 42");
}

TEST_P(CancelTest, MutableLambdaTakesAToken) {
  background::pool pool{size()};
  auto f = pool.run([n = 41](std::stop_token st) mutable {
    ++n;
    return st.stop_possible() ? n : -1;
  });
  EXPECT_EQ(f.get(), 42);
  auto t = pool.task([n = 0](std::stop_token st, int x) mutable {
    n += x;  // each call runs its own copy
    return st.stop_possible() ? n : -1;
  });
  EXPECT_EQ(t(3).get(), 3);
  EXPECT_EQ(t(4).get(), 4);
}

TEST_P(CancelTest, MoveOnlyCallableTakesAToken) {
  background::pool pool{size()};
  EXPECT_EQ(pool.run(move_only_stoppable{std::make_unique<int>(40)}, 2).get(), 42);
  // task(): a move-only callable is shared by the calls; the token still reaches it.
  auto t = pool.task(move_only_stoppable{std::make_unique<int>(100)});
  EXPECT_EQ(t(1).get(), 101);
  EXPECT_EQ(t(2).get(), 102);
  auto lambda = pool.task(
      [p = std::make_unique<int>(7)](std::stop_token st) { return st.stop_possible() ? *p : -1; });
  EXPECT_EQ(lambda().get(), 7);
}

TEST_P(CancelTest, CallablesWithoutATokenAreUnchanged) {
  background::pool pool{size()};
  EXPECT_EQ(pool.run([](int x) { return x + 1; }, 41).get(), 42);
  EXPECT_EQ(pool.run([] { return 42; }).get(), 42);
  // A token passed by the caller is the caller's: the task does not add its own.
  EXPECT_FALSE(
      pool.run([](std::stop_token st) { return st.stop_possible(); }, std::stop_token{}).get());
  // A token anywhere but first is an ordinary argument.
  EXPECT_FALSE(
      pool.run([](int, std::stop_token st) { return st.stop_possible(); }, 1, std::stop_token{})
          .get());
  auto t = pool.task([](std::string s) { return s + "!"; });
  EXPECT_EQ(t("hi").get(), "hi!");
}

TEST_P(CancelTest, GenericLambdas) {
  background::pool pool{size()};
  // It cannot take a token before its one argument: it gets the argument.
  EXPECT_EQ(pool.run([](auto x) { return x * 2; }, 21).get(), 42);
  // It can take one as its only argument: as std::jthread, it gets the token.
  EXPECT_TRUE(pool.run([](auto st) {
                    if constexpr (std::is_same_v<decltype(st), std::stop_token>) {
                      return st.stop_possible();
                    } else {
                      return false;
                    }
                  })
                  .get());
}

// ---- future::cancel() ---------------------------------------------------------------------

TEST_P(CancelTest, CancelOnARunningStopTokenTaskRequestsStop) {
  background::pool pool{size()};
  std::latch started{1};
  auto f = pool.run([&started](std::stop_token st) {
    started.count_down();
    return await_stop(st) ? 42 : -1;
  });
  started.wait();
  EXPECT_FALSE(f.cancel());  // it ran: cancel() only asks it to stop
  EXPECT_EQ(f.get(), 42);    // and it finished as it chose
  EXPECT_FALSE(f.cancel());  // finished: nothing changes
  EXPECT_EQ(f.get(), 42);
}

TEST_P(CancelTest, CancelRunsTheTasksStopCallbacks) {
  background::pool pool{size()};
  std::latch started{1};
  std::atomic<int> callbacks{0};
  auto f = pool.run([&started, &callbacks](std::stop_token st) {
    std::stop_callback on_stop(st, [&callbacks] { ++callbacks; });
    started.count_down();
    return await_stop(st);
  });
  started.wait();
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(callbacks, 1);  // run by cancel() itself, as std::stop_source::request_stop() does
  EXPECT_TRUE(f.get());
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(callbacks, 1);
}

TEST(CancelDefaultPoolTest, CancelOnARunningTaskOfTheDefaultPoolRequestsStop) {
  std::latch started{1};
  auto f = background::run(
      [&started](std::stop_token st, int x) {
        started.count_down();
        return await_stop(st) ? x : -1;
      },
      9);
  started.wait();
  EXPECT_FALSE(f.cancel());
  EXPECT_EQ(f.get(), 9);
}

TEST(CancelInlineTest, CancelReachesAStopTokenTaskRunInlineByAWaiter) {
  // At n = 1 the inner task runs inline in the outer task's get(): cancel() from outside must
  // still reach its token.
  background::pool pool{1};
  std::latch inner_started{1};
  background::future<int> inner;
  std::atomic<bool> published{false};
  auto outer = pool.run([&] {
    inner = pool.run([&inner_started](std::stop_token st) {
      inner_started.count_down();
      return await_stop(st) ? 5 : -1;
    });
    published = true;
    return inner.get() + 1;
  });
  inner_started.wait();
  while (!published) std::this_thread::yield();
  EXPECT_FALSE(inner.cancel());
  EXPECT_EQ(outer.get(), 6);
}

TEST_P(CancelTest, CancelOnAQueuedStopTokenTaskRemovesIt) {
  background::pool pool{size()};
  std::atomic<bool> ran{false};
  std::atomic<int> cancelled_callbacks{0};
  pool.callback([&cancelled_callbacks](const background::outcome& o) {
    if (o.cancelled()) ++cancelled_callbacks;
  });
  {
    blocked_workers blocked{pool, size()};
    auto f = pool.run(
        [&ran](std::stop_token, int x) {
          ran = true;
          return x;
        },
        1);
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.done());
    EXPECT_THROW(f.get(), background::cancelled);
    EXPECT_FALSE(f.cancel());  // only once
    EXPECT_EQ(cancelled_callbacks, 1);
  }
  pool.wait();
  EXPECT_FALSE(ran);
  EXPECT_EQ(pool.stats().cancelled, 1u);
}

TEST_P(CancelTest, CancelOnAFinishedTaskChangesNothing) {
  background::pool pool{size()};
  auto f = pool.run([](std::stop_token st) { return st.stop_requested() ? -1 : 42; });
  EXPECT_EQ(f.get(), 42);
  EXPECT_FALSE(f.cancel());
  EXPECT_TRUE(f.done());
  EXPECT_EQ(f.get(), 42);
  EXPECT_EQ(f.exception(), nullptr);
  auto g = pool.run([] { return 1; });
  g.wait();
  EXPECT_FALSE(g.cancel());
  EXPECT_EQ(g.get(), 1);
  pool.wait();
  const auto stats = pool.stats();
  EXPECT_EQ(stats.completed, 2u);
  EXPECT_EQ(stats.cancelled, 0u);
}

// ---- pool::shutdown() ---------------------------------------------------------------------

TEST_P(CancelTest, ShutdownRunsEverythingAcceptedThenRejectsSubmissions) {
  background::pool pool{size()};
  std::atomic<int> ran{0};
  constexpr int tasks = 1000;
  std::vector<background::future<int>> futures;
  for (int i = 0; i < tasks; ++i) {
    futures.push_back(pool.run([&ran, i] {
      ++ran;
      return i;
    }));
  }
  pool.shutdown();
  EXPECT_EQ(ran, tasks);  // every accepted task has run by the time it returns
  for (int i = 0; i < tasks; ++i) {
    ASSERT_TRUE(futures[static_cast<std::size_t>(i)].done());
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i);
  }
  EXPECT_THROW(pool.run([] {}), background::shutdown_error);
  EXPECT_THROW(pool.run([](std::stop_token) {}), background::shutdown_error);
  auto t = pool.task([](int x) { return x; });
  EXPECT_THROW(t(1), background::shutdown_error);
  // A finished task of the pool can no longer continue there.
  EXPECT_THROW((void)futures[0].then([](int v) { return v; }), background::shutdown_error);
  EXPECT_EQ(futures[0].get(), 0);
  EXPECT_EQ(ran, tasks);
  // Still queryable; not resizable.
  EXPECT_EQ(pool.size(), size());
  const auto stats = pool.stats();
  EXPECT_EQ(stats.completed, static_cast<std::uint64_t>(tasks));
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.cancelled, 0u);
  EXPECT_EQ(stats.busy, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.threads, 0u);  // joined
  EXPECT_THROW(pool.resize(size() + 1), background::shutdown_error);
  EXPECT_EQ(pool.size(), size());
}

TEST_P(CancelTest, ShutdownWaitsForQueuedTasksAndWhatTheySubmit) {
  background::pool pool{size()};
  std::atomic<int> ran{0};
  constexpr int parents = 20;
  constexpr int children = 5;
  int probes = 0;
  {
    blocked_workers blocked{pool, size()};
    for (int i = 0; i < parents; ++i) {
      pool.run([&pool, &ran] {
        ++ran;
        // Submitted from inside, during the drain: accepted, and run before shutdown returns.
        for (int c = 0; c < children; ++c) pool.run([&ran] { ++ran; });
        pool.run([&ran] { ++ran; }).then([&ran] { ++ran; });
        auto nested = pool.run([&ran] {
          ++ran;
          return 1;
        });
        ++ran;
        (void)nested.get();  // a nested wait during the drain
      });
    }
    std::thread closer([&pool] { pool.shutdown(); });
    probes = submit_until_closed(pool, ran);  // accepted probes count too
    blocked.release();
    closer.join();
  }
  EXPECT_EQ(ran, parents * (1 + children + 2 + 2) + probes);
  EXPECT_EQ(pool.stats().completed,
            static_cast<std::uint64_t>(parents * (1 + children + 3) + probes) + size());
}

TEST_P(CancelTest, SecondShutdownAndTheDestructorAfterItAreFine) {
  std::atomic<int> ran{0};
  {
    background::pool pool{size()};
    for (int i = 0; i < 100; ++i) pool.run([&ran] { ++ran; });
    pool.shutdown();
    EXPECT_EQ(ran, 100);
    pool.shutdown();
    pool.shutdown(background::cancel_pending);
    pool.wait();  // nothing left: returns at once
    EXPECT_EQ(pool.stats().completed, 100u);
  }  // the destructor only frees
  EXPECT_EQ(ran, 100);
}

TEST_P(CancelTest, ConcurrentShutdownsBothWaitForTheWork) {
  background::pool pool{size()};
  std::atomic<int> ran{0};
  std::atomic<int> seen_by_first{-1};
  std::atomic<int> seen_by_second{-1};
  constexpr int tasks = 200;
  int probes = 0;
  {
    blocked_workers blocked{pool, size()};
    for (int i = 0; i < tasks; ++i) pool.run([&ran] { ++ran; });
    std::thread first([&] {
      pool.shutdown();
      seen_by_first = ran.load();
    });
    std::thread second([&] {
      pool.shutdown();
      seen_by_second = ran.load();
    });
    probes = submit_until_closed(pool, ran);
    blocked.release();
    first.join();
    second.join();
  }
  EXPECT_EQ(seen_by_first, tasks + probes);
  EXPECT_EQ(seen_by_second, tasks + probes);
}

TEST_P(CancelTest, ShutdownFromItsOwnTaskIsALogicErrorAndThePoolGoesOn) {
  background::pool pool{size()};
  auto from_task = pool.run([&pool] {
    int logic_errors = 0;
    try {
      pool.shutdown();
    } catch (const std::logic_error&) {
      ++logic_errors;
    }
    try {
      pool.shutdown(background::cancel_pending);
    } catch (const std::logic_error&) {
      ++logic_errors;
    }
    return logic_errors;
  });
  EXPECT_EQ(from_task.get(), 2);
  // From a continuation on the pool, too.
  auto from_then = pool.run([] { return 0; }).then([&pool](int) {
    try {
      pool.shutdown();
    } catch (const std::logic_error&) {
      return true;
    }
    return false;
  });
  EXPECT_TRUE(from_then.get());
  // The pool still works, at its size.
  std::vector<background::future<int>> futures;
  for (int i = 0; i < 100; ++i) futures.push_back(pool.run([i] { return i; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i);
  EXPECT_EQ(pool.size(), size());
  pool.resize(size() + 1);
  EXPECT_EQ(pool.run([] { return 3; }).get(), 3);
  pool.shutdown();  // and shuts down from outside
  EXPECT_THROW(pool.run([] {}), background::shutdown_error);
}

TEST(CancelShutdownTest, ShutdownFromACallbackOnAWorkerIsALogicError) {
  background::pool pool{1};
  std::atomic<int> logic_errors{0};
  pool.callback([&pool, &logic_errors](const background::outcome&) {
    try {
      pool.shutdown();
    } catch (const std::logic_error&) {
      ++logic_errors;
    }
  });
  pool.run([] {}).wait();
  pool.wait();
  EXPECT_EQ(logic_errors, 1);
  EXPECT_EQ(pool.run([] { return 2; }).get(), 2);
}

TEST(CancelShutdownTest, ShutdownFromAnotherPoolsTaskWaitsForIt) {
  background::pool pool{2};
  background::pool other{1};
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) pool.run([&ran] { ++ran; });
  auto f = other.run([&pool, &ran] {
    pool.shutdown();
    return ran.load();
  });
  EXPECT_EQ(f.get(), 50);
}

// ---- pool::shutdown(cancel_pending) ---------------------------------------------------------

TEST_P(CancelTest, CancelPendingCancelsWhatHasNotStarted) {
  background::pool pool{size()};
  std::atomic<int> succeeded{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> failed{0};
  pool.callback([&](const background::outcome& o) {
    if (o.cancelled()) {
      ++cancelled;
    } else if (o.succeeded()) {
      ++succeeded;
    } else {
      ++failed;
    }
  });
  std::atomic<int> ran{0};
  constexpr int queued = 300;
  std::vector<background::future<int>> futures;
  int probes = 0;
  {
    blocked_workers blocked{pool, size()};
    for (int i = 0; i < queued; ++i) {
      futures.push_back(pool.run([&ran, i] {
        ++ran;
        return i;
      }));
    }
    std::thread closer([&pool] { pool.shutdown(background::cancel_pending); });
    // Once a submission is refused, the cancelling shutdown has begun: nothing queued starts.
    probes = submit_until_closed(pool, ran);
    blocked.release();  // the running tasks finish
    closer.join();
    for (const auto& f : blocked.futures()) EXPECT_NO_THROW(f.get());
  }
  EXPECT_EQ(ran, 0);
  for (const auto& f : futures) {
    ASSERT_TRUE(f.done());
    EXPECT_TRUE(is_cancelled(f));
  }
  EXPECT_EQ(succeeded, static_cast<int>(size()));
  EXPECT_EQ(cancelled, queued + probes);
  EXPECT_EQ(failed, 0);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.completed, size());
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(queued + probes));
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_THROW(pool.run([] {}), background::shutdown_error);
}

TEST_P(CancelTest, CancelPendingAsksRunningStopTokenTasksToStop) {
  background::pool pool{size()};
  std::latch started{static_cast<std::ptrdiff_t>(size())};
  std::atomic<int> stop_callbacks{0};
  std::vector<background::future<int>> running;
  for (std::size_t i = 0; i < size(); ++i) {
    running.push_back(pool.run(
        [&started, &stop_callbacks](std::stop_token st, int x) {
          std::stop_callback on_stop(st, [&stop_callbacks] { ++stop_callbacks; });
          started.count_down();
          return await_stop(st) ? x : -1;  // ends only when asked (or fails)
        },
        static_cast<int>(i)));
  }
  started.wait();
  std::atomic<int> ran_later{0};
  auto queued = pool.run([&ran_later](std::stop_token) { ++ran_later; });
  pool.shutdown(background::cancel_pending);  // returns: every running task was asked to stop
  for (std::size_t i = 0; i < size(); ++i) EXPECT_EQ(running[i].get(), static_cast<int>(i));
  EXPECT_EQ(stop_callbacks, static_cast<int>(size()));
  EXPECT_TRUE(is_cancelled(queued));
  EXPECT_EQ(ran_later, 0);
}

TEST_P(CancelTest, CancelPendingLetsRunningTasksWithoutATokenFinish) {
  background::pool pool{size()};
  std::atomic<int> finished{0};
  std::vector<background::future<int>> running;
  {
    std::latch started{static_cast<std::ptrdiff_t>(size())};
    std::latch release{1};
    for (std::size_t i = 0; i < size(); ++i) {
      running.push_back(pool.run([&, i] {
        started.count_down();
        release.wait();
        ++finished;
        return static_cast<int>(i);
      }));
    }
    started.wait();
    std::thread closer([&pool] { pool.shutdown(background::cancel_pending); });
    std::atomic<int> probes_ran{0};
    (void)submit_until_closed(pool, probes_ran);
    release.count_down();
    closer.join();
    EXPECT_EQ(probes_ran, 0);
  }
  EXPECT_EQ(finished, static_cast<int>(size()));
  for (std::size_t i = 0; i < size(); ++i) EXPECT_EQ(running[i].get(), static_cast<int>(i));
}

TEST_P(CancelTest, CancelPendingCancelsContinuationsOfCancelledTasks) {
  background::pool pool{size()};
  std::atomic<int> called{0};
  background::future<int> antecedent;
  background::future<int> continuation;
  background::future<int> chained;
  background::future<int> of_running;
  {
    blocked_workers blocked{pool, size()};
    // A continuation of a running task: it has not started either when the shutdown comes.
    of_running = blocked.futures()[0].then([&called] {
      ++called;
      return 1;
    });
    antecedent = pool.run([] { return 1; });
    continuation = antecedent.then([&called](int v) {
      ++called;
      return v;
    });
    chained = continuation.then([&called](int v) {
      ++called;
      return v;
    });
    std::thread closer([&pool] { pool.shutdown(background::cancel_pending); });
    std::atomic<int> probes_ran{0};
    (void)submit_until_closed(pool, probes_ran);
    blocked.release();
    closer.join();
  }
  EXPECT_TRUE(is_cancelled(antecedent));
  EXPECT_TRUE(is_cancelled(continuation));
  EXPECT_TRUE(is_cancelled(chained));
  EXPECT_TRUE(is_cancelled(of_running));
  EXPECT_EQ(called, 0);
}

TEST_P(CancelTest, CancelPendingAccountsForEveryTaskExactlyOnce) {
  // Two producers submit (tasks that sometimes submit more from inside) while the pool is
  // shut down with cancel_pending: every accepted task either ran or was cancelled, once, and
  // callbacks, futures and stats agree.
  background::pool pool{size()};
  std::atomic<int> ran{0};
  std::atomic<int> accepted{0};
  std::atomic<int> cb_succeeded{0};
  std::atomic<int> cb_cancelled{0};
  std::atomic<int> cb_other{0};
  pool.callback([&](const background::outcome& o) {
    if (o.cancelled()) {
      ++cb_cancelled;
    } else if (o.succeeded()) {
      ++cb_succeeded;
    } else {
      ++cb_other;
    }
  });
  std::vector<background::future<int>> futures[2];
  std::latch producing{2};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      producing.count_down();
      for (int i = 0; i < 20000; ++i) {
        try {
          futures[p].push_back(pool.run([&pool, &ran, &accepted, i](std::stop_token) {
            ++ran;
            if (i % 8 == 0) {
              pool.run([&ran] { ++ran; });  // from inside: always accepted
              ++accepted;
            }
            return i;
          }));
          ++accepted;
        } catch (const background::shutdown_error&) {
          return;
        }
      }
    });
  }
  producing.wait();
  while (accepted.load() < 500) std::this_thread::yield();
  pool.shutdown(background::cancel_pending);
  for (auto& t : producers) t.join();
  EXPECT_EQ(ran + cb_cancelled, accepted);
  EXPECT_EQ(cb_succeeded, ran);
  EXPECT_EQ(cb_other, 0);
  int futures_ran = 0;
  int futures_cancelled = 0;
  for (const auto& list : futures) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      ASSERT_TRUE(list[i].done());
      if (is_cancelled(list[i])) {
        ++futures_cancelled;
      } else {
        EXPECT_EQ(list[i].get(), static_cast<int>(i));
        ++futures_ran;
      }
    }
  }
  EXPECT_LE(futures_ran, ran);
  EXPECT_LE(futures_cancelled, cb_cancelled);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.completed, static_cast<std::uint64_t>(ran.load()));
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(cb_cancelled.load()));
  EXPECT_EQ(stats.failed, 0u);
}

TEST(CancelShutdownTest, CancelPendingCancelsATaskThatAnotherPoolsWorkerWouldRunInline) {
  // A task of `pool`, queued when its shutdown(cancel_pending) begins, is waited for from a
  // task of `other`. Untimed waits on a worker run a queued task inline; this one has not
  // started, so the shutdown must cancel it rather than let the waiter run it.
  background::pool pool{1};
  background::pool other{1};
  std::atomic<bool> ran{false};
  blocked_workers blocked{pool, 1};
  auto queued = pool.run([&ran] {
    ran = true;
    return 1;
  });
  std::thread closer([&pool] { pool.shutdown(background::cancel_pending); });
  std::atomic<int> probes_ran{0};
  (void)submit_until_closed(pool, probes_ran);
  auto waiter = other.run([&queued] { return is_cancelled(queued); });
  const bool waiter_saw_cancelled = waiter.get();
  blocked.release();
  closer.join();
  EXPECT_TRUE(waiter_saw_cancelled);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(is_cancelled(queued));
}

TEST(CancelShutdownTest, CancelPendingCancelsATaskSubmittedDuringTheDrainAndWaitedFor) {
  // A running task submits two tasks during a cancelling shutdown and waits for the older:
  // neither has started, so both are cancelled, whichever path the wait takes.
  background::pool pool{1};
  std::latch in_task{1};
  std::latch closing{1};
  std::atomic<int> ran{0};
  auto parent = pool.run([&] {
    in_task.count_down();
    closing.wait();
    auto older = pool.run([&ran] { ++ran; });
    auto newer = pool.run([&ran] { ++ran; });
    return is_cancelled(older);
  });
  in_task.wait();
  std::thread closer([&pool] { pool.shutdown(background::cancel_pending); });
  std::atomic<int> probes_ran{0};
  (void)submit_until_closed(pool, probes_ran);
  closing.count_down();
  closer.join();
  EXPECT_TRUE(parent.get());
  EXPECT_EQ(ran, 0);
}

// ---- then(f) with a callable that takes the future ------------------------------------------

TEST_P(CancelTest, ThenWithTheFutureRunsOnSuccess) {
  background::pool pool{size()};
  auto f = pool.run([] { return 21; }).then([](background::future<int> a) {
    EXPECT_TRUE(a.done());
    return a.get() * 2;
  });
  static_assert(std::is_same_v<decltype(f), background::future<int>>);
  EXPECT_EQ(f.get(), 42);
  auto v = pool.run([] {}).then([](background::future<void> a) {
    a.get();
    return std::string("void ok");
  });
  EXPECT_EQ(v.get(), "void ok");
  // On an rvalue too, and returning void.
  std::atomic<int> seen{0};
  pool.run([] { return 5; }).then([&seen](background::future<int> a) { seen = a.get(); }).get();
  EXPECT_EQ(seen, 5);
}

TEST_P(CancelTest, ThenWithTheFutureRunsOnFailureAndObservesTheException) {
  error_log errors;
  {
    background::pool pool{size()};
    auto handled = pool.run([]() -> int { throw std::runtime_error("boom"); })
                       .then([](background::future<int> a) -> std::string {
                         try {
                           (void)a.get();
                         } catch (const std::runtime_error& e) {
                           return e.what();
                         }
                         return "no exception";
                       });
    EXPECT_EQ(handled.get(), "boom");
    // Handed over and only looked at, its future dropped: still observed.
    (void)pool.run([]() -> int { throw std::runtime_error("dropped"); })
        .then([](background::future<int> a) { return a.done(); });
    // Lvalue then(): the antecedent's future is kept and never read; the continuation has it.
    auto antecedent = pool.run([] { throw std::runtime_error("kept"); });
    auto seen =
        antecedent.then([](background::future<void> a) { return a.exception() != nullptr; });
    EXPECT_TRUE(seen.get());
    pool.wait();
  }
  EXPECT_EQ(errors.count(), 0);
}

TEST_P(CancelTest, ThenWithTheFutureThatRethrowsPassesTheExceptionOn) {
  error_log errors;
  {
    background::pool pool{size()};
    auto rethrown = pool.run([]() -> int { throw std::runtime_error("again"); })
                        .then([](background::future<int> a) { return a.get() + 1; });
    EXPECT_THROW(rethrown.get(), std::runtime_error);
    // Nobody observes the continuation's own exception: reported once.
    (void)pool.run([]() -> int { throw std::runtime_error("lost"); })
        .then([](background::future<int> a) { return a.get(); });
    pool.wait();
  }
  EXPECT_EQ(errors.count(), 1);
}

TEST_P(CancelTest, ThenWithTheFutureRunsOnCancellation) {
  background::pool pool{size()};
  std::atomic<bool> ran{false};
  const auto handle = [](background::future<int> a) {
    try {
      return a.get();
    } catch (const background::cancelled&) {
      return -1;
    }
  };
  background::future<int> before;
  background::future<int> after;
  background::future<int> value_then;
  {
    blocked_workers blocked{pool, size()};
    auto queued = pool.run([&ran] {
      ran = true;
      return 1;
    });
    before = queued.then(handle);  // attached before the cancel: runs after it
    value_then = queued.then([](int v) { return v; });
    EXPECT_TRUE(queued.cancel());
    after = queued.then(handle);  // attached to a task already cancelled: runs at once
    EXPECT_TRUE(is_cancelled(value_then));
  }
  EXPECT_EQ(before.get(), -1);
  EXPECT_EQ(after.get(), -1);
  // A pending continuation that is cancelled: its future-taking continuation runs too.
  auto pending = pool.run([] { return 1; }).then([](int v) { return v; });
  {
    blocked_workers blocked{pool, size()};
    auto middle = pool.run([] { return 2; }).then([](int v) { return v; });
    auto last = middle.then(handle);
    EXPECT_TRUE(middle.cancel());
    EXPECT_EQ(last.get(), -1);
  }
  EXPECT_EQ(pending.get(), 1);
  pool.wait();
  EXPECT_FALSE(ran);
}

TEST_P(CancelTest, ThenWithAGenericLambdaGetsTheValue) {
  // Written with a return type that only the value satisfies. An unconstrained body
  // (`[](auto v) { return v * 2; }`) does not compile at all: deciding whether `f` takes the
  // future instantiates its body with a future<int> (a hard error, not a failed overload).
  background::pool pool{size()};
  auto f = pool.run([] { return 21; }).then([](auto v) -> decltype(v * 2) {
    static_assert(std::is_same_v<decltype(v), int>);
    return v * 2;
  });
  EXPECT_EQ(f.get(), 42);
  auto g = pool.run([] { return std::string("x"); });
  auto h = g.then([](const auto& s) -> decltype(s + "y") { return s + "y"; });
  EXPECT_EQ(h.get(), "xy");
  // Callable with either: it gets the value.
  auto either = pool.run([] { return 7; }).then([](auto v) {
    if constexpr (std::is_same_v<decltype(v), int>) {
      return v;
    } else {
      return -1;
    }
  });
  EXPECT_EQ(either.get(), 7);
  // A generic lambda on a failed task is not called: the exception is forwarded.
  std::atomic<bool> called{false};
  auto e = pool.run([]() -> int { throw std::logic_error("e"); })
               .then([&called](auto v) -> decltype(v + 0) {
                 called = true;
                 return v;
               });
  EXPECT_THROW(e.get(), std::logic_error);
  EXPECT_FALSE(called);
}

// ---- then(p, f) ---------------------------------------------------------------------------

TEST_P(CancelTest, ThenOnAPoolRunsThere) {
  background::pool source{size()};
  background::pool target{2, named("target")};
  std::latch release{1};
  auto a = source.run([&release] {
    release.wait();
    return 20;
  });
  auto c = a.then(target, [](int v) {
    EXPECT_EQ(thread_name().rfind("target-", 0), 0u) << thread_name();
    return std::make_pair(background::this_pool(), v + 1);
  });
  release.count_down();
  const auto [where, value] = c.get();
  EXPECT_EQ(where, &target);
  EXPECT_EQ(value, 21);
  // A chain that goes back and forth.
  auto back = c.then(source, [](std::pair<background::pool*, int> r) {
    return std::make_pair(background::this_pool(), r.second + 1);
  });
  EXPECT_EQ(back.get().first, &source);
  EXPECT_EQ(back.get().second, 22);
  // From the default pool to a pool.
  auto from_default = background::run([] { return 1; }).then(target, [](int v) {
    return background::this_pool() != nullptr ? v : -1;
  });
  EXPECT_EQ(from_default.get(), 1);
  target.wait();
  EXPECT_EQ(target.stats().completed, 2u);  // continuations count where they ran
}

TEST_P(CancelTest, ThenOnAPoolIsRunByAnotherPoolsWorkerThatWaitsForIt) {
  // then(p, f) is queued on p, but a worker of another pool that waits for it may run it, as it
  // would any task it waits for (future.hpp): two pools of one worker each, whose tasks wait for
  // each other's continuations, must not deadlock.
  background::pool a{1, named("pa")};
  background::pool b{size(), named("pb")};
  std::latch ready{2};
  auto on_a = a.run([&] {
    auto x = background::run([] { return 1; }).then(b, [](int v) { return v + 1; });
    ready.arrive_and_wait();
    return x.get();
  });
  auto on_b = b.run([&] {
    auto y = background::run([] { return 2; }).then(a, [](int v) { return v + 1; });
    ready.arrive_and_wait();
    return y.get();
  });
  ASSERT_TRUE(on_a.wait_for(std::chrono::seconds(30))) << "cross-pool waits deadlocked";
  ASSERT_TRUE(on_b.wait_for(std::chrono::seconds(30))) << "cross-pool waits deadlocked";
  EXPECT_EQ(on_a.get(), 2);
  EXPECT_EQ(on_b.get(), 3);
}

TEST_P(CancelTest, ThenOnAPoolAfterTheAntecedentFinished) {
  background::pool source{size()};
  background::pool target{1, named("late")};
  auto a = source.run([] { return 1; });
  a.wait();
  auto c = a.then(target, [](int v) {
    return std::make_pair(background::this_pool(), thread_name() == "late-0" ? v : -1);
  });
  const auto [where, value] = c.get();
  EXPECT_EQ(where, &target);
  EXPECT_EQ(value, 1);
  auto d = a.then(target, [](background::future<int> f) {
    return background::this_pool() == nullptr ? -1 : f.get();
  });
  EXPECT_EQ(d.get(), 1);
}

TEST_P(CancelTest, ThenOnAPoolShutDownBeforeTheAntecedentFinishesIsCancelled) {
  background::pool source{size()};
  background::pool target{1};
  std::atomic<int> called{0};
  std::latch release{1};
  auto a = source.run([&release] {
    release.wait();
    return 1;
  });
  auto c = a.then(target, [&called](int v) {
    ++called;
    return v;
  });
  auto d = a.then(target, [&called](background::future<int> f) {
    ++called;
    return f.get();
  });
  target.shutdown();
  release.count_down();
  EXPECT_EQ(a.get(), 1);
  EXPECT_TRUE(is_cancelled(c));
  EXPECT_TRUE(is_cancelled(d));
  EXPECT_EQ(called, 0);
}

TEST_P(CancelTest, ThenOnAPoolAlreadyShutDownThrowsWhileTheAntecedentRuns) {
  // Whether then() throws depends on the target pool alone, not on how far the antecedent got.
  background::pool source{size()};
  background::pool target{1};
  target.shutdown();
  std::latch release{1};
  auto a = source.run([&release] {
    release.wait();
    return 1;
  });
  std::atomic<bool> called{false};
  EXPECT_THROW((void)a.then(target,
                            [&called](int v) {
                              called = true;
                              return v;
                            }),
               background::shutdown_error);
  release.count_down();
  EXPECT_EQ(a.get(), 1);  // the antecedent is untouched
  source.wait();
  EXPECT_FALSE(called);
}

TEST_P(CancelTest, ThenOnAPoolShutDownAfterTheAntecedentFinishedThrows) {
  background::pool source{size()};
  background::pool target{1};
  auto a = source.run([] { return 1; });
  a.wait();
  target.shutdown();
  std::atomic<bool> called{false};
  EXPECT_THROW((void)a.then(target,
                            [&called](int v) {
                              called = true;
                              return v;
                            }),
               background::shutdown_error);
  EXPECT_THROW((void)a.then(target, [](background::future<int> f) { return f.get(); }),
               background::shutdown_error);
  EXPECT_EQ(a.get(), 1);  // the antecedent is untouched
  source.wait();
  EXPECT_FALSE(called);
}

}  // namespace
