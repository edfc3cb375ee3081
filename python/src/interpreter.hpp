// When native threads may run Python code, and how they hold the GIL.
//
// The pools' workers are native threads that Python did not start. Each Python call they run
// enters through a python_scope: it checks that the interpreter is still open (close_python(),
// called at exit while the interpreter is whole, shuts that door and waits for everyone inside
// to leave), then takes the GIL. A worker keeps its Python thread state across tasks, so a task
// costs one GIL acquire and release, not the creation of a thread state.
#ifndef BACKGROUND_PYTHON_INTERPRETER_HPP
#define BACKGROUND_PYTHON_INTERPRETER_HPP

#include <Python.h>

namespace background::python {

// Closes the door: from now on no python_scope opens, and it returns once no thread is inside
// one. Call with the GIL released (those inside may need it to finish). Idempotent.
void close_python() noexcept;

// On a native thread that has not run Python code yet: gives it its Python thread state now,
// named after the thread (a pool's `<name>-<k>`, as threading.current_thread().name), so that
// its first call does not pay for that. Takes the GIL for a moment. A pool's start hook.
void prepare_thread() noexcept;

// Whether close_python() has begun: from then on nothing may be submitted (it would never run).
bool python_closed() noexcept;

// In a child process made by fork() (a pthread_atfork child handler): the door counts only this
// thread, the one that forked, as inside; the parent's other threads that were inside never
// leave it here, and close_python() at the child's exit would wait for them for ever.
void reset_door_after_fork() noexcept;

// The exit hook has begun draining the pools: from then on only their own tasks may submit
// (follow-ups of the work being drained), as ThreadPoolExecutor refuses submissions at exit;
// a daemon thread that kept submitting would otherwise keep the drain from ever ending.
void begin_exit() noexcept;
bool exiting() noexcept;

// Releases the GIL for its lifetime, if this thread holds it, around a blocking native call;
// use it instead of pybind11's gil_scoped_release. Taking the GIL back goes through the door:
// once close_python() has begun, a thread other than the one that closed it (the main thread,
// which finalizes) would meet a finalizing interpreter, which ends such threads with
// pthread_exit, fatal in a noexcept C++ frame. Such a thread (a daemon thread, since the
// others have been joined by then) parks instead, for the rest of the process's life.
class gil_unlocked {
 public:
  gil_unlocked() noexcept;
  ~gil_unlocked();
  gil_unlocked(const gil_unlocked&) = delete;
  gil_unlocked& operator=(const gil_unlocked&) = delete;

 private:
  PyThreadState* saved_ = nullptr;
};

// Holds the GIL for its lifetime if ok(): on a thread that already holds it, on a Python thread
// that does not, or on a native thread (whose thread state is then created once and kept until
// the thread ends). Not ok() once close_python() has begun: then the caller must not touch any
// Python object, and leaks its references instead (the process is on its way out).
class python_scope {
 public:
  python_scope() noexcept;
  ~python_scope();
  python_scope(const python_scope&) = delete;
  python_scope& operator=(const python_scope&) = delete;

  bool ok() const noexcept { return mode_ != mode::closed; }

 private:
  enum class mode { closed, held, restored, ensured };
  mode mode_ = mode::closed;
  PyGILState_STATE state_{};
};

}  // namespace background::python

#endif  // BACKGROUND_PYTHON_INTERPRETER_HPP
