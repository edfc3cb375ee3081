// Tests for compose.hpp: when_all(), when_any(), wait_all(), wait_any() and as_completed(), with
// the failure rule (the first failure in input order, once all are done), nested use at n = 1,
// and the rule that no exception is lost.
#include "background/compose.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <latch>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <ranges>
#include <semaphore>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "background/background.hpp"
#include "support/counted.hpp"
#include "support/error_log.hpp"
#include "support/held_pool.hpp"
#include "support/run_nested.hpp"

namespace {

using background::testing::counted;
using background::testing::error_log;
using background::testing::held_pool;
using background::testing::run_nested;
using background::testing::thrown_by;

using namespace std::chrono_literals;
using background::future;

class ComposeTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  background::pool pool_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, ComposeTest, ::testing::Values(1, 2, 4, 8, 64));

std::vector<future<int>> squares_on(background::pool& p, int count) {
  std::vector<future<int>> fs;
  for (int i = 0; i < count; ++i) fs.push_back(p.run([i] { return i * i; }));
  return fs;
}

std::vector<int> squares(int count) {
  std::vector<int> v;
  for (int i = 0; i < count; ++i) v.push_back(i * i);
  return v;
}

// ---------------------------------------------------------------------------------------------
// when_all(fs)

TEST_P(ComposeTest, WhenAllGivesTheValuesInInputOrder) {
  auto fs = squares_on(pool_, 200);
  future<std::vector<int>> all = background::when_all(fs);
  EXPECT_EQ(all.get(), squares(200));
}

TEST_P(ComposeTest, WhenAllKeepsInputOrderWhenTheFirstInputFinishesLast) {
  auto second = pool_.run([] { return 2; });
  second.wait();
  std::latch release{1};
  auto first = pool_.run([&release] {
    release.wait();
    return 1;
  });
  std::vector<future<int>> fs{first, second};
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());
  release.count_down();
  EXPECT_EQ(all.get(), (std::vector<int>{1, 2}));
}

TEST_P(ComposeTest, WhenAllOfManyInputsSomeDoneSomeNot) {
  // Inputs done before the call and inputs still running, interleaved.
  std::latch release{1};
  std::vector<future<int>> fs;
  for (int i = 0; i < 2000; ++i) {
    fs.push_back(pool_.run([i] { return i; }));
    if (i % 97 == 0) fs.back().wait();
  }
  fs.push_back(pool_.run([&release] {
    release.wait();
    return 2000;
  }));
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());
  release.count_down();
  const std::vector<int>& values = all.get();
  ASSERT_EQ(values.size(), 2001u);
  for (int i = 0; i <= 2000; ++i) ASSERT_EQ(values[static_cast<std::size_t>(i)], i) << "at " << i;
}

TEST_P(ComposeTest, WhenAllOfVoidFuturesIsAFutureOfVoid) {
  std::atomic<int> ran{0};
  std::vector<future<void>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(pool_.run([&ran] { ++ran; }));
  auto all = background::when_all(fs);
  static_assert(std::is_same_v<decltype(all), future<void>>);
  all.get();
  EXPECT_EQ(ran, 50);
  for (const auto& f : fs) EXPECT_TRUE(f.done());
}

TEST(ComposeWhenAllTest, EmptyRangeIsReadyAtOnce) {
  std::vector<future<int>> none;
  auto all = background::when_all(none);
  EXPECT_TRUE(all.done());
  EXPECT_TRUE(all.get().empty());
  std::vector<future<void>> no_void;
  auto all_void = background::when_all(no_void);
  EXPECT_TRUE(all_void.done());
  all_void.get();
  EXPECT_EQ(all.then([](const std::vector<int>& v) { return v.size() + 5; }).get(), 5u);
}

TEST_P(ComposeTest, WhenAllFailsWithTheFirstFailureInInputOrderNotInTime) {
  auto second = pool_.run([]() -> int { throw std::runtime_error("second, failed first"); });
  second.wait();
  std::latch release{1};
  auto first = pool_.run([&release]() -> int {
    release.wait();
    throw std::runtime_error("first, failed last");
  });
  std::vector<future<int>> fs{first, second, pool_.run([] { return 3; })};
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());
  release.count_down();
  EXPECT_EQ(thrown_by(all), "first, failed last");
  EXPECT_EQ(thrown_by(second), "second, failed first");  // still there for its own future
}

TEST_P(ComposeTest, WhenAllFailsWithTheFirstFailureWhenItAlsoCameFirstInTime) {
  auto first = pool_.run([]() -> int { throw std::runtime_error("first"); });
  first.wait();
  std::latch release{1};
  auto second = pool_.run([&release]() -> int {
    release.wait();
    throw std::runtime_error("second");
  });
  std::vector<future<int>> fs{pool_.run([] { return 0; }), first, second};
  auto all = background::when_all(fs);
  release.count_down();
  EXPECT_EQ(thrown_by(all), "first");
  EXPECT_EQ(thrown_by(second), "second");
}

TEST_P(ComposeTest, WhenAllIsNotReadyUntilEveryInputIsDoneEvenAfterAFailure) {
  std::latch release{1};
  std::atomic<bool> last_finished{false};
  auto failing = pool_.run([]() -> int { throw std::logic_error("early"); });
  failing.wait();
  auto slow = pool_.run([&] {
    release.wait();
    last_finished = true;
    return 2;
  });
  std::vector<future<int>> fs{failing, slow};
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());
  EXPECT_FALSE(all.wait_for(1ms));
  release.count_down();
  EXPECT_THROW(all.get(), std::logic_error);
  EXPECT_TRUE(last_finished);  // get() returned only after the slow input had finished
  EXPECT_TRUE(slow.done());
}

TEST_P(ComposeTest, WhenAllOfVoidFailsWithTheFirstFailureInInputOrder) {
  auto second = pool_.run([] { throw std::runtime_error("void second"); });
  second.wait();
  std::latch release{1};
  auto first = pool_.run([&release] {
    release.wait();
    throw std::runtime_error("void first");
  });
  std::vector<future<void>> fs{first, second};
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());
  release.count_down();
  EXPECT_EQ(thrown_by(all), "void first");
  EXPECT_EQ(thrown_by(second), "void second");
}

TEST(ComposeWhenAllTest, CancelledInputMakesItCancelled) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  auto b = held.pool().run([] { return 2; });
  auto c = held.pool().run([] { return 3; });
  ASSERT_TRUE(b.cancel());
  std::vector<future<int>> fs{a, b, c};
  auto all = background::when_all(fs);
  EXPECT_FALSE(all.done());  // a and c are still queued
  held.release();
  EXPECT_THROW(all.get(), background::cancelled);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(c.get(), 3);
}

TEST(ComposeWhenAllTest, CancelledInputCancelledWhileItWaits) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  auto b = held.pool().run([] { return 2; });
  std::vector<future<int>> fs{a, b};
  auto all = background::when_all(fs);
  ASSERT_TRUE(b.cancel());  // after when_all() attached to the inputs
  held.release();
  EXPECT_THROW(all.get(), background::cancelled);
}

TEST(ComposeWhenAllTest, CancellationAndFailureFollowInputOrder) {
  held_pool held;
  auto failed = held.pool().run([]() -> int { throw std::runtime_error("failed"); });
  auto cancelled = held.pool().run([] { return 2; });
  ASSERT_TRUE(cancelled.cancel());
  std::vector<future<int>> failed_first{failed, cancelled};
  std::vector<future<int>> cancelled_first{cancelled, failed};
  auto a = background::when_all(failed_first);
  auto b = background::when_all(cancelled_first);
  held.release();
  EXPECT_EQ(thrown_by(a), "failed");
  EXPECT_THROW(b.get(), background::cancelled);
}

