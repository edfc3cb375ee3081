// The compiled core's entry points that the public templates call. Defined in src/.
#ifndef BACKGROUND_DETAIL_CORE_HPP
#define BACKGROUND_DETAIL_CORE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "background/detail/export.hpp"
#include "background/detail/post_node.hpp"
#include "background/detail/task_state.hpp"

namespace background::detail {

// Queues `t` (in phase st_queued, or st_pending: then made queued once its pool is set) on `p`,
// taking over one reference to it. With
// `with_callbacks`, the pool's callbacks registered so far will be called when it finishes.
// Throws shutdown_error if `p` is being destroyed and the caller is not one of its tasks; then
// the reference stays with the caller and nothing is queued.
BACKGROUND_API void submit(pool_impl* p, task_base* t, bool with_callbacks);

// Queues the post() task `n` on `p`, taking it over, with the pool's callbacks registered so
// far. Throws shutdown_error as submit() does; then `n` stays with the caller.
BACKGROUND_API void post(pool_impl* p, post_node* n);

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

// The id of `p` (see task_base::target_pool_).
BACKGROUND_API std::uint64_t pool_id(const pool_impl* p) noexcept;

// For tasks that wait for several others in turn (when_all): makes `a` the task that the
// pending `c` waits for, in place of the one before (whose reference and place among the
// takers it drops), and pushes `c` on `a`'s continuation stack, taking over one reference to
// `c`: when `a` finishes, its settle calls c->antecedent_done(). Wakes threads asleep on `c`, so
// that waiting workers help along the new antecedent. Returns false, pushing nothing, if `a`
// has already finished (`c` still holds it as its antecedent then).
BACKGROUND_API bool relink(task_base* c, task_base* a) noexcept;

// Makes `a` the antecedent of `t`, which has none: `t` holds a reference to it and counts among
// its takers until drop_antecedent(). Waiting workers then help along `a`.
BACKGROUND_API void set_antecedent(task_base* t, task_base* a) noexcept;
// Drops `t`'s antecedent, if it has one.
BACKGROUND_API void drop_antecedent(task_base* t) noexcept;

// Moves `t` from phase `from` to `to` (neither final), keeping the waiter bit and waking the
// waiters; false, changing nothing, if `t` is not in phase `from` (it was cancelled, say).
BACKGROUND_API bool set_phase(task_base* t, std::uint32_t from, std::uint32_t to) noexcept;

// Finishes `t`, which this thread has claimed (st_running), with the final `phase`; its value or
// error_ is stored. Drops its antecedent, publishes the phase, wakes its waiters and schedules
// its continuations on `p`: a pool that is alive while this runs (the one whose task this
// thread settles). With `p` null, the pool of the task this thread is running, if any;
// otherwise the pool whose id the caller put in `t`'s pool_id_ (the default pool for 0).
// Reports its exception if nothing can observe it.
BACKGROUND_API void complete(task_base* t, std::uint32_t phase, pool_impl* p) noexcept;

// In a child process made by fork(), for a task `t` of the parent's (made before the fork) that
// has not finished: finishes it, and the parent's continuations hung on it, with `forked`
// (src/fork.cpp). Returns whether `t` is finished now. Cheap for anything else: a load.
BACKGROUND_API bool forked_done(task_base* t) noexcept;

// On a pool worker, runs `t` on this thread if it is queued, or the queued task at the head of
// its chain of antecedents if it waits for one, as an untimed wait() would; returns whether it
// ran a task (false off the pools, or if there was none to run).
BACKGROUND_API bool help_run(task_base* t) noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_CORE_HPP
