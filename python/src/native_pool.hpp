// native_pool: a pool of the C++ core as Python sees it: the core's default pool, or one of its
// own (background.Executor's), running python_calls.
#ifndef BACKGROUND_PYTHON_NATIVE_POOL_HPP
#define BACKGROUND_PYTHON_NATIVE_POOL_HPP

#include <Python.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "background/background.hpp"
#include "python_call.hpp"

namespace background::python {

class native_pool {
 public:
  // A pool of `threads` workers named `<name>-<k>`. Each worker gets its Python thread state
  // as it starts (prepare_thread()), then calls `thread_start`, if not None, with no argument
  // (with the GIL; what it raises goes to sys.unraisablehook). Returns once every worker is
  // ready (or after 10 s). Call without the GIL: the workers need it.
  native_pool(std::size_t threads, std::string name, PyObject* thread_start);
  native_pool(const native_pool&) = delete;
  native_pool& operator=(const native_pool&) = delete;
  // Runs what is queued, then joins (a pool of its own; the default pool is left alone). Takes
  // care of the GIL itself.
  ~native_pool();

  // Queues future.set_running_or_notify_cancel(), fn(*args, **kwargs) and the future's
  // settling (python_call). With the GIL; never blocks. Throws shutdown_error once shut down.
  background::future<void> submit(PyObject* future, PyObject* fn, PyObject* args, PyObject* kwargs);

  std::size_t size() const { return pool_->size(); }
  background::pool_stats stats() const { return pool_->stats(); }
  // Whether submit() was ever called (the interpreter's exit waits for such pools only).
  bool used() const noexcept { return used_.load(std::memory_order_relaxed); }
  // Without the GIL. Growing returns once the new workers are ready, as the constructor does:
  // the tasks that follow start without a Python thread state to make first.
  void resize(std::size_t threads);
  // Until idle or the timeout (seconds) is up; with the GIL, which it releases while it waits,
  // taking it back every 100 ms to let signal handlers run (Ctrl-C), whose exception it throws.
  bool wait(std::optional<double> timeout);
  // pool::shutdown(), with cancel_pending if `cancel`; if not `wait`, on a thread of its own
  // that the destructor joins. With the GIL, which it releases.
  void shutdown(bool wait, bool cancel);
  // At exit, once close_python() has returned: stops the workers and joins them, the default
  // pool's too (a thread left unjoined is a leak to ThreadSanitizer, and to a careful reader).
  // What is still queued runs without touching Python. The object stays usable for queries.
  void finish();
  void mark_broken(const std::string& reason);
  bool broken() const noexcept { return state_->broken.load(std::memory_order_acquire); }
  // Whether this is the package's default pool (background.pool, background.n): never shut
  // down, waited for at exit only if used.
  bool is_default() const noexcept { return is_default_; }
  void set_default() noexcept { is_default_ = true; }

 private:
  void await_ready(std::size_t threads) const;

  // Workers whose start hook has finished, less those whose stop hook has run.
  std::shared_ptr<std::atomic<std::ptrdiff_t>> ready_ =
      std::make_shared<std::atomic<std::ptrdiff_t>>(0);
  // Shared with the closer thread of shutdown(wait=False), which may outlive this object.
  std::shared_ptr<background::pool> pool_;
  bool is_default_ = false;
  std::atomic<bool> used_{false};  // relaxed: a hint for exit, read after the submits returned
  std::shared_ptr<pool_state> state_ = std::make_shared<pool_state>();
  std::thread closer_;  // shutdown(wait=False)
};

}  // namespace background::python

#endif  // BACKGROUND_PYTHON_NATIVE_POOL_HPP
