// The compiled core's entry points that the public templates call. Defined in src/.
#ifndef BACKGROUND_DETAIL_CORE_HPP
#define BACKGROUND_DETAIL_CORE_HPP

#include <chrono>
#include <cstddef>

#include "background/detail/export.hpp"
#include "background/detail/task_state.hpp"

namespace background::detail {

// Queues `t` (in phase st_queued) on `p`, taking over one reference to it. With
// `with_callbacks`, the pool's callbacks registered so far will be called when it finishes.
// Throws shutdown_error if `p` is being destroyed and the caller is not one of its tasks; then
// the reference stays with the caller and nothing is queued.
BACKGROUND_API void submit(pool_impl* p, task_base* t, bool with_callbacks);

// Makes `c` (in phase st_pending, holding a reference to `a` in `antecedent_`) a continuation
// of `a`, taking over one reference to `c`; marks `a`'s outcome as observed. If `a` has already
// finished, `c` is submitted to `a`'s pool at once, which throws shutdown_error as submit()
// does (also when that pool no longer exists); then the reference stays with the caller.
BACKGROUND_API void attach_continuation(task_base* a, task_base* c);

// Blocks until `t` finishes, or until `deadline` if it is not null; returns whether it
// finished. Without a deadline, a pool worker that waits runs `t` itself if `t` is still queued
// (or the queued task that `t` waits for), so nested waits cannot deadlock.
BACKGROUND_API bool wait(task_base* t, const std::chrono::steady_clock::time_point* deadline);

// Cancels `t` if it has not started: true if it now never will.
BACKGROUND_API bool cancel(task_base* t) noexcept;

// The pool behind background::task, run, n and wait.
BACKGROUND_API pool_impl* default_pool_impl();

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_CORE_HPP
