// Tests for map.hpp: map() and for_each(), on the default pool and on a pool: results in input
// order for any size and chunk, every element called once, failures (the exception carried,
// later calls skipped, the others reported), the ranges it takes, and nested use at n = 1.
#include "background/map.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <latch>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
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

class MapTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  background::pool pool_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(PoolSizes, MapTest, ::testing::Values(1, 2, 4, 8, 64));

std::vector<int> iota_vector(std::size_t n) {
  std::vector<int> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<int>(i);
  return v;
}

std::vector<long long> expected_squares_plus_one(std::size_t n) {
  std::vector<long long> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<long long>(i) * static_cast<long long>(i) + 1;
  }
  return v;
}

constexpr std::size_t sizes[] = {0, 1, 7, 1000, 100000};

// ---------------------------------------------------------------------------------------------
// Results and calls

TEST_P(MapTest, ResultsComeInInputOrderForEverySizeWithTheDefaultChunk) {
  for (std::size_t n : sizes) {
    const auto xs = iota_vector(n);
    auto f = pool_.map([](int x) { return static_cast<long long>(x) * x + 1; }, xs);
    static_assert(std::is_same_v<decltype(f), future<std::vector<long long>>>);
    EXPECT_EQ(f.get(), expected_squares_plus_one(n)) << "n = " << n;
  }
}

TEST_P(MapTest, ResultsComeInInputOrderForEveryChunk) {
  for (std::size_t n : sizes) {
    const auto xs = iota_vector(n);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, n, n + 1, n + 5, 10 * n + 100}) {
      if (chunk == 0 || (n == 100000 && chunk == 1)) continue;
      auto f = pool_.map([](int x) { return static_cast<long long>(x) * x + 1; }, xs, chunk);
      ASSERT_EQ(f.get(), expected_squares_plus_one(n)) << "n = " << n << ", chunk = " << chunk;
    }
  }
}

TEST_P(MapTest, AChunkAsLargeAsSizeTCanHold) {
  const auto xs = iota_vector(10);
  const std::size_t huge = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(pool_.map([](int x) { return x; }, xs, huge).get(), xs);
  EXPECT_EQ(pool_.map([](int x) { return x; }, xs, huge - 1).get(), xs);
  EXPECT_EQ(pool_.map([](int x) { return x; }, std::vector<int>{}, huge).get(), std::vector<int>{});
}

TEST_P(MapTest, ForEachOverASpanCanChangeTheElementsInPlace) {
  auto xs = iota_vector(1000);
  pool_.for_each(std::span(xs), [](int& x) { x *= 2; }, 7).get();
  for (std::size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(xs[i], 2 * static_cast<int>(i));
}

TEST_P(MapTest, EveryElementIsCalledExactlyOnce) {
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{20000}}) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{3}, n + 5}) {
      std::vector<std::atomic<int>> calls(n);
      const auto xs = iota_vector(n);
      auto f = pool_.map(
          [&calls](int x) {
            calls[static_cast<std::size_t>(x)].fetch_add(1);
            return x;
          },
          xs, chunk);
      ASSERT_EQ(f.get().size(), n);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(calls[i].load(), 1) << "element " << i << ", n = " << n << ", chunk " << chunk;
      }
    }
  }
}

TEST_P(MapTest, ForEachCallsEveryElementExactlyOnce) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000},
                        std::size_t{100000}}) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{3}, n + 5}) {
      std::vector<std::atomic<int>> calls(n);
      const auto xs = iota_vector(n);
      future<void> f = pool_.for_each(
          xs, [&calls](int x) { calls[static_cast<std::size_t>(x)].fetch_add(1); }, chunk);
      f.get();
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(calls[i].load(), 1) << "element " << i << ", n = " << n << ", chunk " << chunk;
      }
    }
  }
}

TEST_P(MapTest, EmptyInputsGiveAnEmptyResultWithoutCalls) {
  std::atomic<int> calls{0};
  std::vector<int> none;
  auto f = pool_.map(
      [&calls](int x) {
        ++calls;
        return x;
      },
      none);
  EXPECT_TRUE(f.get().empty());
  pool_.for_each(none, [&calls](int) { ++calls; }).get();
  pool_.map([](int x) { return x; }, none, 1).get();
  EXPECT_EQ(calls, 0);
}