TEST_P(ComposeTest, WhenAllTakesVectorsSpansListsAndRvalues) {
  auto fs = squares_on(pool_, 20);
  const auto& cfs = fs;
  EXPECT_EQ(background::when_all(cfs).get(), squares(20));
  EXPECT_EQ(background::when_all(std::span(fs)).get(), squares(20));
  EXPECT_EQ(background::when_all(std::span<const future<int>>(fs)).get(), squares(20));
  std::list<future<int>> listed(fs.begin(), fs.end());
  EXPECT_EQ(background::when_all(listed).get(), squares(20));
  auto copy = fs;
  EXPECT_EQ(background::when_all(std::move(copy)).get(), squares(20));
  EXPECT_EQ(background::when_all(squares_on(pool_, 20)).get(), squares(20));
}

TEST_P(ComposeTest, WhenAllOfFuturesFromTwoPools) {
  background::pool other{2};
  std::vector<future<int>> fs;
  for (int i = 0; i < 40; ++i) {
    fs.push_back(i % 2 == 0 ? pool_.run([i] { return i * i; }) : other.run([i] { return i * i; }));
  }
  EXPECT_EQ(background::when_all(fs).get(), squares(40));
}

TEST_P(ComposeTest, WhenAllCopiesCopyableValuesAndLeavesTheInputsReadable) {
  std::vector<future<std::string>> fs;
  for (int i = 0; i < 10; ++i) {
    fs.push_back(pool_.run([i] { return std::string(40, static_cast<char>('a' + i)); }));
  }
  auto all = background::when_all(fs).get();
  for (std::size_t i = 0; i < fs.size(); ++i) {
    EXPECT_EQ(all[i], std::string(40, static_cast<char>('a' + i)));
    EXPECT_EQ(fs[i].get(), all[i]) << "when_all took the value of input " << i;
  }
}

TEST_P(ComposeTest, WhenAllMovesMoveOnlyValuesOut) {
  std::vector<future<std::unique_ptr<int>>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(pool_.run([i] { return std::make_unique<int>(i); }));
  std::vector<std::unique_ptr<int>> values = background::when_all(std::move(fs)).get();
  ASSERT_EQ(values.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    ASSERT_NE(values[static_cast<std::size_t>(i)], nullptr);
    EXPECT_EQ(*values[static_cast<std::size_t>(i)], i);
  }
}

TEST_P(ComposeTest, WhenAllChainsWithThen) {
  auto fs = squares_on(pool_, 10);
  auto sum = background::when_all(fs).then([](const std::vector<int>& v) {
    int s = 0;
    for (int x : v) s += x;
    return s;
  });
  EXPECT_EQ(sum.get(), 285);
  std::atomic<int> ran{0};
  std::vector<future<void>> vs;
  for (int i = 0; i < 5; ++i) vs.push_back(pool_.run([&ran] { ++ran; }));
  EXPECT_EQ(background::when_all(vs).then([&ran] { return ran.load(); }).get(), 5);
  // A continuation that takes the future sees a failure too.
  std::vector<future<int>> failing{pool_.run([]() -> int { throw std::runtime_error("x"); })};
  auto handled = background::when_all(failing).then(
      [](future<std::vector<int>> f) { return f.exception() != nullptr; });
  EXPECT_TRUE(handled.get());
}

TEST_P(ComposeTest, WhenAllContinuationsRunOnThePoolOfTheInputs) {
  background::pool other{2};
  std::vector<future<int>> done{other.run([] { return 1; }), other.run([] { return 2; })};
  background::wait_all(done);
  auto a = background::when_all(done).then([](const std::vector<int>&) {
    return background::this_pool();
  });
  EXPECT_EQ(a.get(), &other);
  std::latch release{1};
  std::vector<future<int>> later{other.run([&release] {
    release.wait();
    return 3;
  })};
  auto b = background::when_all(later).then([](const std::vector<int>&) {
    return background::this_pool();
  });
  release.count_down();
  EXPECT_EQ(b.get(), &other);
}

TEST(ComposeWhenAllTest, CancellingTheWhenAllFutureItself) {
  held_pool held;
  std::atomic<bool> continued{false};
  auto a = held.pool().run([] { return 1; });
  auto b = held.pool().run([] { return 2; });
  std::vector<future<int>> fs{a, b};
  auto all = background::when_all(fs);
  auto next = all.then([&continued](const std::vector<int>& v) {
    continued = true;
    return v.size();
  });
  EXPECT_TRUE(all.cancel());
  EXPECT_TRUE(all.done());
  EXPECT_FALSE(all.cancel());
  EXPECT_THROW(all.get(), background::cancelled);
  EXPECT_THROW(next.get(), background::cancelled);
  held.release();
  EXPECT_EQ(a.get(), 1);  // the inputs are not cancelled with it
  EXPECT_EQ(b.get(), 2);
  held.pool().wait();
  EXPECT_FALSE(continued);
  EXPECT_THROW(all.get(), background::cancelled);  // finishing inputs did not revive it
}

TEST_P(ComposeTest, CancellingAFinishedWhenAllFails) {
  auto fs = squares_on(pool_, 3);
  auto all = background::when_all(fs);
  all.wait();
  EXPECT_FALSE(all.cancel());
  EXPECT_EQ(all.get(), squares(3));
}

TEST_P(ComposeTest, WhenAllOfAnInvalidFutureThrowsFutureError) {
  std::vector<future<int>> fs{pool_.run([] { return 1; }), future<int>{}};
  EXPECT_THROW((void)background::when_all(fs), std::future_error);
  std::vector<future<void>> vs{future<void>{}};
  EXPECT_THROW((void)background::when_all(vs), std::future_error);
  EXPECT_THROW((void)background::when_all(pool_.run([] { return 1; }), future<void>{}),
               std::future_error);
  EXPECT_EQ(fs[0].get(), 1);
}

TEST_P(ComposeTest, WhenAllOfWhenAlls) {
  auto inner_a = background::when_all(squares_on(pool_, 5));
  auto inner_b = background::when_all(squares_on(pool_, 3));
  std::vector<future<std::vector<int>>> fs{inner_a, inner_b};
  auto outer = background::when_all(fs).get();
  ASSERT_EQ(outer.size(), 2u);
  EXPECT_EQ(outer[0], squares(5));
  EXPECT_EQ(outer[1], squares(3));
}

TEST_P(ComposeTest, WhenAllOfThenChains) {
  std::vector<future<int>> fs;
  for (int i = 0; i < 30; ++i) {
    fs.push_back(pool_.run([i] { return i; }).then([](int x) { return x * x; }));
  }
  EXPECT_EQ(background::when_all(fs).get(), squares(30));
}

TEST_P(ComposeTest, TheSameFutureTwiceCountsTwice) {
  std::latch release{1};
  auto f = pool_.run([&release] {
    release.wait();
    return 5;
  });
  std::vector<future<int>> fs{f, f};
  auto all = background::when_all(fs);
  auto any = background::when_any(fs);
  auto range = background::as_completed(fs);
  release.count_down();
  EXPECT_EQ(all.get(), (std::vector<int>{5, 5}));
  EXPECT_EQ(any.get(), 0u);  // both finish at once: the first in input order
  std::size_t yielded = 0;
  for (const auto& g : range) yielded += g.get() == 5 ? 1u : 0u;
  EXPECT_EQ(yielded, 2u);
}

// ---------------------------------------------------------------------------------------------
// when_all(f1, f2, ...)

