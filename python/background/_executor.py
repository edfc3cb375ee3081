"""background.Executor: a concurrent.futures.Executor on a pool of the C++ core."""
import concurrent.futures
import logging
import operator
import threading
import weakref
from concurrent.futures.thread import BrokenThreadPool

from . import _core
from ._future import Future

_LOGGER = logging.getLogger("concurrent.futures")

# Executors whose pools still run: run to the end at interpreter exit (see __init__._at_exit).
_live = weakref.WeakSet()


_default_native = None
_default_lock = threading.Lock()


def _default_pool():
    """The package's default native pool, made on first use: importing starts no thread."""
    global _default_native
    if _default_native is None:
        with _default_lock:
            if _default_native is None:
                _default_native = _core.default_pool()
    return _default_native


def _default_pool_if_made():
    return _default_native


def _check_size(value, what):
    """A positive int, or TypeError (bool and non-ints) / ValueError (<= 0)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if value <= 0:
        raise ValueError(f"{what} must be greater than 0, got {value}")
    return value


_BROKEN = "A thread initializer failed, the thread pool is not usable anymore"


class _Initializer:
    """The thread-start hook of an executor with an initializer: runs it on each new worker; a
    failure breaks the pool, as in ThreadPoolExecutor. Holds the pool weakly (the pool holds
    it), and remembers a failure that comes before it knows the pool (workers start inside the
    pool's constructor)."""

    def __init__(self, initializer, initargs):
        self._initializer = initializer
        self._initargs = initargs
        self._lock = threading.Lock()
        self._pool = None
        self._failed = False

    def attach(self, pool):
        with self._lock:
            self._pool = weakref.ref(pool)
            if self._failed:
                pool.mark_broken(_BROKEN)

    def __call__(self):
        try:
            self._initializer(*self._initargs)
        except BaseException:
            _LOGGER.critical("Exception in initializer:", exc_info=True)
            with self._lock:
                self._failed = True
                pool = self._pool() if self._pool is not None else None
                if pool is not None:
                    pool.mark_broken(_BROKEN)


class Executor(concurrent.futures.Executor):
    """A drop-in for concurrent.futures.ThreadPoolExecutor on a native pool.

    Same constructor, submit(), map(), shutdown(wait=True, *, cancel_futures=False) and context
    manager; futures are background.Future. Unlike ThreadPoolExecutor, its threads start at once
    (max_workers of them), resize(n) or the n property change their number at once (shrinking
    never blocks), and a task may wait for another task of the same executor without deadlock.
    """

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        if max_workers is None:
            max_workers = _core.default_n()
        max_workers = _check_size(max_workers, "max_workers")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        start = _Initializer(initializer, initargs) if initializer is not None else None
        # Futures not yet collected, for shutdown(cancel_futures=True) to cancel at once those
        # that have not started (a queued call holds its future, so it stays here until it runs).
        self._pending = weakref.WeakSet()
        self._pool = _core.Pool(max_workers, thread_name_prefix or "executor", start)
        if start is not None:
            start.attach(self._pool)
        _live.add(self)

    @classmethod
    def _on_default_pool(cls):
        """The executor of background.run and background.task: the default pool."""
        return _DefaultExecutor()

    def submit(self, fn, /, *args, **kwargs):
        pool = self._pool
        if pool.broken:
            raise BrokenThreadPool(_BROKEN)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = Future()
        future._native = pool.submit(future, fn, args, kwargs or None)
        if self._pending is not None:
            self._pending.add(future)
        return future

    submit.__doc__ = concurrent.futures.Executor.submit.__doc__

    @property
    def n(self):
        """The number of threads; assign to resize at once (see resize())."""
        return self._pool.size

    @n.setter
    def n(self, value):
        self.resize(value)

    def resize(self, n):
        """Sets the number of threads at once: growing starts them now, and queued calls start
        on them; shrinking never blocks (surplus threads leave after their current call).
        TypeError unless n is an int, ValueError unless it is positive."""
        self._pool.resize(_check_size(n, "n"))

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Takes no more calls; with cancel_futures, cancels those that have not started. With
        wait, returns once the rest have run. The default pool's executor never closes: there,
        this only waits (if wait)."""
        if self._pool.is_default:
            if wait:
                self._pool.wait()
            return
        with self._shutdown_lock:
            self._shutdown = True
        if cancel_futures:
            # At once, as ThreadPoolExecutor does, even without wait; the pool's own
            # cancel_pending then catches what was submitted meanwhile.
            for future in list(self._pending):
                future.cancel()
        self._pool.shutdown(wait, cancel_futures)
        if wait:
            _live.discard(self)



class _DefaultExecutor(Executor):
    """background.pool's default: an Executor on the package's default pool, made on first
    use; shutdown() only waits (the default pool lives as long as the process)."""

    def __init__(self):  # noqa: super().__init__ would make a pool of its own
        self._pending = None
        self._shutdown_lock = threading.Lock()
        self._shutdown = False

    @property
    def _pool(self):
        return _default_pool()
