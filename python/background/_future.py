"""background.Future: a concurrent.futures.Future whose waits help, and whose lost errors are told."""
import concurrent.futures
import logging
from concurrent.futures._base import FINISHED

from . import _core

_LOGGER = logging.getLogger("background")


class ForkedError(RuntimeError):
    """Raised by result() in a child process made by fork() (os.fork, multiprocessing's "fork"
    start method) for a call that was queued or running in the parent when it forked: it runs
    (or ran) there, never in the child."""


class Future(concurrent.futures.Future):
    """A concurrent.futures.Future for a call that a background pool runs.

    Everything concurrent.futures.Future does, plus:

    - result() and exception() without a timeout, called from a task running on a pool, run the
      awaited call on the waiting thread if no worker has started it: a task may wait for
      another even when every worker is waiting (n = 1), where ThreadPoolExecutor deadlocks.
    - cancel() also takes the call out of its pool's queue, so it holds no memory and no worker.
    - An exception that nobody retrieved (result(), exception(), or a done-callback that calls
      them) is logged once, on the "background" logger with its traceback, when the future is
      collected, as asyncio does for tasks.
    """

    def __init__(self):
        super().__init__()
        self._native = None  # the pool's handle on the call (_core.NativeFuture)
        self._retrieved = False

    def cancel(self):
        if not super().cancel():
            return False
        native = self._native
        if native is not None:
            native.cancel()
        return True

    def _help(self, timeout):
        # Timed waits do not run tasks (they could not keep their bound), as in the C++ core.
        native = self._native
        # Only runs the call here if no worker has started it; otherwise the wait is on this
        # future's own condition, which the call settles as soon as it returns (the native
        # task ends later: its worker may go on with a batch of unstarted calls first).
        if timeout is None and native is not None and not self.done() and _core.on_worker():
            native.help()

    def _check_forked(self):
        # In a child process made by fork(), a call that was queued or running in the parent
        # never runs here: its future fails at once rather than waiting for ever.
        native = self._native
        if native is not None and not self.done() and native.forked():
            try:
                self.set_exception(ForkedError(
                    "the call belongs to the parent process: it was queued or running when this "
                    "process was forked, and never runs in this one"))
            except concurrent.futures.InvalidStateError:  # settled meanwhile
                pass
            self._retrieved = True  # nobody lost it: never logged

    def result(self, timeout=None):
        self._check_forked()
        self._help(timeout)
        try:
            return super().result(timeout)
        except concurrent.futures.TimeoutError:
            raise
        except BaseException:
            self._retrieved = True
            raise

    def exception(self, timeout=None):
        self._check_forked()
        self._help(timeout)
        error = super().exception(timeout)
        self._retrieved = True
        return error

    def __del__(self):
        if self._state != FINISHED or self._exception is None or self._retrieved:
            return
        try:
            # The record gets the repr, not the future: a handler that keeps records (pytest's
            # caplog) would otherwise bring the future back to life.
            _LOGGER.error(
                "exception in a background task was never retrieved: %s",
                repr(self),
                exc_info=(type(self._exception), self._exception, self._exception.__traceback__),
            )
        except Exception:  # logging torn down at exit: nothing left to tell
            pass