TEST_P(ComposeTest, WhenAllTupleMixesTypesAndVoid) {
  std::atomic<bool> ran{false};
  auto all = background::when_all(pool_.run([] { return 7; }),
                                  pool_.run([] { return std::string("seven"); }),
                                  pool_.run([&ran] { ran = true; }));
  static_assert(
      std::is_same_v<decltype(all), future<std::tuple<int, std::string, std::monostate>>>);
  auto [n, s, nothing] = all.get();
  EXPECT_EQ(n, 7);
  EXPECT_EQ(s, "seven");
  (void)nothing;
  EXPECT_TRUE(ran);
}

TEST_P(ComposeTest, WhenAllTupleOfOne) {
  auto all = background::when_all(pool_.run([] { return 1.5; }));
  static_assert(std::is_same_v<decltype(all), future<std::tuple<double>>>);
  EXPECT_EQ(std::get<0>(all.get()), 1.5);
}

TEST_P(ComposeTest, WhenAllTupleKeepsTheInputsReadable) {
  auto s = pool_.run([] { return std::string(50, 'q'); });
  auto t = background::when_all(s, pool_.run([] { return 1; })).get();
  EXPECT_EQ(std::get<0>(t), std::string(50, 'q'));
  EXPECT_EQ(s.get(), std::string(50, 'q'));
}

TEST_P(ComposeTest, WhenAllTupleMovesMoveOnlyValuesOut) {
  auto t = background::when_all(pool_.run([] { return std::make_unique<int>(4); }),
                                pool_.run([] { return 5; }))
               .get();
  std::unique_ptr<int> p = std::move(std::get<0>(t));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 4);
}

TEST_P(ComposeTest, WhenAllTupleFailsWithTheFirstFailureInInputOrder) {
  auto third = pool_.run([]() -> std::string { throw std::runtime_error("third, first in time"); });
  third.wait();
  std::latch release{1};
  auto second = pool_.run([&release] {
    release.wait();
    throw std::runtime_error("second, last in time");
  });
  auto all = background::when_all(pool_.run([] { return 1; }), second, third);
  EXPECT_FALSE(all.done());
  release.count_down();
  EXPECT_EQ(thrown_by(all), "second, last in time");
}

TEST_P(ComposeTest, WhenAllTupleIsNotReadyUntilEveryInputIsDone) {
  auto failing = pool_.run([]() -> int { throw std::runtime_error("early"); });
  failing.wait();
  std::latch release{1};
  auto slow = pool_.run([&release] { release.wait(); });
  auto all = background::when_all(failing, slow);
  EXPECT_FALSE(all.done());
  release.count_down();
  EXPECT_EQ(thrown_by(all), "early");
  EXPECT_TRUE(slow.done());
}

TEST(ComposeWhenAllTest, TupleWithACancelledInputIsCancelled) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  auto b = held.pool().run([] {});
  ASSERT_TRUE(b.cancel());
  auto all = background::when_all(a, b);
  held.release();
  EXPECT_THROW(all.get(), background::cancelled);
}

TEST_P(ComposeTest, WhenAllTupleChainsWithThen) {
  auto sum = background::when_all(pool_.run([] { return 2; }), pool_.run([] { return 3; }))
                 .then([](const std::tuple<int, int>& t) { return std::get<0>(t) + std::get<1>(t); });
  EXPECT_EQ(sum.get(), 5);
}

// ---------------------------------------------------------------------------------------------
// when_any()

TEST_P(ComposeTest, WhenAnyGivesTheIndexOfTheFirstToFinish) {
  // Submitted in the order they are released, so that at n = 1 the worker holds the one
  // released first; the inputs are listed in another order.
  std::latch release2{1};
  std::latch release0{1};
  std::latch release1{1};
  auto f2 = pool_.run([&release2] {
    release2.wait();
    return 2;
  });
  auto f0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  auto f1 = pool_.run([&release1] {
    release1.wait();
    return 1;
  });
  std::vector<future<int>> fs{f0, f1, f2};
  auto any = background::when_any(fs);
  static_assert(std::is_same_v<decltype(any), future<std::size_t>>);
  EXPECT_FALSE(any.done());
  release2.count_down();
  EXPECT_EQ(any.get(), 2u);
  release0.count_down();
  release1.count_down();
  background::wait_all(fs);
  EXPECT_EQ(any.get(), 2u);
}

TEST_P(ComposeTest, WhenAnyOfAnAlreadyDoneInputIsItsIndex) {
  std::latch release{1};
  auto done1 = pool_.run([] { return 1; });
  auto done2 = pool_.run([] { return 2; });
  done2.wait();
  done1.wait();
  auto blocked = pool_.run([&release] {
    release.wait();
    return 0;
  });
  std::vector<future<int>> fs{blocked, done1, done2};
  auto any = background::when_any(fs);
  EXPECT_TRUE(any.done());  // nothing to wait for
  EXPECT_EQ(any.get(), 1u);  // the first done one in input order
  release.count_down();
  blocked.wait();
}

TEST(ComposeWhenAnyTest, EmptyRangeThrowsInvalidArgument) {
  std::vector<future<int>> none;
  // ASSERT: if when_any() took an empty range, wait_any() would wait for ever.
  ASSERT_THROW((void)background::when_any(none), std::invalid_argument);
  std::vector<future<void>> no_void;
  ASSERT_THROW((void)background::when_any(no_void), std::invalid_argument);
  EXPECT_THROW((void)background::wait_any(none), std::invalid_argument);
}

TEST_P(ComposeTest, WhenAnyOfAnInvalidFutureThrowsFutureError) {
  std::vector<future<int>> fs{pool_.run([] { return 1; }), future<int>{}};
  fs[0].wait();
  EXPECT_THROW((void)background::when_any(fs), std::future_error);
}

TEST_P(ComposeTest, WhenAnyCountsAFailureAsFinishing) {
  std::latch release{1};
  auto failing = pool_.run([]() -> int { throw std::runtime_error("lost the race, won when_any"); });
  failing.wait();
  auto blocked = pool_.run([&release] {
    release.wait();
    return 0;
  });
  std::vector<future<int>> fs{blocked, failing};
  EXPECT_EQ(background::when_any(fs).get(), 1u);  // the future of when_any does not fail
  release.count_down();
  blocked.wait();
  EXPECT_THROW(failing.get(), std::runtime_error);
}

TEST_P(ComposeTest, WhenAnyCountsAFailureThatHappensLaterAsFinishing) {
  std::latch release_failing{1};
  std::latch release_other{1};
  auto failing = pool_.run([&release_failing]() -> int {
    release_failing.wait();
    throw std::runtime_error("x");
  });
  auto other = pool_.run([&release_other] {
    release_other.wait();
    return 0;
  });
  std::vector<future<int>> fs{other, failing};
  auto any = background::when_any(fs);
  release_failing.count_down();
  EXPECT_EQ(any.get(), 1u);
  release_other.count_down();
  other.wait();
  EXPECT_THROW(failing.get(), std::runtime_error);
}

TEST(ComposeWhenAnyTest, CancelledInputCountsAsFinishing) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  auto b = held.pool().run([] { return 2; });
  std::vector<future<int>> fs{a, b};
  auto any = background::when_any(fs);
  EXPECT_FALSE(any.done());
  ASSERT_TRUE(b.cancel());
  EXPECT_EQ(any.get(), 1u);
  held.release();
  EXPECT_EQ(a.get(), 1);
}

