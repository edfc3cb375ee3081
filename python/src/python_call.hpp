// python_call: one Python call, f(*args, **kwargs), as a task of a native pool, settling a
// concurrent.futures.Future.
#ifndef BACKGROUND_PYTHON_PYTHON_CALL_HPP
#define BACKGROUND_PYTHON_PYTHON_CALL_HPP

#include <Python.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>

#include "background/future.hpp"
#include "background/pool.hpp"

namespace background::python {

// What a pool's tasks share: whether the pool is broken (a thread initializer failed, as
// ThreadPoolExecutor says it), and why; and the backlog of its calls, for run_backlog().
struct pool_state {
  std::atomic<bool> broken{false};
  std::string broken_reason;  // written once, before `broken` is set
  // The pool's calls in submission order, some long run already. Touched only with the GIL
  // held, which is its lock (free-threaded Python would need a real one).
  std::deque<background::future<void>> backlog;
  // The pool whose workers may run the backlog (set once, before the first submit): a call
  // run inline elsewhere starts no batch there. (From Python such a call is always nested in
  // the waiting call, which the depth check covers; this covers waits from native code.)
  const background::pool* home = nullptr;
};

// With the GIL, on a worker that has just run one of `state`'s calls: runs the next ones that
// no worker has started, on this thread, without letting go of the GIL in between, for up to
// ~1 ms or 256 calls. Without it, each call would take and release the GIL, and on a pool of
// several workers the GIL would go back and forth between them at every call (measured on 2
// cores: ~6 us a call for an empty function, against ~2 us when batched). Calls it does not
// run are left to the workers as usual: the backlog only speeds things up. Calls that block
// (I/O, sleep) release the GIL as always, and the batch ends after one that took long.
void run_backlog(pool_state& state) noexcept;

// Looks up what python_call needs from Python; call once, with the GIL, at import.
void init_python_call();

// Run on a worker: takes the GIL, calls future.set_running_or_notify_cancel() and, unless the
// future was cancelled meanwhile, f(*args, **kwargs), then future.set_result() or
// future.set_exception() (any BaseException, SystemExit included, goes to the future). A call
// destroyed without having run (cancelled by the pool) cancels its future. Once the interpreter
// has started closing (close_python()), it touches nothing Python.
class python_call {
 public:
  // Takes new references to its arguments; `kwargs` may be null. Call with the GIL.
  python_call(PyObject* future, PyObject* fn, PyObject* args, PyObject* kwargs,
              std::shared_ptr<pool_state> state) noexcept;
  python_call(python_call&& other) noexcept;
  python_call(const python_call&) = delete;
  python_call& operator=(const python_call&) = delete;
  python_call& operator=(python_call&&) = delete;
  ~python_call();

  void operator()() noexcept;

 private:
  void run() noexcept;
  void call() noexcept;         // with the GIL, once the future is running
  void drop_refs() noexcept;    // with the GIL
  void forget_refs() noexcept;  // without: leaks them

  PyObject* future_;
  PyObject* fn_;
  PyObject* args_;
  PyObject* kwargs_;
  std::shared_ptr<pool_state> state_;
};

}  // namespace background::python

#endif  // BACKGROUND_PYTHON_PYTHON_CALL_HPP
