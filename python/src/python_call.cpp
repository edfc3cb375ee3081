#include "python_call.hpp"

#include <chrono>
#include <utility>

#include "background/detail/core.hpp"
#include "interpreter.hpp"

namespace background::python {
namespace {

// Interned method names and BrokenThreadPool, looked up once and kept for the process's life
// (freeing them at exit would run after the interpreter is gone).
PyObject* set_running_name = nullptr;
PyObject* set_result_name = nullptr;
PyObject* set_exception_name = nullptr;
PyObject* cancel_name = nullptr;
PyObject* broken_thread_pool = nullptr;

// How many python_calls this thread is inside (one waiting for another runs it inline): only
// the outermost starts a batch, so that a wait for one call never runs unrelated ones.
thread_local int depth = 0;

// Calls future.<name>(arg); an exception from it (InvalidStateError, say) goes to
// sys.unraisablehook: there is nobody else to give it to.
void call_method(PyObject* future, PyObject* name, PyObject* arg) noexcept {
  PyObject* r = arg != nullptr ? PyObject_CallMethodOneArg(future, name, arg)
                               : PyObject_CallMethodNoArgs(future, name);
  if (r == nullptr) {
    PyErr_WriteUnraisable(future);
  } else {
    Py_DECREF(r);
  }
}

}  // namespace

void init_python_call() {
  set_running_name = PyUnicode_InternFromString("set_running_or_notify_cancel");
  set_result_name = PyUnicode_InternFromString("set_result");
  set_exception_name = PyUnicode_InternFromString("set_exception");
  cancel_name = PyUnicode_InternFromString("cancel");
  PyObject* thread = PyImport_ImportModule("concurrent.futures.thread");
  if (thread != nullptr) {
    broken_thread_pool = PyObject_GetAttrString(thread, "BrokenThreadPool");
    Py_DECREF(thread);
  }
}

python_call::python_call(PyObject* future, PyObject* fn, PyObject* args, PyObject* kwargs,
                         std::shared_ptr<pool_state> state) noexcept
    : future_(future), fn_(fn), args_(args), kwargs_(kwargs), state_(std::move(state)) {
  Py_INCREF(future_);
  Py_INCREF(fn_);
  Py_INCREF(args_);
  Py_XINCREF(kwargs_);
}

python_call::python_call(python_call&& other) noexcept
    : future_(std::exchange(other.future_, nullptr)),
      fn_(std::exchange(other.fn_, nullptr)),
      args_(std::exchange(other.args_, nullptr)),
      kwargs_(std::exchange(other.kwargs_, nullptr)),
      state_(std::move(other.state_)) {}

python_call::~python_call() {
  if (future_ == nullptr) return;  // ran, or moved from
  // Destroyed unrun: its pool cancelled it (shutdown with cancel_futures, a cancel() that
  // reached the native task first, a pool destroyed at exit).
  python_scope py;
  if (!py.ok()) {
    forget_refs();
    return;
  }
  call_method(future_, cancel_name, nullptr);
  drop_refs();
}

void python_call::operator()() noexcept {
  ++depth;
  run();
  --depth;
}

void python_call::run() noexcept {
  python_scope py;
  if (!py.ok()) {
    forget_refs();
    return;
  }
  PyObject* go = PyObject_CallMethodNoArgs(future_, set_running_name);
  if (go == nullptr) {
    PyErr_WriteUnraisable(future_);
  } else {
    const bool run = go == Py_True;
    Py_DECREF(go);
    if (run) call();
  }
  drop_refs();
  if (depth == 1 && state_ != nullptr && state_->home == background::this_pool()) {
    ++depth;  // the calls of the batch are not outermost
    run_backlog(*state_);
    --depth;
  }
}

void run_backlog(pool_state& state) noexcept {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(1);
  for (int budget = 256; budget > 0 && !state.backlog.empty(); --budget) {
    background::future<void> next = std::move(state.backlog.front());
    state.backlog.pop_front();
    if (next.done()) continue;
    // Runs it here if it is still queued (this thread is a worker: help_run() does nothing
    // otherwise); the call's python_scope finds the GIL held.
    if (background::detail::help_run(background::detail::future_access::state(next)) &&
        clock::now() >= deadline) {
      return;
    }
  }
}

void python_call::call() noexcept {
  if (state_ != nullptr && state_->broken.load(std::memory_order_acquire)) {
    // acquire: pairs with the release that set it, after broken_reason was written.
    PyObject* error = PyObject_CallFunction(broken_thread_pool, "s", state_->broken_reason.c_str());
    if (error == nullptr) {
      PyErr_WriteUnraisable(future_);
      return;
    }
    call_method(future_, set_exception_name, error);
    Py_DECREF(error);
    return;
  }
  PyObject* result = PyObject_Call(fn_, args_, kwargs_);
  if (result != nullptr) {
    call_method(future_, set_result_name, result);
    Py_DECREF(result);
    return;
  }
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (traceback != nullptr && value != nullptr) PyException_SetTraceback(value, traceback);
  if (value != nullptr) call_method(future_, set_exception_name, value);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
}

void python_call::drop_refs() noexcept {
  Py_CLEAR(fn_);
  Py_CLEAR(args_);
  Py_CLEAR(kwargs_);
  Py_CLEAR(future_);  // last: the destructor looks at it
}

void python_call::forget_refs() noexcept { future_ = fn_ = args_ = kwargs_ = nullptr; }

}  // namespace background::python
