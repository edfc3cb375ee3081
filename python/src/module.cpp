// background._core: the native half of the Python package (python/background/): pools of the
// C++ core that run Python calls. The package's Python side gives them their Python faces.
#include <pthread.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include "background/background.hpp"
#include "background/detail/core.hpp"  // help_run
#include "cpu_count.hpp"               // the core's src/: how the default pool is sized
#include "interpreter.hpp"
#include "native_pool.hpp"
#include "python_call.hpp"

namespace py = pybind11;
using background::python::native_pool;

namespace {

// A native future: what a Python future needs of its task beyond the Python side.
struct native_future {
  background::future<void> future;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "The native half of background: pools of the C++ core that run Python calls.";
  background::python::init_python_call();
  // fork(): see reset_door_after_fork(). The core's own handlers renew the pools.
  pthread_atfork(nullptr, nullptr, [] { background::python::reset_door_after_fork(); });

  // shutdown_error is a std::runtime_error: pybind11 makes it a RuntimeError, as
  // ThreadPoolExecutor raises after shutdown. std::logic_error (wait() from the pool's own
  // task) becomes RuntimeError too, and std::invalid_argument a ValueError.

  py::class_<native_future>(m, "NativeFuture")
      .def(
          "cancel", [](const native_future& f) { return f.future.cancel(); },
          "Cancels the task if it has not started; true if it did.")
      .def("done", [](const native_future& f) { return f.future.done(); })
      .def(
          "forked",
          [](const native_future& f) {
            return background::detail::forked_done(
                background::detail::future_access::state(f.future));
          },
          "In a child process made by fork(): whether the task is the parent's, which never "
          "runs here.")
      .def(
          "help",
          [](const native_future& f) {
            // With the GIL held: the call, run here, finds it (python_scope) and keeps it.
            return background::detail::help_run(background::detail::future_access::state(f.future));
          },
          "On a worker, runs the task on this thread if no worker has started it; returns "
          "whether it did. Never waits: a task started elsewhere settles its Python future "
          "before its worker goes on (the worker's backlog batch, run_backlog, comes after), "
          "so waiting on the Python future is waiting for the call alone.");

  py::class_<native_pool>(m, "Pool")
      .def(py::init([](std::size_t threads, std::string name, py::object thread_start) {
             if (threads == 0) throw std::invalid_argument("a pool needs at least one thread");
             background::python::gil_unlocked unlocked;  // the new workers' start hooks need it
             return new native_pool(threads, std::move(name), thread_start.ptr());
           }),
           py::arg("threads"), py::arg("name"), py::arg("thread_start") = py::none())
      .def(
          "submit",
          [](native_pool& p, py::handle future, py::handle fn, py::handle args, py::handle kwargs) {
            if (background::python::python_closed() ||
                (background::python::exiting() && background::this_pool() == nullptr)) {
              // As ThreadPoolExecutor says it (see begin_exit()).
              throw std::runtime_error("cannot schedule new futures after interpreter shutdown");
            }
            return native_future{p.submit(future.ptr(), fn.ptr(), args.ptr(),
                                          kwargs.is_none() ? nullptr : kwargs.ptr())};
          },
          "Queues fn(*args, **kwargs) for the concurrent.futures.Future `future`.")
      .def_property_readonly("size", &native_pool::size)
      .def("resize",
           [](native_pool& p, std::size_t threads) {
             background::python::gil_unlocked unlocked;
             p.resize(threads);
           })
      .def("wait", &native_pool::wait, py::arg("timeout") = py::none())
      .def("shutdown", &native_pool::shutdown, py::arg("wait"), py::arg("cancel"))
      .def("finish", &native_pool::finish)
      .def("mark_broken", &native_pool::mark_broken)
      .def_property_readonly("broken", &native_pool::broken)
      .def_property_readonly("is_default", &native_pool::is_default)
      .def_property_readonly("used", &native_pool::used)
      .def("stats", [](const native_pool& p) {
        const background::pool_stats s = p.stats();
        py::dict d;
        d["threads"] = s.threads;
        d["busy"] = s.busy;
        d["queued"] = s.queued;
        d["completed"] = s.completed;
        d["failed"] = s.failed;
        d["cancelled"] = s.cancelled;
        return d;
      });

  // The package's default pool (background.pool, n, wait), made on first use (importing
  // starts no thread). The package's own, not the core's background::default_pool(): its
  // workers get their Python thread state as they start, and `n = 110` returns with 110 ready
  // workers (the core's default pool takes no start hook). Never freed: it outlives the
  // interpreter (its workers stay out of Python once the door is closed).
  m.def(
      "default_pool",
      []() -> native_pool& {
        static native_pool* face = [] {
          background::python::gil_unlocked unlocked;  // its workers' start hooks need it
          auto* p = new native_pool(background::detail::available_cpus(), "background", nullptr);
          p->set_default();
          return p;
        }();
        return *face;
      },
      py::return_value_policy::reference);
  m.def(
      "default_n", [] { return background::detail::available_cpus(); },
      "The number of CPUs this process may use (affinity mask and cgroup CPU quota).");
  m.def(
      "on_worker", [] { return background::this_pool() != nullptr; },
      "Whether this thread is a worker of a pool (where nested waits run what they wait for).");
  m.def(
      "begin_exit", [] { background::python::begin_exit(); },
      "From now on only the pools' own tasks may submit. Called at exit, before the drain.");
  m.def(
      "close",
      [] {
        background::python::gil_unlocked unlocked;
        background::python::close_python();
      },
      "From now on no task runs Python code; returns once none does. Called at exit.");
}
