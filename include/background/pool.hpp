/// @file
/// pool: a set of worker threads that run submitted tasks, resizable at run time.
///
/// The free functions of background.hpp use one default pool per process; make a `pool` of your
/// own to keep some work apart (its own size, its own callbacks, destroyed when you are done).
///
/// **Example**:
///
/// ```
///   background::pool p{4};
///   auto resize = p.task([](std::string path) { return resize_image(path); });
///   background::future<image> f = resize("/uploads/photo.jpg");
///   p.resize(8);
///   p.wait();
/// ```
#ifndef BACKGROUND_POOL_HPP
#define BACKGROUND_POOL_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "background/detail/core.hpp"
#include "background/detail/export.hpp"
#include "background/detail/task_function.hpp"
#include "background/detail/task_state.hpp"
#include "background/future.hpp"

namespace background {

namespace detail {
struct pool_access;  // the library's own view of a pool's engine (src/, tests' seams)
}  // namespace detail

// outcome
//
/// What a callback sees of a finished task: whether it succeeded, failed or was cancelled, and
/// its exception. A callback does not observe the exception in the sense of on_error(): an
/// exception that no future observes is still reported.
class outcome {
 public:
  /// The outcome of a task that was cancelled (`cancelled`), failed with `error` (not null), or
  /// succeeded (neither).
  outcome(bool cancelled, std::exception_ptr error) noexcept
      : cancelled_(cancelled), error_(std::move(error)) {}

  /// Whether the task ran and returned: it neither failed nor was cancelled.
  bool succeeded() const noexcept { return !cancelled_ && error_ == nullptr; }
  /// Whether the task threw: exception() is its exception.
  bool failed() const noexcept { return error_ != nullptr; }
  /// Whether the task was cancelled (future::cancel(), pool::shutdown(cancel_pending)): it
  /// never ran.
  bool cancelled() const noexcept { return cancelled_; }
  /// The task's exception, or null if it did not fail.
  const std::exception_ptr& exception() const noexcept { return error_; }

 private:
  bool cancelled_;
  std::exception_ptr error_;
};

// pool_options
//
/// How a pool's worker threads are named and set up. Workers are named `<name>-<k>` (the name
/// cut so that it fits Linux's 15 characters; "background" when empty), where k is the worker's
/// index: the smallest not used by a live worker of the pool when it started. The hooks run on
/// the worker itself, with that index: `on_thread_start` before it takes any task, and
/// `on_thread_stop` after its last one, as it leaves (a shrink, or the pool's end). An exception
/// a hook throws goes to the on_error() handler.
///
/// A worker starts with the asynchronous signals blocked (SIGINT, SIGTERM, SIGHUP, SIGQUIT,
/// SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM, SIGPIPE, job control, the real-time signals, ...) on top
/// of the mask of the thread that started it, so that a process's signals reach the program's
/// own threads; faults' signals, SIGABRT, SIGPROF and SIGVTALRM are untouched. `on_thread_start`
/// may change the mask with pthread_sigmask(). In a child process made by fork(), a pool keeps
/// its options and starts new workers at its first task there.
///
/// **Example**:
///
/// ```
///   background::pool io{8, {.name = "io", .on_thread_start = [](std::size_t k) { pin(k); }}};
/// ```
struct pool_options {
  /// The workers' name: they are `<name>-<k>`, or `background-<k>` when it is empty.
  std::string name;
  /// Called on each worker, with its index, before it takes any task.
  std::function<void(std::size_t)> on_thread_start;
  /// Called on each worker, with its index, after its last task, as it leaves.
  std::function<void(std::size_t)> on_thread_stop;
};

// pool_stats
//
/// A snapshot of a pool (pool::stats()): its live worker threads, how many of them are running a
/// task, the tasks queued and not started, and the tasks finished so far by outcome (tasks from
/// run() and task(), and continuations). Taken without stopping the workers, so the figures are
/// each a moment's and may disagree a little: a worker's last task may not be counted yet, and
/// `queued` may include tasks a worker has finished but not yet reported (up to 64 a worker).
/// Once wait() has returned, with no submissions meanwhile, they are exact.
struct pool_stats {
  std::size_t threads = 0;      ///< Live worker threads.
  std::size_t busy = 0;         ///< Workers running a task.
  std::size_t queued = 0;       ///< Tasks queued and not started.
  std::uint64_t completed = 0;  ///< Tasks finished so far that succeeded.
  std::uint64_t failed = 0;     ///< Tasks finished so far that threw.
  std::uint64_t cancelled = 0;  ///< Tasks cancelled so far.
};

// cancel_pending
//
/// Tag for pool::shutdown(cancel_pending): cancel what has not started instead of running it.
struct cancel_pending_t {
  explicit cancel_pending_t() = default;
};
/// The tag to pass: `p.shutdown(background::cancel_pending)`.
inline constexpr cancel_pending_t cancel_pending{};

// pool
//
/// A set of worker threads that run submitted tasks, resizable at run time. The free functions
/// use one, default_pool(); make your own to keep some work apart (see pool.hpp).
class BACKGROUND_API pool {
 public:
  /// The largest size a pool accepts; anything above is taken for a bug (a negative number
  /// converted to std::size_t, say) and rejected.
  static constexpr std::size_t max_size = 65536;

