"""A re-creation, for benchmarking only, of the shape of the PyPI package `background` 0.2.1.

Written from a description of its behaviour, not from its code. One module-level
ThreadPoolExecutor; run() resizes it from `n` (grow only, through the executor's private
attributes, as the original does) before each submit and keeps every future in `results`
forever; task() decorates a function so that calling it runs it on the pool and attaches every
function of `callbacks` to the future.
"""
import concurrent.futures
import functools
import multiprocessing

n = multiprocessing.cpu_count()
pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)
results = []
callbacks = []


def run(f, *args, **kwargs):
    """Submit f(*args, **kwargs) to the pool, after applying `n`; return its future."""
    pool._max_workers = n  # read at each call: a new n takes effect now (threads never go)
    pool._adjust_thread_count()
    future = pool.submit(f, *args, **kwargs)
    results.append(future)
    return future


def task(f):
    """Decorator: calling the result runs f in the background and returns its future."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        future = run(f, *args, **kwargs)
        for cb in callbacks:
            future.add_done_callback(cb)
        return future
    return wrapper


def callback(f):
    """Register f(future) to be called when any task() future is done."""
    callbacks.append(f)
    return f
