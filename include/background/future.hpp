/// @file
/// future<T>: the handle that task(), run() and then() return.
///
/// A future refers to one task's shared state. Copies refer to the same task; the state is freed
/// when the task has finished and the last copy is gone. Dropping a future neither blocks nor
/// cancels: the task still runs (fire-and-forget). Every member is safe to call from any thread,
/// on the same future or on copies, including from inside tasks.
///
/// **Example**:
///
/// ```
///   background::future<int> f = background::run([] { return 6 * 7; });
///   f.then([](int v) { std::printf("%d\n", v); });
///   int v = f.get();  // 42
/// ```
#ifndef BACKGROUND_FUTURE_HPP
#define BACKGROUND_FUTURE_HPP

#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <type_traits>
#include <utility>

#include "background/detail/core.hpp"
#include "background/detail/task_state.hpp"
#include "background/error.hpp"

namespace background {

template <class T>
class future;
class pool;

namespace detail {

// The id that then(p, f) gives its continuation (task_base::target_pool_). Throws
// shutdown_error if `p` no longer takes tasks from this thread (as pool::run() would): whether
// then() throws must not depend on whether the antecedent's worker has finished settling it.
BACKGROUND_API std::uint64_t target_pool_id(const pool& p);

struct future_access {
  template <class T>
  static future<T> adopt(result_state<T>* s) noexcept {
    return future<T>(s);
  }
  // The state `f` refers to; throws std::future_error if it has none.
  template <class T>
  static result_state<T>* state(const future<T>& f) {
    return &f.state();
  }
};

template <class T>
struct get_result {
  using type = const T&;
};
template <>
struct get_result<void> {
  using type = void;
};

// The result type of then(f) on a future<T>: what f returns when given the value.
template <class T, class F, bool MoveValue>
struct then_result {
  using arg = std::conditional_t<MoveValue, T&&, const T&>;
  using type = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>, arg>>;
};
template <class F, bool MoveValue>
struct then_result<void, F, MoveValue> {
  using type = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>>>;
};

// Whether then(f) on a future<T> hands `f` the future itself, whatever the outcome: when `f`
// cannot take the value (nothing, for future<void>) but can take a future<T>.
template <class T, class F, bool MoveValue>
constexpr bool takes_future() {
  // Asked only if it cannot take the value: asking a generic lambda `[](auto v) { ... }` whether
  // it takes a future would instantiate its body with one, a hard error.
  using Fn = std::decay_t<F>;
  if constexpr (std::is_void_v<T>) {
    if constexpr (std::is_invocable_v<Fn>) {
      return false;
    } else {
      return std::is_invocable_v<Fn, future<T>>;
    }
  } else if constexpr (std::is_invocable_v<Fn, std::conditional_t<MoveValue, T&&, const T&>>) {
    return false;
  } else {
    return std::is_invocable_v<Fn, future<T>>;
  }
}

template <bool MoveValue, class T, class F>
auto make_continuation(result_state<T>* a, F&& f, std::uint64_t target_pool);

}  // namespace detail

// future
//
/// The handle to one task: its value or exception once it finishes. Copies refer to the same
/// task; dropping one neither blocks nor cancels (see future.hpp).
template <class T>
class future {
 public:
  /// The type of the task's value.
  using value_type = T;

  /// An empty future: valid() is false and every other member throws std::future_error.
  future() noexcept = default;
  /// @{
  // Copying and moving
  //
  /// Copies refer to the same task; a future moved from is empty (valid() is false).
  future(const future& other) noexcept : s_(other.s_) {
    if (s_ != nullptr) s_->retain_future();
  }
  future(future&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  future& operator=(future other) noexcept {
    std::swap(s_, other.s_);
    return *this;
  }
  /// @}

  /// Never blocks and never cancels: the task runs whether or not anyone keeps its future.
  ~future() {
    if (s_ != nullptr) s_->release_future();
  }

  // future::valid()
  //
  /// Whether this future refers to a task (false when default-constructed or moved from).
  bool valid() const noexcept { return s_ != nullptr; }

  // future::done()
  //
  /// Whether the task has finished: with a value, an exception, or by cancellation. Never blocks
  /// and never runs the task. Once it returns true, everything the task wrote is visible to the
  /// caller, as after get(). In a child process made by fork(), a task of the parent's is done,
  /// with `forked`.
  bool done() const {
    return detail::is_final(state().state_.load(std::memory_order_acquire)) ||
           detail::forked_done(&state());
  }

  // future::wait()
  //
  /// Blocks until done(). Called from a task of any pool, it runs the awaited task on the calling
  /// thread if no worker has started it yet (and does the same for the queued task that a then()
  /// continuation waits for), so a task can wait for tasks it started even when every worker is
  /// busy waiting: nested waits do not deadlock. It never runs unrelated tasks.
  void wait() const { detail::wait(&state(), nullptr); }

  // future::wait_for()
  //
  /// Blocks until done() or until `timeout` has passed; returns done(). A zero or negative
  /// timeout only polls. Never runs the task on the calling thread.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) const {
    using steady = std::chrono::steady_clock;
    if (timeout <= timeout.zero()) return done();
    const auto now = steady::now();
    const auto rest = std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<long double, std::nano>(timeout));
    auto deadline = steady::time_point::max();
    if (rest < steady::time_point::max() - now) deadline = now + rest + steady::duration{1};
    return detail::wait(&state(), &deadline);
  }