TEST(ComposeWhenAnyTest, CancellingTheWhenAnyFutureItself) {
  held_pool held;
  auto a = held.pool().run([] { return 1; });
  std::vector<future<int>> fs{a};
  auto any = background::when_any(fs);
  EXPECT_TRUE(any.cancel());
  EXPECT_THROW(any.get(), background::cancelled);
  held.release();
  EXPECT_EQ(a.get(), 1);
  held.pool().wait();
  EXPECT_THROW(any.get(), background::cancelled);
}

TEST_P(ComposeTest, WhenAnyOfVoidFuturesAndChains) {
  std::latch release{1};
  auto done = pool_.run([] {});
  done.wait();
  auto blocked = pool_.run([&release] { release.wait(); });
  std::vector<future<void>> fs{blocked, done};
  // The continuation runs on the inputs' pool, held at n = 1 by `blocked` until the release.
  auto doubled = background::when_any(fs).then([](std::size_t i) { return 2 * i; });
  release.count_down();
  EXPECT_EQ(doubled.get(), 2u);
  blocked.wait();
}

TEST_P(ComposeTest, WhenAnyOfFuturesFromTwoPools) {
  background::pool other{1};
  std::latch release{1};
  auto blocked = pool_.run([&release] {
    release.wait();
    return 0;
  });
  std::vector<future<int>> fs{blocked, other.run([] { return 1; })};
  EXPECT_EQ(background::when_any(fs).get(), 1u);
  release.count_down();
  blocked.wait();
}

// A when_any() whose winner was already done at the call is done on the winner's pool, not on
// the first input's: its continuations run there (as when_all()'s run on its inputs' pool).
TEST_P(ComposeTest, WhenAnyContinuationsRunOnTheWinnersPool) {
  background::pool other{1};
  std::latch release{1};
  auto blocked = pool_.run([&release] {
    release.wait();
    return 0;
  });
  auto winner = other.run([] { return 1; });
  winner.wait();
  std::vector<future<int>> fs{blocked, winner};
  auto where = background::when_any(fs).then([](std::size_t) { return background::this_pool(); });
  release.count_down();  // on the wrong pool, it would wait behind `blocked`
  EXPECT_EQ(where.get(), &other);
  blocked.wait();
}

// ---------------------------------------------------------------------------------------------
// wait_all(), wait_any()

TEST_P(ComposeTest, WaitAllBlocksUntilEveryInputIsDone) {
  std::atomic<int> finished{0};
  std::vector<future<void>> fs;
  for (int i = 0; i < 100; ++i) fs.push_back(pool_.run([&finished] { ++finished; }));
  background::wait_all(fs);
  EXPECT_EQ(finished, 100);
  for (const auto& f : fs) EXPECT_TRUE(f.done());
  std::vector<future<void>> none;
  background::wait_all(none);
  EXPECT_TRUE(background::wait_all(none, 0s));
}

TEST_P(ComposeTest, WaitAllDoesNotThrowForFailedInputs) {
  std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("x"); }),
                              pool_.run([] { return 1; })};
  EXPECT_NO_THROW(background::wait_all(fs));
  EXPECT_TRUE(background::wait_all(fs, 0s));
  EXPECT_THROW(fs[0].get(), std::runtime_error);
}

TEST_P(ComposeTest, WaitAllWithATimeoutSaysWhetherAllAreDone) {
  auto done = pool_.run([] { return 1; });
  done.wait();
  std::latch release{1};
  auto blocked = pool_.run([&release] {
    release.wait();
    return 2;
  });
  std::vector<future<int>> fs{done, blocked};
  EXPECT_FALSE(background::wait_all(fs, 1ms));
  EXPECT_FALSE(background::wait_all(fs, 0s));
  EXPECT_FALSE(background::wait_all(fs, -1s));
  EXPECT_FALSE(blocked.done());
  release.count_down();
  background::wait_all(fs);
  EXPECT_TRUE(background::wait_all(fs, 0s));
  EXPECT_TRUE(background::wait_all(fs, std::chrono::hours(1)));
  EXPECT_TRUE(background::wait_all(fs, std::chrono::duration<double>::max()));
}

TEST_P(ComposeTest, WaitAllWithATimeoutWaitsForInputsThatFinishInTime) {
  std::vector<future<int>> fs = squares_on(pool_, 20);
  EXPECT_TRUE(background::wait_all(fs, 60s));
  for (const auto& f : fs) EXPECT_TRUE(f.done());
}

TEST_P(ComposeTest, WaitAnyWithATimeoutGivesAnIndexOrNothing) {
  std::latch release0{1};
  std::latch release1{1};
  auto f1 = pool_.run([&release1] {
    release1.wait();
    return 1;
  });
  auto f0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  std::vector<future<int>> fs{f0, f1};
  EXPECT_EQ(background::wait_any(fs, 1ms), std::nullopt);
  EXPECT_EQ(background::wait_any(fs, 0s), std::nullopt);
  release1.count_down();
  EXPECT_EQ(background::wait_any(fs, 60s), std::optional<std::size_t>(1));
  EXPECT_EQ(background::wait_any(fs, 0s), std::optional<std::size_t>(1));
  release0.count_down();
  f0.wait();
  EXPECT_EQ(background::wait_any(fs, 0s), std::optional<std::size_t>(0));  // first done in order
}

TEST_P(ComposeTest, WaitAnyGivesTheIndexOfADoneInput) {
  std::latch release0{1};
  std::latch release1{1};
  auto f1 = pool_.run([&release1] {
    release1.wait();
    return 1;
  });
  auto f0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  std::vector<future<int>> fs{f0, f1};
  release1.count_down();
  EXPECT_EQ(background::wait_any(fs), 1u);
  release0.count_down();
  f0.wait();
  EXPECT_EQ(background::wait_any(fs), 0u);
}

// ---------------------------------------------------------------------------------------------
// as_completed()

TEST_P(ComposeTest, AsCompletedYieldsInCompletionOrder) {
  // Inputs 2, 0 and 1 finish in that order, each released once the one before is done.
  std::latch release2{1};
  std::latch release0{1};
  std::latch release1{1};
  auto f2 = pool_.run([&release2] {
    release2.wait();
    return 2;
  });
  auto f0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  auto f1 = pool_.run([&release1] {
    release1.wait();
    return 1;
  });
  std::vector<future<int>> fs{f0, f1, f2};
  auto range = background::as_completed(fs);
  EXPECT_EQ(range.size(), 3u);
  release2.count_down();
  std::vector<int> order;
  for (const future<int>& f : range) {
    EXPECT_TRUE(f.done());
    order.push_back(f.get());
    if (order.size() == 1) release0.count_down();  // ++ blocks until it is done
    if (order.size() == 2) release1.count_down();
  }
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
}

TEST_P(ComposeTest, AsCompletedRecordsTheOrderInWhichInputsFinished) {
  std::latch release2{1};
  std::latch release0{1};
  std::latch release1{1};
  auto f2 = pool_.run([&release2] {
    release2.wait();
    return 2;
  });
  auto f0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  auto f1 = pool_.run([&release1] {
    release1.wait();
    return 1;
  });
  std::vector<future<int>> fs{f0, f1, f2};
  // Each input is released only once the range has yielded the one before: the order is the
  // order of finishing, whoever runs what. (Waiting on f2 itself would not do: its done() turns
  // true a moment before its worker delivers it to the range; see as_completed().) A timeout,
  // so that a range yielding in another order fails rather than hangs.
  auto range = background::as_completed(fs, std::chrono::seconds(60));
  std::vector<int> order;
  release2.count_down();
  auto it = range.begin();
  order.push_back(it->get());
  release0.count_down();
  ++it;
  order.push_back(it->get());
  release1.count_down();
  ++it;
  order.push_back(it->get());
  ++it;
  EXPECT_TRUE(it == range.end());
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
}