TEST_P(MapTest, CallsRunOnThePool) {
  const auto xs = iota_vector(200);
  auto where = pool_.map([](int) { return background::this_pool(); }, xs, 1).get();
  for (background::pool* p : where) ASSERT_EQ(p, &pool_);
  std::atomic<int> elsewhere{0};
  pool_.for_each(xs, [this, &elsewhere](int) {
         if (background::this_pool() != &pool_) ++elsewhere;
       }).get();
  EXPECT_EQ(elsewhere, 0);
}

TEST_P(MapTest, TheDefaultChunkMakesAFewTasksPerWorker) {
  // Four chunks a worker: a tiny function must not cost one task per element.
  background::pool p{GetParam()};
  const auto xs = iota_vector(100000);
  EXPECT_EQ(p.map([](int x) { return x; }, xs).get().size(), 100000u);
  p.wait();
  const std::uint64_t tasks = p.stats().completed;
  EXPECT_LE(tasks, 4 * GetParam() + 1) << "tasks run for 100,000 elements";
  EXPECT_GE(tasks, 2u);  // not all of it in one task
}

TEST_P(MapTest, ResultChainsWithThen) {
  const auto xs = iota_vector(100);
  auto sum = pool_.map([](int x) { return x; }, xs).then([](const std::vector<int>& v) {
    int s = 0;
    for (int x : v) s += x;
    return s;
  });
  EXPECT_EQ(sum.get(), 4950);
}

// ---------------------------------------------------------------------------------------------
// Failures

TEST_P(MapTest, FailsWithTheExceptionOfTheFailingCall) {
  const auto xs = iota_vector(1000);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{5000}}) {
    auto f = pool_.map(
        [](int x) {
          if (x == 500) throw std::runtime_error("element 500");
          return x;
        },
        xs, chunk);
    EXPECT_EQ(thrown_by(f), "element 500") << "chunk " << chunk;
    auto g = pool_.for_each(
        xs,
        [](int x) {
          if (x == 999) throw std::out_of_range("element 999");
        },
        chunk);
    EXPECT_THROW(g.get(), std::out_of_range) << "chunk " << chunk;
  }
}

TEST(MapFailureTest, CallsNotYetStartedAreSkippedAfterAFailure) {
  // One worker, held until every chunk is queued: the chunks then run one after the other.
  held_pool held;
  std::vector<std::atomic<int>> calls(10);
  const auto xs = iota_vector(10);
  auto f = held.pool().map(
      [&calls](int x) {
        calls[static_cast<std::size_t>(x)].fetch_add(1);
        if (x == 3) throw std::runtime_error("three");
        return x;
      },
      xs, 1);
  held.release();
  EXPECT_EQ(thrown_by(f), "three");
  held.pool().wait();
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(calls[i].load(), i <= 3 ? 1 : 0) << "element " << i;
  }
}

TEST(MapFailureTest, TheRestOfTheFailingChunkAndLaterChunksAreSkipped) {
  held_pool held;
  std::vector<std::atomic<int>> calls(12);
  const auto xs = iota_vector(12);
  auto f = held.pool().for_each(
      xs,
      [&calls](int x) {
        calls[static_cast<std::size_t>(x)].fetch_add(1);
        if (x == 5) throw std::runtime_error("five");
      },
      4);
  held.release();
  EXPECT_EQ(thrown_by(f), "five");
  held.pool().wait();
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(calls[i].load(), i <= 5 ? 1 : 0) << "element " << i;
  }
}

TEST(MapFailureTest, ACarriedExceptionIsNotAlsoReported) {
  error_log log;
  {
    held_pool held;
    const auto xs = iota_vector(10);
    auto f = held.pool().map(
        [](int x) {
          if (x == 3) throw std::runtime_error("three");
          return x;
        },
        xs, 1);
    held.release();
    EXPECT_EQ(thrown_by(f), "three");
    held.pool().wait();
  }
  EXPECT_TRUE(log.messages().empty());
}

TEST(MapFailureTest, AFailureOfACancelledResultIsReportedOnce) {
  // Nothing takes the exception over once the result's future is cancelled: it must still
  // reach the handler, once.
  error_log log;
  {
    held_pool held;
    auto f = held.pool().map(
        [](int x) {
          if (x == 2) throw std::runtime_error("two");
          return x;
        },
        iota_vector(5), 1);
    EXPECT_TRUE(f.cancel());
    held.release();
    held.pool().wait();
    EXPECT_THROW(f.get(), background::cancelled);
  }
  EXPECT_EQ(log.messages(), std::vector<std::string>{"two"});
}

