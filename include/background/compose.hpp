/// @file
/// Waiting for several futures: when_all(), when_any(), wait_all(), wait_any() and
/// as_completed(), the verbs of Python's concurrent.futures (wait, as_completed) and of the
/// futures of other languages (all, any).
///
/// None of them blocks a pool thread while it waits for its inputs: when_all() and when_any()
/// return a future at once, and the blocking verbs (wait_all(), wait_any(), as_completed()'s
/// iteration), called from a task of any pool, run inputs that no worker has started yet on the
/// calling thread, as future::wait() does, so they are safe at n = 1. Inputs may come from any
/// pools.
///
/// **Example**:
///
/// ```
///   std::vector<background::future<int>> fs;
///   for (int i = 0; i < 10; ++i) fs.push_back(background::run([i] { return i * i; }));
///   std::vector<int> squares = background::when_all(fs).get();
///   for (const auto& f : background::as_completed(fs)) use(f.get());
/// ```
#ifndef BACKGROUND_COMPOSE_HPP
#define BACKGROUND_COMPOSE_HPP

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "background/detail/join_state.hpp"
#include "background/error.hpp"
#include "background/future.hpp"

namespace background {

namespace detail {

template <class T>
struct is_future : std::false_type {};
template <class T>
struct is_future<future<T>> : std::true_type {};

// A sized range of future<T>s, by value or reference (std::vector, std::span, a view...).
// clang-format off
template <class R>
concept future_range = std::ranges::input_range<R> && std::ranges::sized_range<R> &&
                       is_future<std::remove_cvref_t<std::ranges::range_reference_t<R>>>::value;
// clang-format on

template <class R>
using future_value_t = typename std::remove_cvref_t<std::ranges::range_reference_t<R>>::value_type;

// What a future<T> contributes to when_all(f1, f2, ...): its value, or std::monostate.
template <class T>
using value_or_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// A value out of a done input: a copy, or moved out if T cannot be copied.
template <class T>
T take_value(result_state<T>* s) {
  if constexpr (std::is_copy_constructible_v<T>) {
    return s->value();
  } else {
    return std::move(s->value());
  }
}

// The futures of `fs` (moved out of an rvalue container, copied otherwise), and their states.
template <class R>
auto collect(R&& fs) {
  using T = future_value_t<R>;
  std::vector<future<T>> held;
  held.reserve(std::ranges::size(fs));
  constexpr bool owned = !std::is_lvalue_reference_v<R> && !std::ranges::borrowed_range<R> &&
                         std::is_same_v<std::ranges::range_reference_t<R>, future<T>&>;
  for (auto&& f : fs) {
    if constexpr (owned) {
      held.push_back(std::move(f));
    } else {
      held.push_back(f);
    }
  }
  std::vector<task_base*> states;
  states.reserve(held.size());
  for (const future<T>& f : held) states.push_back(future_access::state(f));
  return std::pair{std::move(held), std::move(states)};
}

// `Values`: whether it delivers the values (when_all()) or only waits (wait_all()).
template <class T, bool Values = true>
class when_all_range_state final
    : public join_state<std::conditional_t<std::is_void_v<T> || !Values, void, std::vector<T>>> {
 public:
  when_all_range_state(std::vector<future<T>> held, std::vector<task_base*> states) noexcept
      : held_(std::move(held)), states_(std::move(states)) {}

 private:
  std::size_t count() const noexcept override { return states_.size(); }
  task_base* const* inputs() const noexcept override { return states_.data(); }
  std::uint32_t assemble() noexcept override {
    if constexpr (!Values) {
      return st_ready;  // wait_all(): only that all are done
    } else if (const std::uint32_t phase = this->first_failure(); phase != st_ready) {
      return phase;
    } else if constexpr (std::is_void_v<T>) {
      return st_ready;
    } else {
      return this->store([this] {
        std::vector<T> values;
        values.reserve(states_.size());
        for (task_base* s : states_) values.push_back(take_value(static_cast<result_state<T>*>(s)));
        return values;
      });
    }
  }
  std::vector<future<T>> held_;
  std::vector<task_base*> states_;
};

template <class... Ts>
class when_all_tuple_state final : public join_state<std::tuple<value_or_monostate<Ts>...>> {
 public:
  explicit when_all_tuple_state(future<Ts>... fs) : held_(std::move(fs)...) {
    std::apply(
        [this](const future<Ts>&... f) {
          std::size_t i = 0;
          ((states_[i++] = future_access::state(f)), ...);
        },
        held_);
  }

 private:
  std::size_t count() const noexcept override { return sizeof...(Ts); }
  task_base* const* inputs() const noexcept override { return states_; }
  std::uint32_t assemble() noexcept override {
    const std::uint32_t phase = this->first_failure();
    if (phase != st_ready) return phase;
    return this->store([this] {
      return std::apply(
          [](const future<Ts>&... fs) {
            return std::tuple<value_or_monostate<Ts>...>(value_of<Ts>(fs)...);
          },
          held_);
    });
  }