TEST_P(ComposeTest, AsCompletedYieldsAlreadyDoneFuturesFirstInInputOrder) {
  auto d3 = pool_.run([] { return 3; });
  auto d1 = pool_.run([] { return 1; });
  d3.wait();
  d1.wait();
  std::latch release2{1};
  std::latch release0{1};
  auto g2 = pool_.run([&release2] {
    release2.wait();
    return 2;
  });
  auto g0 = pool_.run([&release0] {
    release0.wait();
    return 0;
  });
  std::vector<future<int>> fs{g0, d1, g2, d3};
  std::vector<int> order;
  for (const auto& f : background::as_completed(fs)) {
    order.push_back(f.get());
    if (order.size() == 2) release2.count_down();
    if (order.size() == 3) release0.count_down();
  }
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2, 0}));
}

TEST_P(ComposeTest, AsCompletedBeginCalledAgainDoesNotMoveOn) {
  auto fs = squares_on(pool_, 3);
  background::wait_all(fs);
  auto range = background::as_completed(fs);
  auto first = range.begin();
  const int value = first->get();
  auto again = range.begin();  // only the first call waits for (and takes) a future
  EXPECT_EQ(again->get(), value);
  std::size_t rest = 0;
  for (++again; !(again == range.end()); ++again) ++rest;
  EXPECT_EQ(rest, 2u);
}

TEST_P(ComposeTest, AsCompletedYieldsEveryFutureExactlyOnce) {
  constexpr int count = 1000;
  std::vector<future<int>> fs;
  for (int i = 0; i < count; ++i) {
    fs.push_back(pool_.run([i] { return i; }));
    if (i % 37 == 0) fs.back().wait();
  }
  std::vector<int> seen(count, 0);
  std::size_t yielded = 0;
  for (const auto& f : background::as_completed(fs)) {
    ++yielded;
    ++seen[static_cast<std::size_t>(f.get())];
  }
  EXPECT_EQ(yielded, std::size_t{count});
  for (int i = 0; i < count; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1) << "at " << i;
}

TEST_P(ComposeTest, AsCompletedOverManyFutures) {
  // Linear in N: 100,000 futures would take minutes if it were quadratic.
  constexpr int count = 100000;
  std::vector<future<int>> fs;
  fs.reserve(count);
  for (int i = 0; i < count; ++i) fs.push_back(pool_.run([i] { return i; }));
  long long sum = 0;
  std::size_t yielded = 0;
  for (const auto& f : background::as_completed(fs)) {
    sum += f.get();
    ++yielded;
  }
  EXPECT_EQ(yielded, std::size_t{count});
  EXPECT_EQ(sum, static_cast<long long>(count) * (count - 1) / 2);
}

TEST(ComposeAsCompletedTest, EmptyRangeIsEmpty) {
  std::vector<future<int>> none;
  auto range = background::as_completed(none);
  EXPECT_EQ(range.size(), 0u);
  EXPECT_TRUE(range.begin() == range.end());
  auto timed = background::as_completed(none, 0s);
  EXPECT_TRUE(timed.begin() == timed.end());
  int iterations = 0;
  for (const auto& f : background::as_completed(none)) {
    (void)f;
    ++iterations;
  }
  EXPECT_EQ(iterations, 0);
}

TEST(ComposeAsCompletedTest, IsAnInputRange) {
  using range = decltype(background::as_completed(std::declval<std::vector<future<int>>&>()));
  static_assert(std::ranges::input_range<range>);
  static_assert(std::is_same_v<std::ranges::range_value_t<range>, future<int>>);
}

TEST_P(ComposeTest, AsCompletedYieldsFailedAndCancelledInputsToo) {
  held_pool held;
  auto failing = pool_.run([]() -> int { throw std::runtime_error("x"); });
  auto queued = held.pool().run([] { return 1; });
  ASSERT_TRUE(queued.cancel());
  std::vector<future<int>> fs{failing, queued, pool_.run([] { return 2; })};
  int failed = 0;
  int cancelled = 0;
  int values = 0;
  for (const auto& f : background::as_completed(fs)) {
    try {
      f.get();
      ++values;
    } catch (const background::cancelled&) {
      ++cancelled;
    } catch (const std::runtime_error&) {
      ++failed;
    }
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(values, 1);
}

TEST_P(ComposeTest, AsCompletedWithATimeoutThrowsWhenAnInputIsStuck) {
  auto done = pool_.run([] { return 0; });
  done.wait();
  std::latch release{1};
  auto stuck = pool_.run([&release] {
    release.wait();
    return 1;
  });
  std::vector<future<int>> fs{done, stuck};
  auto range = background::as_completed(fs, 20ms);
  auto it = range.begin();
  ASSERT_FALSE(it == range.end());
  EXPECT_EQ(it->get(), 0);
  EXPECT_THROW(++it, background::timeout_error);
  release.count_down();
  stuck.wait();
}

TEST_P(ComposeTest, AsCompletedWithATimeoutThrowsFromBeginWhenNothingIsDone) {
  std::latch release{1};
  auto stuck = pool_.run([&release] {
    release.wait();
    return 1;
  });
  std::vector<future<int>> fs{stuck};
  auto range = background::as_completed(fs, 1ms);
  try {
    (void)range.begin();
    ADD_FAILURE() << "begin() did not throw";
  } catch (const std::runtime_error& e) {  // timeout_error derives from it
    EXPECT_NE(dynamic_cast<const background::timeout_error*>(&e), nullptr);
  }
  release.count_down();
  stuck.wait();
}

TEST_P(ComposeTest, AsCompletedWithATimeoutYieldsWhatFinishesInTime) {
  auto fs = squares_on(pool_, 50);
  std::multiset<int> seen;
  for (const auto& f : background::as_completed(fs, 60s)) seen.insert(f.get());
  const auto expected = squares(50);
  EXPECT_EQ(seen, std::multiset<int>(expected.begin(), expected.end()));
  // Past the deadline, futures already done are still yielded.
  background::wait_all(fs);
  std::size_t yielded = 0;
  for (const auto& f : background::as_completed(fs, 0s)) {
    (void)f;
    ++yielded;
  }
  EXPECT_EQ(yielded, 50u);
}

TEST_P(ComposeTest, AsCompletedOverAnRvalueAndASpan) {
  std::vector<int> from_rvalue;
  for (const auto& f : background::as_completed(squares_on(pool_, 5))) from_rvalue.push_back(f.get());
  std::sort(from_rvalue.begin(), from_rvalue.end());
  EXPECT_EQ(from_rvalue, squares(5));
  auto fs = squares_on(pool_, 5);
  std::vector<int> from_span;
  for (const auto& f : background::as_completed(std::span(fs))) from_span.push_back(f.get());
  std::sort(from_span.begin(), from_span.end());
  EXPECT_EQ(from_span, squares(5));
}

// ---------------------------------------------------------------------------------------------
// Nested use: every blocking verb, called from a task, with the inputs on the same pool. At
// n = 1 the inputs can only run if the waiting worker runs them.

TEST_P(ComposeTest, NestedWhenAllGetOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    return background::when_all(squares_on(p, 20)).get();
  });
  ASSERT_TRUE(r.has_value()) << "when_all(...).get() in a task deadlocked";
  EXPECT_EQ(*r, squares(20));
}

