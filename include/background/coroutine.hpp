/// @file
/// Coroutines: `co_await` any future, `future<T>` as a coroutine's return type, and
/// `co_await resume_on(p)` to move a coroutine onto a pool.
///
/// Awaiting never blocks a thread: a future that is done continues at once; otherwise the
/// coroutine is suspended and resumed, on a worker of the awaited future's pool, once that task
/// has finished. Its exception, or `cancelled`, is rethrown at the `co_await`.
///
/// A function that returns `background::future<T>` and uses `co_await` or `co_return` is a
/// background coroutine: calling it submits its body to the default pool (as run() would) and
/// returns its future at once. A task that waits for that future, even at n = 1, runs the
/// coroutine's pending steps itself, as it would a chain of then()s. An exception that leaves the
/// body goes to the future, or, if nobody can observe it, to on_error(), once.
///
/// g++ 12 may destroy twice a capturing lambda written inside a `co_await` expression
/// (`co_await run([x] { ... })`): name the lambda, or the future, first.
///
/// **Example**:
///
/// ```
///   background::future<int> add_one(int x) {
///     auto twice = [x] { return 2 * x; };
///     int a = co_await background::run(twice);
///     co_await background::resume_on(io_pool);  // the rest runs on io_pool
///     co_return a + 1;
///   }
/// ```
#ifndef BACKGROUND_COROUTINE_HPP
#define BACKGROUND_COROUTINE_HPP

#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "background/detail/core.hpp"
#include "background/detail/export.hpp"
#include "background/detail/task_state.hpp"
#include "background/future.hpp"

namespace background {

class pool;

namespace detail {

// A coroutine's state, behind its future: pending until its body starts, running, suspended at
// each co_await, then final (see task_state.hpp). complete() finishes it.
template <class T>
class coro_state final : public result_state<T> {
 public:
  coro_state() noexcept : result_state<T>(st_pending) {}
  std::uint32_t invoke() noexcept override { return st_cancelled; }  // never queued
  void drop_callable() noexcept override {}
  bool is_coroutine() const noexcept override { return true; }
  template <class Body>
  std::uint32_t set(Body&& body) noexcept {
    return this->store(std::forward<Body>(body));
  }
};

// The core's part (src/coroutine.cpp). `coro` is the state of a background coroutine, or null
// for any other coroutine. Each throws (shutdown_error, std::bad_alloc) with nothing changed.
//
// Queues the first step of the coroutine `h` on the default pool.
BACKGROUND_API void start_coroutine(std::coroutine_handle<> h, task_base* coro);
// Resumes `h` once `a` has finished, on a worker of `a`'s pool.
BACKGROUND_API void resume_after(task_base* a, std::coroutine_handle<> h, task_base* coro);
// Resumes `h` on a worker of pool `p`.
BACKGROUND_API void resume_on_pool(const pool& p, std::coroutine_handle<> h, task_base* coro);
// The end of a background coroutine: destroys its frame `h`, then finishes its state `coro` with
// `phase` (see coro_promise_common::final_suspend()).
BACKGROUND_API void finish_coroutine(std::coroutine_handle<> h, task_base* coro,
                                     std::uint32_t phase) noexcept;
// Whether this thread is a worker of `p`.
BACKGROUND_API bool on_worker_of(const pool& p) noexcept;

// What every background coroutine's promise has, for the awaiters to find.
class coro_promise_base {
 public:
  virtual task_base* coro_task() const noexcept = 0;

 protected:
  ~coro_promise_base() = default;
};

template <class P>
task_base* coro_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (std::is_base_of_v<coro_promise_base, P>) {
    return h.promise().coro_task();
  } else {
    (void)h;
    return nullptr;
  }
}

template <class T>
class coro_promise_common : public coro_promise_base {
 public:
  coro_promise_common() : state_(new coro_state<T>) {
    state_->retain();  // the promise's own; the future takes the one it was born with
  }
  coro_promise_common(const coro_promise_common&) = delete;
  coro_promise_common& operator=(const coro_promise_common&) = delete;
  ~coro_promise_common() { state_->release(); }