  template <class T>
  static value_or_monostate<T> value_of(const future<T>& f) {
    if constexpr (std::is_void_v<T>) {
      (void)f;
      return {};
    } else {
      return take_value(future_access::state(f));
    }
  }

  std::tuple<future<Ts>...> held_;
  task_base* states_[sizeof...(Ts)];
};

template <class State, class... A>
auto start_join(A&&... args) {
  auto* s = new State(std::forward<A>(args)...);
  using R = typename State::value_type;
  future<R> result = future_access::adopt<R>(s);
  s->start();
  return result;
}

// The range as_completed() returns.
template <class T>
class completed_range {
 public:
  completed_range(std::vector<future<T>> held, std::vector<task_base*> states,
                  std::optional<std::chrono::steady_clock::time_point> deadline)
      : held_(std::move(held)),
        queue_(completion_queue::make(states.data(), states.size())),
        deadline_(deadline) {}
  completed_range(completed_range&& other) noexcept
      : held_(std::move(other.held_)),
        queue_(std::exchange(other.queue_, nullptr)),
        deadline_(other.deadline_),
        position_(other.position_),
        current_(other.current_) {}
  completed_range(const completed_range&) = delete;
  completed_range& operator=(const completed_range&) = delete;
  completed_range& operator=(completed_range&&) = delete;
  ~completed_range() {
    if (queue_ != nullptr) queue_->release();
  }

  class iterator {
   public:
    using value_type = future<T>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;

    iterator() = default;
    const future<T>& operator*() const { return r_->held_[r_->current_]; }
    const future<T>* operator->() const { return &**this; }
    // Blocks until the next future is done (see as_completed()).
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.at_end();
    }

   private:
    bool at_end() const noexcept { return r_->position_ > r_->held_.size(); }
    friend class completed_range;
    explicit iterator(completed_range* r) noexcept : r_(r) {}
    completed_range* r_ = nullptr;
  };

  // Blocks until the first future is done, the first time it is called.
  iterator begin() {
    if (position_ == 0) advance();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }
  std::size_t size() const noexcept { return held_.size(); }

 private:
  void advance() {
    if (position_ < held_.size()) current_ = queue_->next(deadline_ ? &*deadline_ : nullptr);
    ++position_;
  }

  std::vector<future<T>> held_;
  completion_queue* queue_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::size_t position_ = 0;  // futures yielded so far, counting the current one; size()+1: end
  std::size_t current_ = 0;   // the index of the current one in held_
};

template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(
    const std::chrono::duration<Rep, Period>& timeout) {
  using steady = std::chrono::steady_clock;
  const auto now = steady::now();
  if (timeout <= timeout.zero()) return now;
  const auto rest = std::chrono::duration_cast<steady::duration>(
      std::chrono::duration<long double, std::nano>(timeout));
  if (rest >= steady::time_point::max() - now) return steady::time_point::max();
  return now + rest;
}

}  // namespace detail

// clang-format 14 mangles requires-clauses.
// clang-format off

// when_all()
//
/// A future that is ready once every future of `fs` is done, with their values in input order
/// (`future<std::vector<T>>`; for futures of void, `future<void>`). If any of them failed or was
/// cancelled, it fails with the exception of the first such one in input order (or is cancelled,
/// if that one was), still only once all are done. Never blocks. Values are copied, or moved out
/// if `T` cannot be copied (other copies of those futures must not read them then). Exceptions of
/// the other failed inputs stay with their own futures (reported to on_error() if nobody
/// observes them). The new future's continuations run on the pool of the input that finished
/// last; the futures of `fs` may come from any pools. An empty `fs` gives a future that is ready
/// at once. Throws std::future_error if one of `fs` is not valid(). The futures are copied from
/// `fs`, or moved out of it if it is an rvalue container (`when_all(std::move(fs))`).
///
/// **Example**:
///
/// ```
///   auto all = background::when_all(fs).then([](const std::vector<int>& v) { return sum(v); });
/// ```
template <class R>
  requires detail::future_range<R>
auto when_all(R&& fs) {
  using T = detail::future_value_t<R>;
  auto [held, states] = detail::collect(std::forward<R>(fs));
  return detail::start_join<detail::when_all_range_state<T>>(std::move(held), std::move(states));
}

// when_all(f1, f2, ...)
//
/// As when_all(fs), for futures of different types: a `future<std::tuple<T1, T2, ...>>`, where a
/// future<void> contributes std::monostate.
///
/// **Example**:
///
/// ```
///   auto [n, s] = background::when_all(run(count), run(name)).get();
/// ```
template <class... Ts>
  requires(sizeof...(Ts) > 0)