  // pool::pool()
  //
  /// Starts `threads` workers at once. Throws std::invalid_argument if `threads` is 0 or above
  /// max_size, and std::system_error if a thread cannot be started (then no thread is left).
  explicit pool(std::size_t threads);
  /// As pool(threads), with its workers named and hooked as `options` say.
  pool(std::size_t threads, pool_options options);
  /// Starts one worker per CPU this process may run on (its affinity mask, and a cgroup CPU
  /// quota where one is set), at least one.
  pool();

  // pool::~pool()
  //
  /// Runs every task already queued (and whatever those tasks submit or continue with), then
  /// joins the workers. From the moment it starts, submissions from any thread but the pool's
  /// own tasks throw shutdown_error. It may be called from one of the pool's own tasks (or
  /// reached through std::exit in one): then it returns once every other task has finished, and
  /// that task (with its continuations and callbacks) finishes on its thread afterwards, which
  /// then exits; nothing waits for that last part, so such a task must not use objects that its
  /// caller may destroy once the pool is gone. Since it blocks until the pool's tasks finish,
  /// two pools whose tasks destroy each other deadlock. Never throws.
  ~pool();

  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // pool::run()
  //
  /// Submits `f(args...)` and returns its future at once. `f` and `args` are decay-copied (or
  /// moved) into the task as std::thread does; use std::ref to pass a reference. The result is
  /// stored by value. Throws shutdown_error if the pool is being destroyed, std::bad_alloc if
  /// the task cannot be allocated; then nothing was queued.
  template <class F, class... Args>
  auto run(F&& f, Args&&... args) {
    return detail::submit_call(impl_, std::forward<F>(f), std::forward<Args>(args)...);
  }

  // pool::post()
  //
  /// As run(), fire and forget: no future. The call runs exactly once (or is cancelled by
  /// shutdown(cancel_pending)); what it returns is dropped; an exception it throws goes to the
  /// on_error() handler, once; callbacks see the outcome; wait() waits for it. Throws as run()
  /// does, and then nothing was queued. The cheapest way to hand work to a pool: a queued post
  /// holds the call and 16 bytes (a small lambda: a 32-byte allocation, a third of run()'s).
  template <class F, class... Args>
  void post(F&& f, Args&&... args) {
    detail::post_call(impl_, std::forward<F>(f), std::forward<Args>(args)...);
  }

  // pool::task()
  //
  /// Wraps `f` in a callable object that submits `f(args...)` to this pool each time it is
  /// called, returning the future at once, as run() does. Each call runs its own copy of `f`; a
  /// move-only `f` is shared by all calls instead, and must then be callable as const. The
  /// object must not outlive the pool.
  template <class F>
  auto task(F&& f) {
    return detail::task_function<std::decay_t<F>>(&impl_, std::forward<F>(f));
  }

  // pool::resize()
  //
  /// Sets the number of workers, from any thread, including from inside a task. Growing starts
  /// the new threads before it returns, so queued tasks start at once. Shrinking never blocks:
  /// surplus workers leave after their current task. Throws std::invalid_argument for 0 or
  /// above max_size, and std::system_error if a thread cannot be started; in both cases the pool
  /// is left as it was.
  void resize(std::size_t threads);