  // future::wait_until()
  //
  /// Blocks until done() or until `deadline` on `Clock`; returns done(). Never runs the task on
  /// the calling thread.
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) const {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
      const auto d = std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline);
      return detail::wait(&state(), &d);
    } else {
      // Another clock may jump: wait in steps measured on it, as the standard's futures do.
      for (;;) {
        const auto now = Clock::now();
        if (now >= deadline) return done();
        if (wait_for(deadline - now)) return true;
      }
    }
  }

  // future::exception()
  //
  /// Waits as wait() does, then returns the task's exception, a `cancelled` exception if it was
  /// cancelled, or null if it succeeded. Counts as observing the exception (see on_error()).
  std::exception_ptr exception() const {
    wait();
    s_->observed_.store(true, std::memory_order_relaxed);  // published by release_future()
    switch (s_->phase()) {
      case detail::st_failed:
        return s_->error_;
      case detail::st_cancelled:
        return std::make_exception_ptr(cancelled{});
      default:
        return nullptr;
    }
  }

  // future::cancel()
  //
  /// Cancels the task if it has not started: returns true if it now never will run, false if it
  /// is running or has finished. A cancelled task's get() throws `cancelled`, its continuations
  /// are cancelled too (except those that take the future, which run), and callbacks see it as
  /// cancelled. If the task is running and its callable takes a std::stop_token, stop is
  /// requested on that token (it still returns false: the task has started, and finishes as it
  /// decides). Never blocks. A coroutine's future can be cancelled until its body starts.
  bool cancel() const {
    if (detail::cancel(&state())) return true;
    s_->request_stop();
    return false;
  }

  /// @{
  // future::get()
  //
  /// Waits as wait() does, then returns the task's value, rethrows its exception, or throws
  /// `cancelled`. On an lvalue it returns a reference to the value, valid while any copy of this
  /// future exists; on an rvalue (`std::move(f).get()`, or `run(g).get()`) it moves the value
  /// out, which is how a move-only result is taken: other copies of the future, if any, must
  /// not read the value after that. Counts as observing the exception.
  typename detail::get_result<T>::type get() const& {
    wait_observed();
    if constexpr (!std::is_void_v<T>) return s_->value();
  }
  T get() && {
    wait_observed();
    if constexpr (!std::is_void_v<T>) return std::move(s_->value());
  }
  /// @}

  /// @{
  // future::then()
  //
  /// Returns a future for `f(value)` (or `f()` for future<void>), which runs on the same pool as
  /// this task once it has succeeded. If this task fails or is cancelled, the returned future
  /// fails with the same exception or is cancelled, and `f` is not called. If `f` takes a
  /// `future<T>` instead (declared so: a generic lambda gets the value), it is called whatever
  /// the outcome, with a future of this task that is done, so it can handle an error or a
  /// cancellation; that counts as observing the exception. Never blocks. Called
  /// on an rvalue, the value is moved into `f`; on an lvalue, `f` gets a const reference.
  /// As with get(), other copies must not read a value that then() moved out. The new future
  /// carries this task's exception on, which counts as observing it; if the continuation is
  /// cancelled first, the exception is reported as unobserved unless a future of this task
  /// observes it. Throws shutdown_error if the task has finished and its pool is being
  /// destroyed (or is gone).
  template <class F>
  auto then(F&& f) const& {
    return detail::make_continuation<false>(&state(), std::forward<F>(f), 0);
  }
  template <class F>
  auto then(F&& f) && {
    return detail::make_continuation<true>(&state(), std::forward<F>(f), 0);
  }
  /// @}

  /// @{
  // future::then(pool&, f)
  //
  /// As then(f), but the continuation is queued on `p`, and runs on one of its workers, unless a
  /// worker of another pool that waits for it runs it first, as it would any task it waits for
  /// (which is what keeps two pools of one worker each, waiting for each other's continuations,
  /// from deadlocking). If `p` is already shut down, then() throws shutdown_error, as
  /// submitting to `p` would; if `p` shuts down later, before this task finishes, the
  /// continuation is cancelled.
  template <class F>
  auto then(pool& p, F&& f) const& {
    return detail::make_continuation<false>(&state(), std::forward<F>(f), detail::target_pool_id(p));
  }
  template <class F>
  auto then(pool& p, F&& f) && {
    return detail::make_continuation<true>(&state(), std::forward<F>(f), detail::target_pool_id(p));
  }
  /// @}

 private:
  friend struct detail::future_access;
  explicit future(detail::result_state<T>* s) noexcept : s_(s) {}

  detail::result_state<T>& state() const {
    if (s_ == nullptr) throw std::future_error(std::future_errc::no_state);
    return *s_;
  }
  void wait_observed() const {
    wait();
    s_->observed_.store(true, std::memory_order_relaxed);  // published by release_future()
    switch (s_->phase()) {
      case detail::st_failed:
        std::rethrow_exception(s_->error_);
      case detail::st_cancelled:
        throw cancelled{};
      default:
        return;
    }
  }

  detail::result_state<T>* s_ = nullptr;
};