TEST(MapFailureTest, AnUnobservedFailureIsReportedOnce) {
  error_log log;
  {
    background::pool p{2};
    const auto xs = iota_vector(10);
    (void)p.for_each(
        xs,
        [](int x) {
          if (x == 4) throw std::runtime_error("four");
        },
        1);
    p.wait();
  }
  EXPECT_EQ(log.messages(), std::vector<std::string>{"four"});
}

TEST_P(MapTest, ExceptionsOfCallsRunningMeanwhileAreReportedOnce) {
  if (GetParam() < 2) GTEST_SKIP() << "needs two calls running at once";
  error_log log;
  {
    std::latch both{2};
    const auto xs = iota_vector(2);
    auto f = pool_.map(
        [&both](int x) -> int {
          both.arrive_and_wait();  // both calls have started before either throws
          throw std::runtime_error(x == 0 ? "zero" : "one");
        },
        xs, 1);
    const std::string carried = thrown_by(f);
    EXPECT_TRUE(carried == "zero" || carried == "one") << carried;
    pool_.wait();
    EXPECT_EQ(log.messages(), std::vector<std::string>{carried == "zero" ? "one" : "zero"});
  }
}

// ---------------------------------------------------------------------------------------------
// The ranges it takes

// The numbers [first, last) read once: an input range that is not a forward range, like a
// stream (not std::views::istream: clang 14 cannot compile the views of libstdc++ 12).
class single_pass {
 public:
  single_pass(int first, int last) : next_(first), last_(last) {}
  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;
    iterator() = default;
    explicit iterator(single_pass* r) : r_(r) {}
    int operator*() const { return r_->next_; }
    iterator& operator++() {
      ++r_->next_;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return it.r_->at_end();
    }

   private:
    single_pass* r_ = nullptr;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const { return {}; }
  bool at_end() const { return next_ >= last_; }

 private:
  int next_;
  int last_;
};
static_assert(std::ranges::input_range<single_pass> && !std::ranges::forward_range<single_pass>);

TEST_P(MapTest, OverAList) {
  std::list<int> xs;
  for (int i = 0; i < 50; ++i) xs.push_back(i);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{100}}) {
    auto f = pool_.map([](int x) { return static_cast<long long>(x) * x + 1; }, xs, chunk);
    EXPECT_EQ(f.get(), expected_squares_plus_one(50)) << "chunk " << chunk;
  }
  std::atomic<int> sum{0};
  pool_.for_each(xs, [&sum](int x) { sum += x; }, 7).get();
  EXPECT_EQ(sum, 1225);
}

TEST_P(MapTest, OverAnRvalueVectorMovesItIn) {
  auto xs = iota_vector(100);
  std::vector<std::uintptr_t> addresses;
  for (const int& x : xs) addresses.push_back(reinterpret_cast<std::uintptr_t>(&x));
  auto f = pool_.map([](const int& x) { return reinterpret_cast<std::uintptr_t>(&x); },
                     std::move(xs), 7);
  EXPECT_EQ(f.get(), addresses);  // the same elements: moved, not copied
}

TEST_P(MapTest, OverASpanDoesNotCopyTheElements) {
  auto xs = iota_vector(100);
  std::vector<std::uintptr_t> addresses;
  for (const int& x : xs) addresses.push_back(reinterpret_cast<std::uintptr_t>(&x));
  auto f = pool_.map([](const int& x) { return reinterpret_cast<std::uintptr_t>(&x); },
                     std::span(xs), 3);
  EXPECT_EQ(f.get(), addresses);
  auto g = pool_.map([](const int& x) { return reinterpret_cast<std::uintptr_t>(&x); },
                     std::span<const int>(xs));
  EXPECT_EQ(g.get(), addresses);
}

TEST(MapRangeTest, AnLvalueContainerIsCopiedAtTheCall) {
  held_pool held;
  auto xs = iota_vector(20);
  auto f = held.pool().map([](int x) { return x; }, xs, 3);
  for (int& x : xs) x = -1;  // after the call, before any chunk runs
  held.release();
  EXPECT_EQ(f.get(), iota_vector(20));
}