TEST_P(ComposeTest, NestedWhenAllOfVoidAndTupleOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    std::atomic<int> ran{0};
    std::vector<future<void>> vs;
    for (int i = 0; i < 10; ++i) vs.push_back(p.run([&ran] { ++ran; }));
    background::when_all(vs).get();
    auto [a, b, c] = background::when_all(p.run([] { return 1; }), p.run([] { return 2; }),
                                          p.run([] {}))
                         .get();
    (void)c;
    return ran.load() + a + b;
  });
  ASSERT_TRUE(r.has_value()) << "when_all(...).get() in a task deadlocked";
  EXPECT_EQ(*r, 13);
}

TEST_P(ComposeTest, NestedWhenAnyGetOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    auto fs = squares_on(p, 10);
    const std::size_t i = background::when_any(fs).get();
    const bool winner_done = i < fs.size() && fs[i].done();
    background::wait_all(fs);
    return winner_done;
  });
  ASSERT_TRUE(r.has_value()) << "when_any(...).get() in a task deadlocked";
  EXPECT_TRUE(*r);
}

TEST_P(ComposeTest, NestedWaitAllOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    auto fs = squares_on(p, 20);
    background::wait_all(fs);
    int sum = 0;
    for (const auto& f : fs) sum += f.get();
    return sum;
  });
  ASSERT_TRUE(r.has_value()) << "wait_all() in a task deadlocked";
  EXPECT_EQ(*r, 2470);
}

TEST_P(ComposeTest, NestedWaitAnyOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    auto fs = squares_on(p, 10);
    const std::size_t i = background::wait_any(fs);
    const bool winner_done = i < fs.size() && fs[i].done();
    background::wait_all(fs);
    return winner_done;
  });
  ASSERT_TRUE(r.has_value()) << "wait_any() in a task deadlocked";
  EXPECT_TRUE(*r);
}

TEST_P(ComposeTest, NestedAsCompletedOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    auto fs = squares_on(p, 100);
    std::vector<int> values;
    for (const auto& f : background::as_completed(fs)) values.push_back(f.get());
    std::sort(values.begin(), values.end());
    return values;
  });
  ASSERT_TRUE(r.has_value()) << "as_completed() iteration in a task deadlocked";
  EXPECT_EQ(*r, squares(100));
}

TEST_P(ComposeTest, NestedVerbsOverThenChains) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    const auto chains = [&p] {
      std::vector<future<int>> fs;
      for (int i = 0; i < 8; ++i) {
        fs.push_back(p.run([i] { return i; }).then([](int x) { return x + 1; }).then([](int x) {
          return x * 10;
        }));
      }
      return fs;
    };
    int total = 0;
    for (int x : background::when_all(chains()).get()) total += x;  // 360
    auto any_inputs = chains();
    total += background::when_any(any_inputs).get() < 8 ? 1 : 0;
    background::wait_all(any_inputs);
    auto wait_inputs = chains();
    background::wait_all(wait_inputs);
    for (const auto& f : wait_inputs) total += f.get();  // 360
    auto wait_any_inputs = chains();
    total += background::wait_any(wait_any_inputs) < 8 ? 1 : 0;
    background::wait_all(wait_any_inputs);
    for (const auto& f : background::as_completed(chains())) total += f.get();  // 360
    return total;
  });
  ASSERT_TRUE(r.has_value()) << "a verb over then() chains deadlocked in a task";
  EXPECT_EQ(*r, 3 * 360 + 2);
}

TEST_P(ComposeTest, NestedWhenAllOfWhenAllsAndOfWhenAnys) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    std::vector<future<std::vector<int>>> alls{background::when_all(squares_on(p, 4)),
                                               background::when_all(squares_on(p, 4))};
    int total = 0;
    for (const auto& v : background::when_all(alls).get()) total += static_cast<int>(v.size());
    auto a = squares_on(p, 3);
    auto b = squares_on(p, 3);
    std::vector<future<std::size_t>> anys{background::when_any(a), background::when_any(b)};
    for (std::size_t i : background::when_all(anys).get()) total += i < 3 ? 1 : 0;
    background::wait_all(a);
    background::wait_all(b);
    return total;
  });
  ASSERT_TRUE(r.has_value()) << "when_all() of composed futures deadlocked in a task";
  EXPECT_EQ(*r, 10);
}

TEST_P(ComposeTest, NestedTwoLevelsDeep) {
  // Each inner task waits for inner tasks of its own, all on one pool.
  auto r = run_nested(GetParam(), [](background::pool& p) {
    std::vector<future<int>> mids;
    for (int i = 0; i < 4; ++i) {
      mids.push_back(p.run([&p] {
        auto leaves = squares_on(p, 5);
        int sum = 0;
        for (const auto& f : background::as_completed(leaves)) sum += f.get();
        return sum + static_cast<int>(background::when_all(squares_on(p, 3)).get().size());
      }));
    }
    int total = 0;
    for (int x : background::when_all(mids).get()) total += x;
    return total;
  });
  ASSERT_TRUE(r.has_value()) << "nested verbs two levels deep deadlocked";
  EXPECT_EQ(*r, 4 * (30 + 3));
}

// The end of the tests below: waits up to 30 s for `outer`, the task under test on pool `p`, then
// calls `unblock` (which ends whatever the test blocked) and waits up to 30 s more. Returns
// whether `outer` finished in the first wait. If it is stuck even then, `p` is leaked (its worker
// never comes back), so that the test fails instead of hanging.
template <class Unblock>
bool finished_in_time(std::unique_ptr<background::pool>& p, const future<void>& outer,
                      Unblock unblock) {
  const bool finished = outer.wait_for(30s);
  unblock();
  if (!outer.wait_for(30s)) {
    (void)p.release();
    return false;
  }
  outer.get();
  p->wait();
  return finished;
}

// An input already running on another pool, blocked until a later input of the same call has
// run: the later one is queued on the waiting worker's own pool of one, so only the waiter can
// run it. A verb that waits for "any" or "all" of them must run it (it is an input no worker
// has started), or it deadlocks.
// With `continuation`, the first input is a then() continuation of that task: pending, so that
// the waiter's walk up the chain of antecedents ends at a task running elsewhere.
template <class Verb>
bool finishes_with_a_blocked_first_input(Verb verb, bool continuation = false) {
  background::pool other{1};
  std::counting_semaphore<> go{0};
  std::latch started{1};
  auto first = other.run([&] {
    started.count_down();
    go.acquire();
    return 0;
  });
  started.wait();
  if (continuation) first = first.then([](int x) { return x; });
  auto owned = std::make_unique<background::pool>(1);
  background::pool& p = *owned;
  auto outer = p.run([&p, &go, first, verb] {
    std::vector<future<int>> fs{first, p.run([&go] {
                                  go.release();
                                  return 1;
                                })};
    verb(fs);
  });
  return finished_in_time(owned, outer, [&go] { go.release(); });
}

// As above, with many inputs running elsewhere before the one to run: 100 tasks of a pool of 100,
// all blocked until the last input, queued on the waiter's own pool of one, has run.
constexpr int many_blocked = 100;

// With `continuations`, each of those inputs is a then() continuation of such a task instead:
// pending, not running, until its antecedent has finished.
template <class Verb>
bool finishes_with_many_blocked_inputs_first(Verb verb, bool continuations = false) {
  constexpr int blocked = many_blocked;
  background::pool other{static_cast<std::size_t>(blocked)};
  std::counting_semaphore<> go{0};
  std::latch started{blocked};
  std::vector<future<int>> fs;
  for (int i = 0; i < blocked; ++i) {
    fs.push_back(other.run([&go, &started, i] {
      started.count_down();
      go.acquire();
      return i;
    }));
    if (continuations) fs.back() = fs.back().then([](int x) { return x; });
  }
  started.wait();
  auto owned = std::make_unique<background::pool>(1);
  background::pool& p = *owned;
  auto outer = p.run([&p, &go, fs, verb]() mutable {
    fs.push_back(p.run([&go] {
      go.release(many_blocked);
      return many_blocked;
    }));
    verb(fs);
  });
  return finished_in_time(owned, outer, [&go] { go.release(many_blocked); });
}

