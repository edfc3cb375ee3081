// How run() and task() turn a callable and its arguments into a queued task and a future.
#ifndef BACKGROUND_DETAIL_TASK_FUNCTION_HPP
#define BACKGROUND_DETAIL_TASK_FUNCTION_HPP

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "background/detail/core.hpp"
#include "background/detail/post_node.hpp"
#include "background/detail/task_state.hpp"
#include "background/future.hpp"

namespace background::detail {

// What `F` returns when a task calls it with `Args` (after a std::stop_token, if it takes one).
template <class F, class... Args>
struct call_result {
  using type = std::invoke_result_t<F, Args...>;
};
// clang-format off (clang-format 14 mangles requires-clauses)
template <class F, class... Args>
  requires takes_stop_token<F, Args...>
struct call_result<F, Args...> {
  using type = std::invoke_result_t<F, std::stop_token, Args...>;
};
// clang-format on

// What a task calling `F` with `Args` stores: the result by value, as std::thread copies.
template <class F, class... Args>
using call_result_t =
    std::remove_cvref_t<typename call_result<std::decay_t<F>, std::decay_t<Args>...>::type>;

// Fails to compile, with a message a user can act on, unless a task can call `f(args...)`.
template <class F, class... Args>
constexpr void check_call() {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...> ||
                    takes_stop_token<std::decay_t<F>, std::decay_t<Args>...>,
                "background: f cannot be called with these arguments. They are copied into the "
                "task and passed as rvalues, as std::thread does: use std::ref to pass a "
                "reference.");
}

// Submits `f(args...)` to `p` (the default pool if null) and returns its future.
template <class F, class... Args>
auto submit_call(pool_impl* p, F&& f, Args&&... args) {
  check_call<F, Args...>();
  using R = call_result_t<F, Args...>;
  auto* t = new call_state<R, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f),
                                                                      std::forward<Args>(args)...);
  future<R> result = future_access::adopt<R>(t);
  t->retain();  // the queue's reference, which submit() takes over
  try {
    submit(p != nullptr ? p : default_pool_impl(), t, /*with_callbacks=*/true);
  } catch (...) {
    t->release();
    throw;
  }
  return result;
}

// Submits `f(args...)` to `p` (the default pool if null) with no future, as a post_node: an
// exception, with nobody to observe it, goes to the on_error() handler when the task ends.
template <class F, class... Args>
void post_call(pool_impl* p, F&& f, Args&&... args) {
  check_call<F, Args...>();
  post_node* n = new post_call_node<std::decay_t<F>, std::decay_t<Args>...>(
      std::forward<F>(f), std::forward<Args>(args)...);
  try {
    post(p != nullptr ? p : default_pool_impl(), n);
  } catch (...) {
    (void)n->run(n, /*cancelled=*/true, nullptr);  // destroys it, unrun
    throw;
  }
}

// The callable object that task(f) returns. Copies of it submit to the same pool.
template <class Fn>
class task_function {
  static constexpr bool copy_each_call = std::is_copy_constructible_v<Fn>;

 public:
  template <class F>
  task_function(pool_impl* const* p, F&& f) : pool_(p), fn_(hold(std::forward<F>(f))) {}

  // Submits fn(args...) and returns its future at once; see pool::run().
  template <class... Args>
  auto operator()(Args&&... args) const {
    if constexpr (copy_each_call) {
      return submit_call(engine(), fn_, std::forward<Args>(args)...);
    } else {
      static_assert(std::is_invocable_v<const Fn&, std::decay_t<Args>...> ||
                        takes_stop_token<const Fn&, std::decay_t<Args>...>,
                    "background::task(f): a move-only f is shared by every call, which may run "
                    "at the same time, so it must be callable as const.");
      // clang-format off
      return submit_call(
          engine(),
          // Constrained, so that asking whether it takes a std::stop_token asks `Fn`.
          [fn = fn_]<class... A>(A&&... a) -> decltype(auto)
            requires std::is_invocable_v<const Fn&, A...>
          {
            return std::invoke(std::as_const(*fn), std::forward<A>(a)...);
          },
          std::forward<Args>(args)...);
      // clang-format on
    }
  }

 private:
  using held = std::conditional_t<copy_each_call, Fn, std::shared_ptr<Fn>>;
  template <class F>
  static held hold(F&& f) {
    if constexpr (copy_each_call) {
      return Fn(std::forward<F>(f));
    } else {
      return std::make_shared<Fn>(std::forward<F>(f));
    }
  }

  // The pool's pointer to its engine, read at each call (a child process made by fork() gives
  // the pool a new engine); null: the default pool, looked up at each call.
  pool_impl* const* pool_;
  pool_impl* engine() const noexcept { return pool_ != nullptr ? *pool_ : nullptr; }
  held fn_;
};

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_TASK_FUNCTION_HPP