  // pool::size()
  //
  /// The size last set, by the constructor or resize(). Workers that are still finishing a task
  /// after a shrink are not counted.
  std::size_t size() const noexcept;

  // pool::wait()
  //
  /// Blocks until no task is queued or running on this pool, including tasks submitted while it
  /// waits, and their callbacks and error reports are done; by then the pool holds no finished
  /// task, so a task whose futures are gone has been freed. It runs no task on the calling
  /// thread. Throws std::logic_error if called from one of this pool's own tasks or callbacks,
  /// which would wait for itself.
  void wait();

  /// @{
  // pool::wait_for(), pool::wait_until()
  //
  /// As wait(), but gives up when the time is up: returns true if the pool went idle, false on
  /// timeout. Python's `background.wait(timeout)`.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until(std::chrono::steady_clock::now() +
                      std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  /// @}

  /// @{
  // pool::shutdown()
  //
  /// Stops taking work and waits for the work it took: from the call on, submissions from
  /// threads other than the pool's own tasks throw shutdown_error; it then blocks until every
  /// task already accepted (and what those tasks submit or continue with) has finished, and joins
  /// the workers. With `cancel_pending`, tasks that have not started are cancelled instead of
  /// run (their futures report `cancelled`, callbacks see it), and running tasks that take a
  /// std::stop_token are asked to stop; running tasks always finish. Python's
  /// `shutdown(cancel_futures=True)`. Calling it again, or from several threads, waits for the
  /// first call. Afterwards the pool can be queried (size(), stats()) but not resized, and its
  /// destructor only frees it. Throws std::logic_error if called from one of the pool's own tasks
  /// or callbacks, which would wait for itself.
  void shutdown();
  void shutdown(cancel_pending_t);
  /// @}

  // pool::stats()
  //
  /// A snapshot of the pool's threads, busy workers, queued tasks and finished tasks by outcome
  /// (see pool_stats). Cheap enough to poll: it reads counters that each worker keeps for
  /// itself, and holds the pool's lock only while it walks the worker list (the lock that a
  /// full queue's overflow and wait() take, not one a task's run takes). While the pool shuts
  /// down, its workers may already be uncounted in `threads`.
  pool_stats stats() const;

  // pool::map()
  //
  /// Calls `f(x)` for each element `x` of `inputs`, on this pool, and returns a future for the
  /// results in input order. See background::map().
  template <class F, class R>
  auto map(F&& f, R&& inputs, std::size_t chunk = 0);

  // pool::for_each()
  //
  /// Calls `f(x)` for each element `x` of `inputs`, on this pool; the future is ready once all
  /// calls are done. See background::for_each().
  template <class R, class F>
  future<void> for_each(R&& inputs, F&& f, std::size_t chunk = 0);

  // pool::callback()
  //
  /// Registers `f`, to be called once after every task that run(), task() or post() submits to
  /// this pool from now on finishes (and every post() task that finishes from now on: a post
  /// does not remember the callbacks of its submission), with its outcome, on the thread that
  /// finished it (a worker, a waiting worker of any pool that ran it inline, or the thread that
  /// cancelled it), after its future is ready and before wait() can return. Callbacks run in the
  /// order registered; one that throws is reported to the on_error() handler and harms nothing
  /// else. Continuations made by then() do not call callbacks.
  void callback(std::function<void(const outcome&)> f);

 private:
  friend detail::pool_impl* detail::default_pool_impl();
  friend struct detail::pool_access;
  detail::pool_impl* impl_;
};

// this_pool()
//
/// The pool whose worker thread calls it, or null on any other thread. From a task that a worker
/// of another pool runs inline (while it waits), that other pool.
BACKGROUND_API pool* this_pool() noexcept;

// stats()
//
/// The default pool's pool::stats().
BACKGROUND_API pool_stats stats();

// default_pool()
//
/// The pool behind task(), run(), n and wait(): created on first use, one per process, and
/// destroyed at exit after running every task queued on it. Throws shutdown_error if called
/// after it was destroyed (from another static's destructor, say).
BACKGROUND_API pool& default_pool();

}  // namespace background

#include "background/map.hpp"  // pool::map() and pool::for_each()

#endif  // BACKGROUND_POOL_HPP