// As above, but the later input is a continuation that becomes queued on the waiter's pool only
// after the waiter has looked at it and found nothing to run (its antecedent was still running
// on a third pool): the waiter must still come to run it.
template <class Verb>
bool finishes_when_a_later_input_is_queued_while_it_waits(Verb verb) {
  background::pool other{1};
  background::pool third{1};
  std::counting_semaphore<> go{0};
  std::latch started{1};
  std::latch waiting{1};
  std::latch release_antecedent{1};
  auto first = other.run([&] {
    started.count_down();
    go.acquire();
    return 0;
  });
  started.wait();
  auto antecedent = third.run([&release_antecedent] { release_antecedent.wait(); });
  auto owned = std::make_unique<background::pool>(1);
  background::pool& p = *owned;
  auto later = antecedent.then(p, [&go] {
    go.release();
    return 1;
  });
  auto outer = p.run([&waiting, first, later, verb] {
    std::vector<future<int>> fs{first, later};
    waiting.count_down();
    verb(fs);
  });
  waiting.wait();
  // Not synchronisation: the test is right either way. It gives the waiter time to look at the
  // inputs and fall asleep before the continuation is queued, which is the case under test.
  std::this_thread::sleep_for(20ms);
  release_antecedent.count_down();
  return finished_in_time(owned, outer, [&go] { go.release(); });
}

// A coroutine that moves to `elsewhere`, runs there until `go_on` opens, then awaits a task it
// submits to `p` (which releases `go`): it is running when a waiter first looks at it, and only
// later suspended on a task queued on the waiter's own pool.
background::future<int> runs_elsewhere_then_awaits(background::pool& elsewhere,
                                                   background::pool& p, std::latch& entered,
                                                   std::latch& go_on,
                                                   std::counting_semaphore<>& go) {
  co_await background::resume_on(elsewhere);
  entered.count_down();
  go_on.wait();
  auto release = [&go] {
    go.release();
    return 1;
  };
  future<int> step = p.run(release);
  const int v = co_await step;
  co_return v;
}

// The first input runs on another pool until a task queued on the waiter's pool of one has run;
// that task is what the second input, a coroutine seen running before, comes to await.
template <class Verb>
bool finishes_when_a_coroutine_input_suspends_later(Verb verb) {
  background::pool other{1};
  background::pool elsewhere{1};
  std::counting_semaphore<> go{0};
  std::latch started{1};
  std::latch entered{1};
  std::latch go_on{1};
  std::latch waiting{1};
  auto first = other.run([&] {
    started.count_down();
    go.acquire();
    return 0;
  });
  started.wait();
  auto owned = std::make_unique<background::pool>(1);
  background::pool& p = *owned;
  future<int> coro = runs_elsewhere_then_awaits(elsewhere, p, entered, go_on, go);
  entered.wait();
  auto outer = p.run([&waiting, first, coro, verb] {
    std::vector<future<int>> fs{first, coro};
    waiting.count_down();
    verb(fs);
  });
  waiting.wait();
  // Not synchronisation: the test is right either way. It gives the waiter time to look at the
  // inputs while both are running, which is the case under test.
  std::this_thread::sleep_for(20ms);
  go_on.count_down();
  return finished_in_time(owned, outer, [&go] { go.release(); });
}

// A way to wait, on a worker, for "any" or "all" of a list of inputs: the verbs that the tests
// below run on a pool's own worker, each of which must run an input it waits for that no worker
// has started, rather than sleep on it.
struct waiting_verb {
  const char* name;   // the test's name suffix
  const char* label;  // how a failure names it
  void (*wait)(const std::vector<future<int>>&);
};

const waiting_verb waiting_verbs[] = {
    {"WhenAny", "when_any(...).get()",
     [](const std::vector<future<int>>& fs) { (void)background::when_any(fs).get(); }},
    {"WaitAny", "wait_any()",
     [](const std::vector<future<int>>& fs) { (void)background::wait_any(fs); }},
    {"WaitAll", "wait_all()", [](const std::vector<future<int>>& fs) { background::wait_all(fs); }},
    {"WhenAll", "when_all(...).get()",
     [](const std::vector<future<int>>& fs) { (void)background::when_all(fs).get(); }},
    {"AsCompleted", "as_completed()",
     [](const std::vector<future<int>>& fs) {
       for (const auto& f : background::as_completed(fs)) (void)f;
     }},
};

// How gtest prints a verb in the test list and in failures.
void PrintTo(const waiting_verb& v, std::ostream* os) { *os << v.label; }

class ComposeWaiterTest : public ::testing::TestWithParam<waiting_verb> {
 protected:
  static auto verb() { return GetParam().wait; }
  static std::string label() { return GetParam().label; }
};

INSTANTIATE_TEST_SUITE_P(Verbs, ComposeWaiterTest, ::testing::ValuesIn(waiting_verbs),
                         [](const auto& p) { return std::string(p.param.name); });

TEST_P(ComposeWaiterTest, RunsAQueuedInputWhileAnEarlierOneRunsElsewhere) {
  EXPECT_TRUE(finishes_with_a_blocked_first_input(verb()))
      << label() << " on a worker slept instead of running a queued input";
}

TEST_P(ComposeWaiterTest, RunsAQueuedInputWhileAnEarlierOneIsAPendingContinuation) {
  EXPECT_TRUE(finishes_with_a_blocked_first_input(verb(), true))
      << label() << " on a worker slept on a pending input instead of running another";
}

TEST_P(ComposeWaiterTest, RunsAQueuedInputBehindManyRunningElsewhere) {
  EXPECT_TRUE(finishes_with_many_blocked_inputs_first(verb()))
      << label() << " on a worker did not run the queued input after 100 running ones";
}

TEST_P(ComposeWaiterTest, RunsAQueuedInputBehindManyPendingContinuations) {
  EXPECT_TRUE(finishes_with_many_blocked_inputs_first(verb(), true))
      << label() << " on a worker did not run the queued input after 100 pending ones";
}

TEST_P(ComposeWaiterTest, RunsAnInputQueuedWhileItSleeps) {
  EXPECT_TRUE(finishes_when_a_later_input_is_queued_while_it_waits(verb()))
      << label() << " on a worker slept through an input becoming queued on its pool";
}

TEST_P(ComposeWaiterTest, RunsWhatACoroutineInputAwaitsAfterItWasSeenRunning) {
  EXPECT_TRUE(finishes_when_a_coroutine_input_suspends_later(verb()))
      << label() << " on a worker never ran what a coroutine input came to await";
}

// ---------------------------------------------------------------------------------------------
// Memory and races

TEST_P(ComposeTest, ComposedFuturesLetGoOfTheirInputs) {
  ASSERT_EQ(counted::live, 0);
  {
    std::latch release{1};
    std::vector<future<counted>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(pool_.run([i] { return counted(i); }));
    fs.push_back(pool_.run([&release] {
      release.wait();
      return counted(20);
    }));
    auto all = background::when_all(fs);
    auto any = background::when_any(fs);
    auto pair = background::when_all(fs[0], fs[20]);
    auto range = background::as_completed(fs);
    release.count_down();
    EXPECT_EQ(all.get().size(), 21u);
    EXPECT_LT(any.get(), 21u);
    EXPECT_EQ(std::get<1>(pair.get()).value, 20);
    std::size_t yielded = 0;
    for (const auto& f : range) yielded += f.done() ? 1u : 0u;
    EXPECT_EQ(yielded, 21u);
  }
  pool_.wait();
  EXPECT_EQ(counted::live, 0) << "a composed future kept its inputs (or values) alive";
}