  future<T> get_return_object() noexcept { return future_access::adopt<T>(state_); }

  struct starter {
    coro_state<T>* state;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { start_coroutine(h, state); }
    void await_resume() const noexcept {}
  };
  starter initial_suspend() const noexcept { return starter{state_}; }

  // The body has ended: the frame is destroyed first (the parameters and locals with it), then
  // the future finished, so that whoever sees it done sees everything the coroutine owned gone,
  // as for a task's callable.
  struct finisher {
    coro_state<T>* state;
    std::uint32_t phase;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept {
      // Out of line, with its arguments by value: nothing of the frame, where this awaiter (and
      // what a compiler spills of this function) lives, is read after it is destroyed.
      finish_coroutine(h, state, phase);
    }
    void await_resume() const noexcept {}
  };
  finisher final_suspend() const noexcept { return finisher{state_, phase_}; }
  void unhandled_exception() noexcept {
    state_->error_ = std::current_exception();
    phase_ = st_failed;
  }
  task_base* coro_task() const noexcept override { return state_; }

 protected:
  coro_state<T>* const state_;
  std::uint32_t phase_ = st_ready;
};

template <class T>
class coro_promise final : public coro_promise_common<T> {
 public:
  // clang-format off
  template <class V>
    requires std::is_convertible_v<V&&, T>
  void return_value(V&& v) noexcept {
    // clang-format on
    this->phase_ = this->state_->set([&v]() -> T { return std::forward<V>(v); });
  }
};

template <>
class coro_promise<void> final : public coro_promise_common<void> {
 public:
  void return_void() noexcept {}
};

// What `co_await f` waits with: a copy of the future (or the future itself, moved in).
template <class T, bool MoveValue>
class future_awaiter {
 public:
  explicit future_awaiter(future<T> f) noexcept : f_(std::move(f)) {}
  bool await_ready() const { return f_.done(); }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) const {
    resume_after(future_access::state(f_), h, coro_of(h));
  }
  T await_resume() const {
    if constexpr (MoveValue) {
      return std::move(f_).get();
    } else if constexpr (std::is_void_v<T>) {
      f_.get();
    } else {
      return f_.get();
    }
  }

 private:
  mutable future<T> f_;
};

}  // namespace detail

/// @{
// co_await on a future<T>
//
/// Suspends the coroutine until the future is done, without blocking a thread, and gives its
/// value: a copy for an lvalue future, the value moved out for an rvalue (`co_await run(g)`).
/// Rethrows its exception, or `cancelled`. Throws std::future_error for an empty future, and
/// shutdown_error if the task has finished and its pool is gone.
template <class T>
auto operator co_await(const future<T>& f) {
  return detail::future_awaiter<T, false>(f);
}
template <class T>
auto operator co_await(future<T>&& f) {
  return detail::future_awaiter<T, true>(std::move(f));
}
/// @}

// resume_on()
//
/// `co_await resume_on(p)` moves the rest of the coroutine onto a worker of pool `p` (at once,
/// with no hop, if it already runs on one). Throws shutdown_error at the co_await if `p` is
/// shutting down.
///
/// **Example**:
///
/// ```
///   co_await background::resume_on(io);  // from here on, on a worker of io
/// ```
class resume_on {
 public:
  /// For `co_await resume_on(p)`: keeps a pointer to `p`, which must outlive the `co_await`.
  explicit resume_on(pool& p) noexcept : pool_(&p) {}
  /// @{
  // resume_on::await_ready(), await_suspend(), await_resume()
  //
  /// The awaitable's protocol, which `co_await` calls.
  bool await_ready() const noexcept { return detail::on_worker_of(*pool_); }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) const {
    detail::resume_on_pool(*pool_, h, detail::coro_of(h));
  }
  void await_resume() const noexcept {}
  /// @}

 private:
  pool* pool_;
};

}  // namespace background

template <class T, class... Args>
struct std::coroutine_traits<background::future<T>, Args...> {
  using promise_type = background::detail::coro_promise<T>;
};

#endif  // BACKGROUND_COROUTINE_HPP