namespace detail {

// A continuation made by then() with a callable that takes the future: runs once its antecedent
// has finished, whatever the outcome, and calls `Fn` with a future of it.
template <class U, class T, class Fn>
class then_future_state final : public result_state<U> {
 public:
  template <class F>
  explicit then_future_state(F&& f)
      : result_state<U>(st_pending), fn_(std::in_place, std::forward<F>(f)) {
    this->runs_always_ = true;
  }

  std::uint32_t invoke() noexcept override {
    // relaxed, and the lock bit masked off: as in then_state::invoke().
    auto* a = reinterpret_cast<result_state<T>*>(this->antecedent_.load(std::memory_order_relaxed) &
                                                 ~std::uintptr_t{1});
    // Handed over, so observed. relaxed: published by the seq_cst decrement of a->takers_ that
    // follows (drop_antecedent() in the core), before this future can be the last one.
    a->observed_.store(true, std::memory_order_relaxed);
    a->retain_future();
    const std::uint32_t phase = this->store(
        [this, a]() -> U { return std::invoke(std::move(*fn_), future_access::adopt<T>(a)); });
    fn_.reset();
    return phase;
  }
  void drop_callable() noexcept override { fn_.reset(); }

 private:
  std::optional<Fn> fn_;
};

// Makes the new continuation `c` wait for `a` and returns its future.
template <class U>
future<U> attach_new(task_base* a, result_state<U>* c, std::uint64_t target_pool) {
  c->target_pool_ = target_pool;
  a->retain();  // the continuation's reference to its antecedent, dropped when it finishes
  c->antecedent_.store(reinterpret_cast<std::uintptr_t>(static_cast<task_base*>(a)),
                       std::memory_order_relaxed);  // published by attach_continuation
  future<U> result = future_access::adopt<U>(c);
  c->retain();  // the link from `a`, which attach_continuation takes over
  try {
    attach_continuation(a, c);
  } catch (...) {
    c->release();
    throw;
  }
  return result;
}

template <bool MoveValue, class T, class F>
auto make_continuation(result_state<T>* a, F&& f, std::uint64_t target_pool) {
  using Fn = std::decay_t<F>;
  if constexpr (takes_future<T, F, MoveValue>()) {
    using U = std::remove_cvref_t<std::invoke_result_t<Fn, future<T>>>;
    return attach_new(a, new then_future_state<U, T, Fn>(std::forward<F>(f)), target_pool);
  } else {
    using U = typename then_result<T, F, MoveValue>::type;
    return attach_new(a, new then_state<U, T, Fn, MoveValue>(std::forward<F>(f)), target_pool);
  }
}

}  // namespace detail

}  // namespace background

#include "background/coroutine.hpp"  // co_await on a future, and future<T> as a coroutine type

#endif  // BACKGROUND_FUTURE_HPP