TEST(ComposeMemoryTest, CancelledComposedFuturesLetGoOfTheirInputs) {
  ASSERT_EQ(counted::live, 0);
  {
    held_pool held;
    std::vector<future<counted>> fs{held.pool().run([] { return counted(1); }),
                                    held.pool().run([] { return counted(2); })};
    auto all = background::when_all(fs);
    auto any = background::when_any(fs);
    EXPECT_TRUE(all.cancel());
    EXPECT_TRUE(any.cancel());
    held.release();
    background::wait_all(fs);
    held.pool().wait();
  }
  EXPECT_EQ(counted::live, 0);
}

TEST_P(ComposeTest, CancellingWhileInputsFinishKeepsTheRules) {
  // cancel() on when_all() and when_any() races with the inputs finishing on the workers.
  ASSERT_EQ(counted::live, 0);
  for (int round = 0; round < 300; ++round) {
    std::vector<future<counted>> fs;
    for (int i = 0; i < 4; ++i) fs.push_back(pool_.run([i] { return counted(i); }));
    auto all = background::when_all(fs);
    auto any = background::when_any(fs);
    const bool all_cancelled = all.cancel();
    const bool any_cancelled = any.cancel();
    background::wait_all(fs);
    if (all_cancelled) {
      ASSERT_THROW(all.get(), background::cancelled);
    } else {
      const auto& v = all.get();
      ASSERT_EQ(v.size(), 4u);
      for (int i = 0; i < 4; ++i) ASSERT_EQ(v[static_cast<std::size_t>(i)].value, i);
    }
    if (any_cancelled) {
      ASSERT_THROW(any.get(), background::cancelled);
    } else {
      ASSERT_LT(any.get(), 4u);
    }
  }
  pool_.wait();
  EXPECT_EQ(counted::live, 0);
}

TEST_P(ComposeTest, ManyThreadsComposeTheSameFutures) {
  // Several threads call every verb on copies of the same futures while they finish.
  std::latch start{5};
  std::vector<future<int>> fs;
  for (int i = 0; i < 64; ++i) {
    fs.push_back(pool_.run([&start, i] {
      if (i == 0) start.arrive_and_wait();
      return i;
    }));
  }
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int r = 0; r < 20; ++r) {
        switch ((t + r) % 4) {
          case 0:
            if (background::when_all(fs).get().size() != 64) ++wrong;
            break;
          case 1:
            if (!fs[background::when_any(fs).get()].done()) ++wrong;
            break;
          case 2: {
            int n = 0;
            for (const auto& f : background::as_completed(fs)) n += f.done() ? 1 : 0;
            if (n != 64) ++wrong;
            break;
          }
          default:
            background::wait_all(fs);
            if (!fs[background::wait_any(fs)].done()) ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

// ---------------------------------------------------------------------------------------------
// No exception is lost, none is reported twice.

TEST_P(ComposeTest, WhenAllCarriesOneExceptionAndTheOtherIsReportedOnce) {
  error_log log;
  {
    auto second = pool_.run([]() -> int { throw std::runtime_error("second"); });
    second.wait();
    std::latch release{1};
    auto first = pool_.run([&release]() -> int {
      release.wait();
      throw std::runtime_error("first");
    });
    std::vector<future<int>> fs{first, second};
    auto all = background::when_all(fs);
    release.count_down();
    EXPECT_EQ(thrown_by(all), "first");
    pool_.wait();
    EXPECT_TRUE(log.messages().empty());  // "second" still has its futures
  }
  pool_.wait();
  EXPECT_EQ(log.messages(), std::vector<std::string>{"second"});
}

TEST_P(ComposeTest, WhenAllFailureCarriedAndObservedIsNotReported) {
  error_log log;
  {
    std::vector<future<int>> fs{pool_.run([] { return 1; }),
                                pool_.run([]() -> int { throw std::runtime_error("carried"); })};
    auto all = background::when_all(fs);
    EXPECT_EQ(thrown_by(all), "carried");
  }
  {
    // The input futures dropped first, before the when_all future is observed.
    future<std::vector<int>> all;
    {
      std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("c2"); })};
      all = background::when_all(fs);
    }
    EXPECT_EQ(thrown_by(all), "c2");
  }
  {
    auto t = background::when_all(pool_.run([]() -> int { throw std::runtime_error("t"); }),
                                  pool_.run([] {}));
    EXPECT_EQ(thrown_by(t), "t");
  }
  pool_.wait();
  EXPECT_TRUE(log.messages().empty());
}

TEST_P(ComposeTest, WhenAllFailureNobodyObservesIsReportedOnce) {
  error_log log;
  {
    std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("lost"); })};
    auto all = background::when_all(fs);
    all.wait();
  }
  pool_.wait();
  EXPECT_EQ(log.messages(), std::vector<std::string>{"lost"});
}

TEST_P(ComposeTest, WhenAllOfTwoFailuresNobodyObservesReportsEachOnce) {
  error_log log;
  {
    std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("a"); }),
                                pool_.run([]() -> int { throw std::runtime_error("b"); })};
    background::when_all(fs).wait();
  }
  pool_.wait();
  auto messages = log.messages();
  std::sort(messages.begin(), messages.end());
  EXPECT_EQ(messages, (std::vector<std::string>{"a", "b"}));
}

TEST(ComposeErrorTest, CancelledWhenAllLeavesTheInputsExceptionToBeReported) {
  error_log log;
  {
    held_pool held;
    std::vector<future<int>> fs{
        held.pool().run([]() -> int { throw std::runtime_error("input"); })};
    auto all = background::when_all(fs);
    ASSERT_TRUE(all.cancel());
    held.release();
    fs[0].wait();
    held.pool().wait();
  }
  EXPECT_EQ(log.messages(), std::vector<std::string>{"input"});
}

TEST_P(ComposeTest, WhenAnyAndAsCompletedLeaveExceptionsWithTheirFutures) {
  error_log log;
  {
    std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("any"); })};
    EXPECT_EQ(background::when_any(fs).get(), 0u);
    EXPECT_EQ(background::wait_any(fs), 0u);
    for (const auto& f : background::as_completed(fs)) (void)f.done();
    pool_.wait();
    EXPECT_TRUE(log.messages().empty());
  }  // nobody observed it
  pool_.wait();
  EXPECT_EQ(log.messages(), std::vector<std::string>{"any"});
  {
    std::vector<future<int>> fs{pool_.run([]() -> int { throw std::runtime_error("seen"); })};
    for (const auto& f : background::as_completed(fs)) EXPECT_THROW(f.get(), std::runtime_error);
  }
  pool_.wait();
  EXPECT_EQ(log.messages(), std::vector<std::string>{"any"});
}

TEST_P(ComposeTest, WhenAnyOfFailingInputsDroppedAtOnceReportsEachOnce) {
  error_log log;
  std::latch release{1};
  {
    auto a = pool_.run([&release]() -> int {
      release.wait();
      throw std::runtime_error("late");
    });
    std::vector<future<int>> fs{a};
    (void)background::when_any(fs);  // dropped while its input still runs
  }
  release.count_down();
  pool_.wait();
  EXPECT_EQ(log.messages(), std::vector<std::string>{"late"});
}

}  // namespace
