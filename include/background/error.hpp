/// @file
/// The library's error types and the handler for exceptions that nobody observed.
///
/// A task's exception travels to its future: `get()` rethrows it, `exception()` returns it and
/// `then()` forwards it to the continuation's future. An exception that nothing can observe any
/// more (the task has failed, the last copy of its future is gone and no continuation will carry
/// it on) is passed, once, to the handler set with `on_error()`. Nothing is swallowed (but a
/// `forked`, which says that a task ran in the parent process, see below) and nothing calls
/// `std::terminate`.
#ifndef BACKGROUND_ERROR_HPP
#define BACKGROUND_ERROR_HPP

#include <exception>
#include <functional>
#include <stdexcept>

#include "background/detail/export.hpp"

namespace background {

// cancelled
//
/// Thrown by `future::get()` (and returned by `future::exception()`) when the task was cancelled
/// with `future::cancel()` before it started, or is a continuation of such a task.
class BACKGROUND_API cancelled : public std::runtime_error {
 public:
  /// With a fixed message that says what happened.
  cancelled();
};

// shutdown_error
//
/// Thrown when a task is submitted to a pool whose destructor has started. While it drains, a
/// pool still accepts tasks submitted from its own tasks (nested tasks and continuations of work
/// it already accepted); any other thread gets this error and the task is not queued.
class BACKGROUND_API shutdown_error : public std::runtime_error {
 public:
  /// With a fixed message that says what happened.
  shutdown_error();
};

// timeout_error
//
/// Thrown by as_completed(fs, timeout) when the deadline passes with futures not yet done, as
/// Python's `concurrent.futures.TimeoutError`.
class BACKGROUND_API timeout_error : public std::runtime_error {
 public:
  /// With a fixed message that says what happened.
  timeout_error();
};

// forked
//
/// Thrown by `future::get()` (and returned by `future::exception()`) in a child process made by
/// `fork()`, for a task that was queued or running in the parent when it forked. Such a task
/// belongs to the parent: it runs (or has run) there, and never in the child. The child's copy of
/// its future reports this error instead of waiting for ever; continuations that the parent hung
/// on it end the same way. It is never passed to the `on_error()` handler, not even when a
/// child's own continuation, combination or task lets it through: the task ran in the parent.
class BACKGROUND_API forked : public std::runtime_error {
 public:
  /// With a fixed message that says what happened.
  forked();
};

/// The type of the handler that receives exceptions nobody observed.
using error_handler = std::function<void(std::exception_ptr)>;

// on_error()
//
/// Replaces the process-wide handler for exceptions that nobody observed, and returns the
/// previous one. An empty `handler` restores the default, which writes one line to stderr with
/// the exception's type and, for a `std::exception`, its `what()`.
///
/// The handler is called at the moment the exception becomes unobservable, on the thread that
/// made it so: the worker that finished the task (before pool::wait() can return), the thread
/// that dropped the last future, or the one that ran or cancelled the last continuation. It is
/// also called, on the thread running callbacks, for an exception a `callback()` throws. The
/// handler is stored once and that one object is called, so it must be safe to call from several
/// threads at the same time (keep shared state in atomics or behind a lock, not in a `mutable`
/// lambda's captures); an exception it throws is written to stderr and otherwise ignored.
/// Reporting allocates nothing, so it works when memory is exhausted; the default handler too.
///
/// If `on_error()` itself throws (std::bad_alloc while storing `handler`), the previous handler
/// stays installed.
///
/// **Example**:
///
/// ```
///   background::on_error([](std::exception_ptr e) { log_exception(e); });
/// ```
BACKGROUND_API error_handler on_error(error_handler handler);

namespace detail {
// Passes `e` to the current handler. Never throws.
BACKGROUND_API void report_unobserved(std::exception_ptr e) noexcept;
}  // namespace detail

}  // namespace background

#endif  // BACKGROUND_ERROR_HPP