TEST_P(MapTest, OverACArrayAndASinglePassRange) {
  const int array[5] = {1, 2, 3, 4, 5};
  EXPECT_EQ(pool_.map([](int x) { return 10 * x; }, array, 2).get(),
            (std::vector<int>{10, 20, 30, 40, 50}));
  single_pass numbers(7, 11);
  EXPECT_EQ(pool_.map([](int x) { return x + 1; }, numbers, 1).get(),
            (std::vector<int>{8, 9, 10, 11}));
  EXPECT_EQ(pool_.map([](int x) { return x; }, single_pass(0, 0)).get(), std::vector<int>{});
}

TEST_P(MapTest, OverMoveOnlyElements) {
  std::vector<std::unique_ptr<int>> xs;
  for (int i = 0; i < 20; ++i) xs.push_back(std::make_unique<int>(i));
  auto f = pool_.map([](const std::unique_ptr<int>& p) { return *p; }, std::move(xs), 3);
  EXPECT_EQ(f.get(), iota_vector(20));
}

// ---------------------------------------------------------------------------------------------
// Result types

TEST_P(MapTest, BoolResultsEvenWhenCallsRunAtOnce) {
  // vector<bool> packs its elements: results written in place from several threads would race.
  const auto xs = iota_vector(20000);
  auto f = pool_.map([](int x) { return x % 3 == 0; }, xs, 1);
  static_assert(std::is_same_v<decltype(f), future<std::vector<bool>>>);
  const std::vector<bool>& v = f.get();
  ASSERT_EQ(v.size(), xs.size());
  for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i % 3 == 0) << "at " << i;
}

struct labelled {
  explicit labelled(int v) : value(v) {}
  int value;
};

TEST_P(MapTest, NonDefaultConstructibleResults) {
  static_assert(!std::is_default_constructible_v<labelled>);
  const auto xs = iota_vector(1000);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
    auto v = pool_.map([](int x) { return labelled(x + 1); }, xs, chunk).get();
    ASSERT_EQ(v.size(), xs.size());
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i].value, static_cast<int>(i) + 1);
  }
}

TEST_P(MapTest, StringResults) {
  const auto xs = iota_vector(1000);
  auto v = pool_.map([](int x) { return "element number " + std::to_string(x) + " of many"; },
                     xs, 3)
               .get();
  ASSERT_EQ(v.size(), xs.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(v[i], "element number " + std::to_string(i) + " of many");
  }
}

TEST_P(MapTest, MoveOnlyResults) {
  const auto xs = iota_vector(100);
  auto v = pool_.map([](int x) { return std::make_unique<int>(x); }, xs, 9).get();
  ASSERT_EQ(v.size(), 100u);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_NE(v[i], nullptr);
    EXPECT_EQ(*v[i], static_cast<int>(i));
  }
}

TEST_P(MapTest, ResultsOfAFunctionReturningAReference) {
  const std::vector<std::string> names{"a", "bb", "ccc"};
  auto v = pool_.map([](const std::string& s) -> const std::string& { return s; }, names).get();
  static_assert(std::is_same_v<std::remove_cvref_t<decltype(v)>, std::vector<std::string>>);
  EXPECT_EQ(v, names);
}

// A counted value that is also default-constructible, so that map() builds its results in place
// (counted itself is not: map() keeps those in optionals). It shares counted's counters.
struct default_counted : counted {
  default_counted() noexcept : counted(0) {}
  explicit default_counted(int v) noexcept : counted(v) {}
};

// map() and for_each() over `T`s (a function returning `T`s), then checks nothing is left alive.
template <class T>
void lets_go_of_its_inputs_function_and_results(background::pool& pool) {
  ASSERT_EQ(counted::live, 0);
  {
    std::vector<T> xs;
    for (int i = 0; i < 100; ++i) xs.emplace_back(i);
    auto f = pool.map([c = T(-1)](const T& x) { return T(x.value + c.value); }, std::move(xs), 7);
    const auto& v = f.get();
    ASSERT_EQ(v.size(), 100u);
    EXPECT_EQ(v[5].value, 4);
    auto g = pool.for_each(std::vector<T>(10, T(1)), [](const T&) {});
    g.get();
  }
  pool.wait();
  EXPECT_EQ(counted::live, 0) << "map() kept its inputs, function or results alive";
}

