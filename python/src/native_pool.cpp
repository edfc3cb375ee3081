#include "native_pool.hpp"

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "interpreter.hpp"

namespace background::python {
namespace {

// A Python callable, owned by a pool's thread-start hook; released with the GIL if the
// interpreter is still open.
struct python_ref {
  PyObject* object;
  explicit python_ref(PyObject* o) : object(o) { Py_XINCREF(object); }
  python_ref(const python_ref&) = delete;
  python_ref& operator=(const python_ref&) = delete;
  ~python_ref() {
    python_scope py;
    if (py.ok()) Py_XDECREF(object);
  }
};

}  // namespace

native_pool::native_pool(std::size_t threads, std::string name, PyObject* thread_start) {
  background::pool_options options;
  options.name = std::move(name);
  std::shared_ptr<python_ref> start;
  if (thread_start != nullptr && thread_start != Py_None) {
    python_scope py;  // the reference is taken with the GIL
    if (!py.ok()) throw std::runtime_error("cannot start threads after interpreter shutdown");
    start = std::make_shared<python_ref>(thread_start);
  }
  options.on_thread_start = [start, ready = ready_](std::size_t) {
    prepare_thread();
    if (start != nullptr) {
      python_scope py;
      if (py.ok()) {
        PyObject* r = PyObject_CallNoArgs(start->object);
        if (r == nullptr) {
          PyErr_WriteUnraisable(start->object);
        } else {
          Py_DECREF(r);
        }
      }
    }
    // seq_cst (relaxed would do: await_ready() only polls this count, with naps, and wants no
    // other write ordered with it). The notify wakes nobody today: await_ready() naps instead,
    // since a shrink lowers the count without a wake. Both are left for a follow-up.
    ready->fetch_add(1, std::memory_order_seq_cst);
    ready->notify_all();
  };
  options.on_thread_stop = [ready = ready_](std::size_t) {
    ready->fetch_sub(1, std::memory_order_seq_cst);  // as above: a count that is only polled
  };
  pool_ = std::make_shared<background::pool>(threads, std::move(options));
  state_->home = pool_.get();
  await_ready(threads);
}

void native_pool::await_ready(std::size_t threads) const {
  // A warm-up, not a promise: give up after 10 s (a slow machine, a hook that blocks).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const auto want = static_cast<std::ptrdiff_t>(threads);
  for (std::ptrdiff_t now = ready_->load(std::memory_order_seq_cst); now < want;
       now = ready_->load(std::memory_order_seq_cst)) {
    if (std::chrono::steady_clock::now() >= deadline) return;
    // Woken by each ready worker; a worker that leaves meanwhile (a shrink from another
    // thread) lowers the count without a wake, hence the bounded naps.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

native_pool::~native_pool() {
  gil_unlocked unlocked;
  if (closer_.joinable()) {
    // On one of the pool's own workers (its last reference dropped by its own task), the
    // closer waits for this very task: let it finish alone; it holds the pool.
    if (background::this_pool() == pool_.get()) {
      closer_.detach();
    } else {
      closer_.join();
    }
  }
  pool_.reset();
}

background::future<void> native_pool::submit(PyObject* future, PyObject* fn, PyObject* args,
                                             PyObject* kwargs) {
  used_.store(true, std::memory_order_relaxed);
  background::future<void> f = pool_->run(python_call(future, fn, args, kwargs, state_));
  state_->backlog.push_back(f);  // with the GIL: see pool_state
  return f;
}

void native_pool::resize(std::size_t threads) {
  const std::size_t before = pool_->size();
  pool_->resize(threads);
  if (threads > before) await_ready(threads);
}

bool native_pool::wait(std::optional<double> timeout) {
  using clock = std::chrono::steady_clock;
  const auto slice = std::chrono::milliseconds(100);
  const auto deadline =
      timeout ? clock::now() + std::chrono::duration_cast<clock::duration>(
                                   std::chrono::duration<double>(std::max(*timeout, 0.0)))
              : clock::time_point::max();
  for (;;) {
    const auto now = clock::now();
    const auto until = deadline - now > slice ? now + slice : deadline;
    bool idle = false;
    {
      gil_unlocked unlocked;
      idle = pool_->wait_until(until);
    }
    if (idle) return true;
    if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();  // Ctrl-C, say
    if (clock::now() >= deadline) return false;
  }
}

void native_pool::shutdown(bool wait, bool cancel) {
  if (is_default_) return;  // the default pool lives as long as the process
  if (wait) {
    gil_unlocked unlocked;
    // First: from the pool's own task it throws at once (it would wait for itself); otherwise
    // a shutdown already under way on the closer thread is waited for.
    cancel ? pool_->shutdown(background::cancel_pending) : pool_->shutdown();
    if (closer_.joinable()) closer_.join();
    return;
  }
  if (closer_.joinable()) return;
  closer_ = std::thread(
      [p = pool_, cancel] { cancel ? p->shutdown(background::cancel_pending) : p->shutdown(); });
}

void native_pool::finish() {
  gil_unlocked unlocked;
  if (closer_.joinable() && background::this_pool() != pool_.get()) closer_.join();
  pool_->shutdown();
}

void native_pool::mark_broken(const std::string& reason) {
  if (state_->broken.load(std::memory_order_acquire)) return;
  state_->broken_reason = reason;  // with the GIL: one writer
  // release: pairs with the acquire loads in python_call and broken().
  state_->broken.store(true, std::memory_order_release);
}

}  // namespace background::python
