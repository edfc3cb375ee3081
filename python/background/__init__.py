"""background: run a function in the background with one call, and get a future back.

The seed's module (Kenneth Reitz's `background`), unchanged in use, on the C++ core:

    import background

    @background.task
    def send_email(to, subject, body):
        ...                      # runs on a background thread

    future = send_email("alice@example.com", "Hello", "How are you?")  # returns at once
    background.n = 8             # resizes the default pool, at once
    future.result()              # waits, if you want to

`task`, `run`, `n`, `callback`, `callbacks`, `results`, `pool` and `default_n` mean what they
meant; `wait`, `Executor` and `Future` are new. See the README's Python section for what is
fixed (n that takes effect at once and shrinks, validation, bounded `results`, nested waits,
unretrieved exceptions, exit) and for the one-line route to a Dask cluster.
"""
import atexit
import collections
import functools
import sys
import types

from . import _core
from ._executor import (Executor, _check_size, _default_pool, _default_pool_if_made,
                        _live)
from ._future import ForkedError, Future

__all__ = ["task", "run", "n", "callback", "callbacks", "results", "pool", "wait", "default_n",
           "Executor", "Future", "ForkedError"]


def default_n():
    """The number of CPUs this process may use (affinity mask and cgroup CPU quota): the
    default pool's size unless `n` is assigned."""
    return _core.default_n()


# The executor that run() and task() submit to: `pool` (see _Module.pool).
_default_executor = Executor._on_default_pool()
_pool = _default_executor

# Functions called with each future that task() returns, from their registration on.
callbacks = []

# The last 1,000 futures that task() and run() returned. The original kept every future for
# ever (200,000 tasks: 15 MiB -> 345 MiB); assign a list to get that back, or any container
# with append().
results = collections.deque(maxlen=1000)


def run(f, *args, **kwargs):
    """Submits f(*args, **kwargs) to `pool` and returns its future at once."""
    executor = _pool
    if executor is _default_executor:
        # The default pool's executor.submit(), without its frame: the per-task cost is most
        # of what this module is measured by (bench/python).
        native = _default_pool_if_made() or _default_pool()
        future = Future()
        future._native = native.submit(future, f, args, kwargs or None)
    else:
        future = executor.submit(f, *args, **kwargs)
    results.append(future)
    return future


def task(f):
    """Decorator: each call of the decorated function submits f(*args, **kwargs) to `pool` and
    returns its future at once; the functions registered with callback() are added to it as
    done-callbacks."""

    @functools.wraps(f)
    def submit(*args, **kwargs):
        future = run(f, *args, **kwargs)
        for cb in callbacks:
            future.add_done_callback(cb)
        return future

    return submit


def callback(f):
    """Decorator: registers f(future), called when each future that task() returns from now on
    is done (on the thread that finished it, or at once if it already is). Returns f."""
    callbacks.append(f)
    return f


def wait(timeout=None):
    """Blocks until the default pool has nothing queued or running (including what is submitted
    meanwhile). Returns True, or False if `timeout` seconds passed first. RuntimeError from a
    task of the default pool (it would wait for itself). Ctrl-C interrupts it."""
    native = _default_pool_if_made()
    return True if native is None else native.wait(timeout)


class _Module(types.ModuleType):
    """The module's own class, so that assigning `n` and `pool` acts at once."""

    @property
    def n(self):
        """The default pool's size. Assigning resizes it at once, from any thread (growing
        starts threads now, and queued tasks start on them; shrinking never blocks). TypeError
        unless an int, ValueError unless positive; nothing changes then. Only the native pool:
        a `pool` assigned elsewhere (Dask) is not resized."""
        return _default_pool().size

    @n.setter
    def n(self, value):
        _default_pool().resize(_check_size(value, "background.n"))

    @property
    def pool(self):
        """The executor that run() and task() submit to: by default a background.Executor on
        the default pool. Assign any concurrent.futures.Executor (anything with submit(), such
        as a Dask client's get_executor()) to send later tasks there."""
        return _pool

    @pool.setter
    def pool(self, executor):
        if not callable(getattr(executor, "submit", None)):
            raise TypeError(
                f"background.pool needs an executor with submit(), not {type(executor).__name__}")
        global _pool
        _pool = executor


sys.modules[__name__].__class__ = _Module


@atexit.register
def _at_exit():
    # Runs what is queued, as ThreadPoolExecutor does at exit, while the interpreter is whole
    # (from here on only the pools' own tasks may submit: their follow-ups run too); then
    # closes the door: no task runs Python code any more (python/src/interpreter.hpp).
    _core.begin_exit()
    native = _default_pool_if_made()
    executors = list(_live)
    try:
        if native is not None and native.used:
            native.wait()
        for executor in executors:
            executor._pool.wait()
    finally:
        _core.close()
    # No worker runs Python any more: join them all (left running, a worker's thread would
    # outlive the interpreter with nothing to do).
    for pool in [native] + [executor._pool for executor in executors]:
        if pool is not None:
            try:
                pool.finish()
            except RuntimeError:  # called from one of its own tasks (a daemon's sys.exit)
                pass