TEST_P(MapTest, LetsGoOfItsInputsFunctionAndResults) {
  static_assert(!background::detail::store_in_place<counted>, "the results in optionals");
  lets_go_of_its_inputs_function_and_results<counted>(pool_);
}

TEST_P(MapTest, LetsGoOfItsInputsFunctionAndResultsBuiltInPlace) {
  static_assert(background::detail::store_in_place<default_counted>, "the results in place");
  lets_go_of_its_inputs_function_and_results<default_counted>(pool_);
}

// ---------------------------------------------------------------------------------------------
// The default pool

TEST(MapDefaultPoolTest, MapAndForEachOnTheDefaultPool) {
  const auto xs = iota_vector(10000);
  auto f = background::map([](int x) { return static_cast<long long>(x) * x + 1; }, xs);
  EXPECT_EQ(f.get(), expected_squares_plus_one(10000));
  EXPECT_EQ(background::map([](int x) { return static_cast<long long>(x) * x + 1; }, xs, 7).get(),
            expected_squares_plus_one(10000));
  std::vector<std::atomic<int>> calls(xs.size());
  background::for_each(xs, [&calls](int x) { calls[static_cast<std::size_t>(x)].fetch_add(1); })
      .get();
  for (std::size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << "at " << i;
  auto where = background::map([](int) { return background::this_pool(); }, xs, 100).get();
  for (background::pool* p : where) ASSERT_EQ(p, &background::default_pool());
  EXPECT_THROW(background::for_each(xs, [](int x) {
                 if (x == 10) throw std::invalid_argument("ten");
               }).get(),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Nested use: map() called from a task of the pool it maps on. At n = 1 the chunks can only run
// if the waiting worker runs them.

TEST_P(MapTest, NestedMapOnTheSamePool) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    const auto xs = iota_vector(1000);
    auto a = p.map([](int x) { return static_cast<long long>(x) * x + 1; }, xs).get();
    auto b = p.map([](int x) { return static_cast<long long>(x) * x + 1; }, xs, 1).get();
    std::atomic<int> calls{0};
    p.for_each(xs, [&calls](int) { ++calls; }, 3).get();
    return a == expected_squares_plus_one(1000) && b == a && calls == 1000;
  });
  ASSERT_TRUE(r.has_value()) << "map(...).get() in a task of its pool deadlocked";
  EXPECT_TRUE(*r);
}

TEST_P(MapTest, NestedMapInsideMap) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    const auto rows = iota_vector(8);
    auto sums = p.map(
                     [&p](int row) {
                       const auto xs = iota_vector(static_cast<std::size_t>(row) + 1);
                       int s = 0;
                       for (int x : p.map([](int x) { return x; }, xs, 1).get()) s += x;
                       return s;
                     },
                     rows, 1)
                    .get();
    return sums;
  });
  ASSERT_TRUE(r.has_value()) << "map() inside map() deadlocked";
  EXPECT_EQ(*r, (std::vector<int>{0, 1, 3, 6, 10, 15, 21, 28}));
}

TEST_P(MapTest, NestedMapThatFails) {
  auto r = run_nested(GetParam(), [](background::pool& p) {
    const auto xs = iota_vector(100);
    auto f = p.map(
        [](int x) {
          if (x == 50) throw std::runtime_error("fifty");
          return x;
        },
        xs, 1);
    return thrown_by(f);
  });
  ASSERT_TRUE(r.has_value()) << "a failing map(...).get() in a task deadlocked";
  EXPECT_EQ(*r, "fifty");
}

TEST(MapDefaultPoolTest, NestedOnTheDefaultPoolOfOne) {
  const std::size_t previous = background::n;
  background::n = 1;
  auto outer = background::run([] {
    const auto xs = iota_vector(500);
    auto v = background::map([](int x) { return x + 1; }, xs, 2).get();
    std::atomic<int> calls{0};
    background::for_each(xs, [&calls](int) { ++calls; }).get();
    return static_cast<int>(v.size()) + calls.load();
  });
  const bool finished = outer.wait_for(30s);
  ASSERT_TRUE(finished) << "map(...).get() in a task of the default pool of one deadlocked";
  EXPECT_EQ(outer.get(), 1000);
  background::n = previous;
}

}  // namespace