auto when_all(const future<Ts>&... fs) {
  return detail::start_join<detail::when_all_tuple_state<Ts...>>(fs...);
}

// when_any()
//
/// A future of the index, in `fs`, of the first future to finish, whatever its outcome (a value,
/// an exception, cancellation); if several are already done, the first of those in input order.
/// Never blocks. Throws std::invalid_argument if `fs` is empty.
template <class R>
  requires detail::future_range<R>
future<std::size_t> when_any(R&& fs) {
  if (std::ranges::size(fs) == 0) {
    throw std::invalid_argument("background::when_any: no futures to wait for");
  }
  auto [held, states] = detail::collect(std::forward<R>(fs));
  return detail::future_access::adopt<std::size_t>(detail::make_any(states.data(), states.size()));
}

// wait_all()
//
/// Blocks until every future of `fs` is done. On a pool's worker, it runs inputs that no worker
/// has started yet, as future::wait() does.
template <class R>
  requires detail::future_range<R>
void wait_all(R&& fs) {
  bool all_done = true;
  for (auto&& f : fs) {
    if (!f.done()) {
      all_done = false;
      break;
    }
  }
  if (all_done) return;
  // A join of them, without their values: waiting for it on a worker runs any input that no
  // worker has started, not only the first one not done.
  auto [held, states] = detail::collect(std::forward<R>(fs));
  using T = detail::future_value_t<R>;
  detail::start_join<detail::when_all_range_state<T, false>>(std::move(held), std::move(states))
      .wait();
}

// wait_all(fs, timeout)
//
/// Blocks until every future of `fs` is done or `timeout` has passed, measured from the call;
/// returns whether all are done. Runs no task on the calling thread.
template <class R, class Rep, class Period>
  requires detail::future_range<R>
bool wait_all(R&& fs, const std::chrono::duration<Rep, Period>& timeout) {
  const auto deadline = detail::deadline_after(timeout);
  for (auto&& f : fs) {
    if (!f.wait_until(deadline)) return false;
  }
  return true;
}

// wait_any(fs)
//
/// Blocks until at least one future of `fs` is done; returns the index of one that is (the first
/// done in input order, if several already are). On a pool's worker it runs an input that no
/// worker has started yet, as future::wait() does. Throws std::invalid_argument if `fs` is empty.
template <class R>
  requires detail::future_range<R>
std::size_t wait_any(R&& fs) {
  std::size_t i = 0;
  for (auto&& f : fs) {
    if (f.done()) return i;
    ++i;
  }
  return when_any(fs).get();
}

// wait_any(fs, timeout)
//
/// As wait_any(fs), but for at most `timeout`: the index of a finished future, or an empty
/// optional if none finished in time. Runs no task on the calling thread.
template <class R, class Rep, class Period>
  requires detail::future_range<R>
std::optional<std::size_t> wait_any(R&& fs, const std::chrono::duration<Rep, Period>& timeout) {
  std::size_t i = 0;
  for (auto&& f : fs) {
    if (f.done()) return i;
    ++i;
  }
  auto any = when_any(fs);
  if (!any.wait_for(timeout)) return std::nullopt;
  return any.get();
}

// as_completed()
//
/// An input range that yields copies of the futures of `fs` in the order they finish (those
/// already done first, in input order). "Finish" is the moment the finishing thread delivers the
/// outcome to the range, just after the future's done() turns true: a future seen done by
/// another thread may, for that moment, not be deliverable yet, and one that finishes
/// meanwhile may come first. `begin()` and `++` block until the next one is done; on
/// a pool's worker they run inputs that no worker has started yet meanwhile, as future::wait()
/// does. Costs O(N) in all for N futures. The range holds its own copies of the futures; iterate
/// it once, from one thread.
///
/// **Example**:
///
/// ```
///   for (const background::future<page>& f : background::as_completed(fetches)) show(f.get());
/// ```
template <class R>
  requires detail::future_range<R>
auto as_completed(R&& fs) {
  using T = detail::future_value_t<R>;
  auto [held, states] = detail::collect(std::forward<R>(fs));
  return detail::completed_range<T>(std::move(held), std::move(states), std::nullopt);
}

// as_completed(fs, timeout)
//
/// As as_completed(fs), but `begin()` or `++` throws timeout_error once `timeout`, measured from
/// this call, has passed with futures not yet yielded, as Python's as_completed() does. Its waits
/// run no task on the calling thread.
template <class R, class Rep, class Period>
  requires detail::future_range<R>
auto as_completed(R&& fs, const std::chrono::duration<Rep, Period>& timeout) {
  using T = detail::future_value_t<R>;
  const auto deadline = detail::deadline_after(timeout);
  auto [held, states] = detail::collect(std::forward<R>(fs));
  return detail::completed_range<T>(std::move(held), std::move(states), deadline);
}

// clang-format on

}  // namespace background

#endif  // BACKGROUND_COMPOSE_HPP
