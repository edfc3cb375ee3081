#include "interpreter.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace background::python {
namespace {

// The door: the count of threads inside a python_scope, and a bit set once it has closed.
// seq_cst throughout: enter_python() and close_python() are a Dekker pair (each writes its own
// part, then reads the other's), so either the closer counts the entrant or the entrant sees the
// door closed.
constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
std::atomic<std::uint64_t> door{0};
std::atomic<std::thread::id> closer{};  // the thread that called close_python()

// How many times this thread is inside the door (nested python_scopes).
thread_local int inside_door = 0;

void release_door() noexcept {
  // The last thread out after the close wakes close_python().
  if (door.fetch_sub(1, std::memory_order_seq_cst) - 1 == closed_bit) door.notify_all();
}

void leave_python() noexcept {
  --inside_door;
  release_door();
}

bool enter_python() noexcept {
  if ((door.fetch_add(1, std::memory_order_seq_cst) & closed_bit) == 0) {
    ++inside_door;
    return true;
  }
  release_door();
  return false;
}

// The thread state of a native thread that has run Python code, kept from its first task to its
// end. Released (with the GIL) by PyEval_SaveThread() between tasks.
struct kept_thread_state {
  PyThreadState* state = nullptr;
  kept_thread_state() = default;
  kept_thread_state(const kept_thread_state&) = delete;
  kept_thread_state& operator=(const kept_thread_state&) = delete;
  ~kept_thread_state() {
    if (state == nullptr || !enter_python()) return;  // closing: the process frees it all
    PyEval_RestoreThread(state);
    PyGILState_Release(PyGILState_UNLOCKED);  // the PyGILState_Ensure() that made it: frees it
    leave_python();
  }
};
thread_local kept_thread_state kept;

// Gives threading.current_thread() of this native thread the thread's own name (a pool's
// `<name>-<k>`), as ThreadPoolExecutor's threads carry their prefix, for logging's threadName.
// With the GIL. Best effort: a failure leaves Python's "Dummy-<k>".
void name_python_thread() noexcept {
  char name[16] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof name) != 0) return;
  PyObject* threading = PyImport_ImportModule("threading");
  PyObject* current =
      threading != nullptr ? PyObject_CallMethod(threading, "current_thread", nullptr) : nullptr;
  PyObject* text = current != nullptr ? PyUnicode_FromString(name) : nullptr;
  if (text != nullptr) PyObject_SetAttrString(current, "name", text);
  Py_XDECREF(text);
  Py_XDECREF(current);
  Py_XDECREF(threading);
  PyErr_Clear();
}

}  // namespace

void close_python() noexcept {
  // release: pairs with the acquire in ~gil_unlocked().
  closer.store(std::this_thread::get_id(), std::memory_order_release);
  std::uint64_t s = door.fetch_or(closed_bit, std::memory_order_seq_cst) | closed_bit;
  while (s != closed_bit) {
    door.wait(s, std::memory_order_seq_cst);
    s = door.load(std::memory_order_seq_cst);
  }
}

void prepare_thread() noexcept {
  python_scope py;  // creates and names the thread state, if this thread has none yet
}

// relaxed: a flag read by submit(); the exit hook and the submitters are ordered by the GIL.
std::atomic<bool> exit_begun{false};

void begin_exit() noexcept { exit_begun.store(true, std::memory_order_relaxed); }

bool exiting() noexcept { return exit_begun.load(std::memory_order_relaxed); }

void reset_door_after_fork() noexcept {
  // The child's only thread: no other can be entering or leaving.
  door.store(static_cast<std::uint64_t>(inside_door), std::memory_order_seq_cst);
  closer.store(std::thread::id{}, std::memory_order_relaxed);
  exit_begun.store(false, std::memory_order_relaxed);
}

bool python_closed() noexcept { return (door.load(std::memory_order_seq_cst) & closed_bit) != 0; }

gil_unlocked::gil_unlocked() noexcept {
  // Called from Python code, so the interpreter is whole: PyGILState_Check() is truthful.
  if (PyGILState_Check() != 0) saved_ = PyEval_SaveThread();
}

gil_unlocked::~gil_unlocked() {
  if (saved_ == nullptr) return;
  if (inside_door > 0) {
    // Counted inside the door (a task's call that let the GIL go, to destroy a pool say):
    // close_python() waits, without the GIL, for this thread to finish and leave. Waiting here
    // for the door instead hung the exit (a task dropping the last reference to an Executor
    // while the interpreter closed: 4 to 8 runs in 30).
    PyEval_RestoreThread(saved_);
    return;
  }
  if (enter_python()) {
    // Inside the door, close_python() waits for this thread to have the GIL and leave.
    PyEval_RestoreThread(saved_);
    leave_python();
    return;
  }
  // acquire: pairs with the release store in close_python().
  if (closer.load(std::memory_order_acquire) == std::this_thread::get_id()) {
    PyEval_RestoreThread(saved_);  // the finalizing thread itself: allowed
    return;
  }
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

python_scope::python_scope() noexcept {
  // The door first: after Py_Finalize, PyGILState_Check() answers 1 whoever asks.
  if (!enter_python()) return;
  if (PyGILState_Check() != 0) {
    mode_ = mode::held;
  } else if (kept.state != nullptr) {
    PyEval_RestoreThread(kept.state);
    mode_ = mode::restored;
  } else if (PyGILState_GetThisThreadState() == nullptr) {
    // A native thread Python has never seen: a thread state of its own, kept.
    PyGILState_Ensure();
    kept.state = PyThreadState_Get();
    mode_ = mode::restored;
    name_python_thread();
  } else {
    // A Python thread that has released the GIL (around a native wait, say).
    state_ = PyGILState_Ensure();
    mode_ = mode::ensured;
  }
}

python_scope::~python_scope() {
  switch (mode_) {
    case mode::closed:
      return;
    case mode::held:
      break;
    case mode::restored:
      PyEval_SaveThread();
      break;
    case mode::ensured:
      PyGILState_Release(state_);
      break;
  }
  leave_python();
}

}  // namespace background::python
