"""Shared fixtures and helpers for the background Python tests.

Run with Debian's interpreter:
    PYTHONPATH=<dir holding the background package> /usr/bin/python3 -m pytest python/tests -q
"""
import faulthandler
import gc
import os
import subprocess
import sys
import threading

import pytest

# Generous timeout for anything that waits on a barrier, an event or a future.
T = 30

# A hung test dumps every thread's stack and ends the run instead of hanging it.
HANG_LIMIT = 150
EXIT_LIMIT = 60

FATAL_MARKERS = ("Fatal Python error", "terminate called", "Segmentation", "Aborted")


_real_stderr = None


def pytest_configure(config):
    global _real_stderr
    # Output capture is suspended while plugins are configured: fd 2 is the real stderr here.
    _real_stderr = open(os.dup(2), "w")
    config.addinivalue_line(
        "markers", "dask: tests that send background tasks to a Dask cluster (select with -m dask)"
    )


def pytest_unconfigure(config):
    # Interpreter exit runs what is queued: a task left stuck by a failed test would hold the
    # exit for ever. Bound it (the stacks are dumped, and the process exits with status 1).
    faulthandler.dump_traceback_later(EXIT_LIMIT, exit=True, file=_real_stderr or sys.stderr)


@pytest.fixture(autouse=True)
def _hang_guard():
    faulthandler.dump_traceback_later(HANG_LIMIT, exit=True, file=_real_stderr or sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def bg():
    """The background module, with n, pool, results and callbacks restored afterwards."""
    import background

    saved_n = background.n
    saved_pool = background.pool
    saved_results = background.results
    saved_results_items = list(saved_results)
    saved_callbacks = background.callbacks
    saved_callbacks_items = list(saved_callbacks)
    try:
        yield background
    finally:
        background.pool = saved_pool
        background.callbacks = saved_callbacks
        saved_callbacks[:] = saved_callbacks_items
        background.results = saved_results
        saved_results.clear()
        saved_results.extend(saved_results_items)
        background.n = saved_n
        background.wait(timeout=T)
        gc.collect()


class Concurrency:
    """Counts how many callers are inside `enter`/`leave` at once (the high-water mark)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        return self

    def __exit__(self, *exc):
        with self._lock:
            self.now -= 1


def run_py(code, timeout=60):
    """Runs `code` in a fresh interpreter with this process's PYTHONPATH."""
    env = dict(os.environ)  # PYTHONPATH as in this process
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_no_crash(proc):
    for marker in FATAL_MARKERS:
        assert marker not in proc.stderr, proc.stderr
