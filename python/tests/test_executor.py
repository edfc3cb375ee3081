"""background.Executor: a drop-in concurrent.futures.ThreadPoolExecutor on its own native pool."""
import concurrent.futures as cf
import sys
import threading
import time
from concurrent.futures.thread import BrokenThreadPool

import pytest

from conftest import T, Concurrency


@pytest.fixture
def executors():
    """Executors made by a test; shut down (without waiting) afterwards."""
    made = []
    yield made
    for ex in made:
        ex.shutdown(wait=False, cancel_futures=True)


def test_is_an_executor(bg):
    assert issubclass(bg.Executor, cf.Executor)
    with bg.Executor(1) as ex:
        f = ex.submit(lambda: 1)
        assert isinstance(f, bg.Future)
        assert f.result(timeout=T) == 1


@pytest.mark.parametrize("n", [1, 2, 4])
def test_submit_args_kwargs(bg, n):
    with bg.Executor(n) as ex:
        f = ex.submit(lambda a, b=0: a - b, 10, b=3)
        assert f.result(timeout=T) == 7


@pytest.mark.parametrize("n", [1, 2, 4])
def test_max_workers_tasks_run_at_once_and_no_more(bg, n):
    with bg.Executor(n) as ex:
        assert ex.n == n
        barrier = threading.Barrier(n, timeout=T)
        futs = [ex.submit(barrier.wait) for _ in range(n)]
        assert sorted(f.result(timeout=T) for f in futs) == list(range(n))
        c = Concurrency()

        def work():
            with c:
                time.sleep(0.005)

        for f in [ex.submit(work) for _ in range(6 * n)]:
            f.result(timeout=T)
        assert c.peak <= n


def test_own_pool_is_not_the_default_pool(bg):
    bg.n = 1
    with bg.Executor(3) as ex:
        assert ex.n == 3
        assert bg.n == 1
        barrier = threading.Barrier(3, timeout=T)
        futs = [ex.submit(barrier.wait) for _ in range(3)]
        assert sorted(f.result(timeout=T) for f in futs) == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_non_positive_raises_value_error(bg, bad):
    with pytest.raises(ValueError):
        bg.Executor(bad)
    with pytest.raises(ValueError):
        bg.Executor(max_workers=bad)


def test_max_workers_none_means_default_n(bg):
    with bg.Executor() as ex:
        assert ex.n == bg.default_n()
    with bg.Executor(None) as ex:
        assert ex.n == bg.default_n()


@pytest.mark.parametrize("n", [1, 2, 4])
def test_map(bg, n):
    with bg.Executor(n) as ex:
        assert list(ex.map(lambda x: x * x, range(20))) == [x * x for x in range(20)]
        assert list(ex.map(pow, [2, 3, 4], [5, 2, 1])) == [32, 9, 4]
        assert list(ex.map(str, range(10), chunksize=3)) == [str(i) for i in range(10)]
        assert list(ex.map(abs, [-1, -2], timeout=T)) == [1, 2]


def test_map_raises_the_task_exception_when_iterated(bg):
    def f(x):
        if x == 2:
            raise KeyError(x)
        return x

    with bg.Executor(2) as ex:
        it = ex.map(f, range(4))
        assert next(it) == 0
        assert next(it) == 1
        with pytest.raises(KeyError):
            next(it)


def test_map_timeout(bg):
    gate = threading.Event()
    with bg.Executor(1) as ex:
        try:
            it = ex.map(gate.wait, [T], timeout=0.05)
            with pytest.raises(cf.TimeoutError):
                list(it)
        finally:
            gate.set()


def test_shutdown_wait_true_waits_for_running_and_queued(bg):
    done = []
    ex = bg.Executor(1)

    def work(i):
        time.sleep(0.02)
        done.append(i)

    futs = [ex.submit(work, i) for i in range(5)]
    ex.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    assert all(f.done() and not f.cancelled() for f in futs)


def test_shutdown_wait_false_returns_and_queued_work_still_runs(bg):
    gate = threading.Event()
    ex = bg.Executor(1)
    first = ex.submit(gate.wait, T)
    rest = [ex.submit(lambda i=i: i) for i in range(3)]
    t = threading.Thread(target=ex.shutdown, kwargs={"wait": False}, daemon=True)
    t.start()
    t.join(T)
    try:
        assert not t.is_alive(), "shutdown(wait=False) blocked"
    finally:
        gate.set()
    assert first.result(timeout=T) is True
    assert [f.result(timeout=T) for f in rest] == [0, 1, 2]


def test_shutdown_cancel_futures(bg):
    gate = threading.Event()
    started = threading.Event()
    ran = []
    ex = bg.Executor(1)

    def first():
        started.set()
        return gate.wait(T)

    f0 = ex.submit(first)
    assert started.wait(T)
    queued = [ex.submit(ran.append, i) for i in range(5)]
    # As ThreadPoolExecutor does, shutdown() has cancelled the queued futures when it returns,
    # even with wait=False. (A long switch interval keeps this thread on the GIL, so that
    # another thread cannot finish the job between the return and the check.)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        ex.shutdown(wait=False, cancel_futures=True)
        states = [f.cancelled() for f in queued]
        sys.setswitchinterval(interval)
        assert states == [True] * 5
    finally:
        sys.setswitchinterval(interval)
        gate.set()
    assert f0.result(timeout=T) is True
    ex.shutdown(wait=True)
    assert ran == []
    for f in queued:
        with pytest.raises(cf.CancelledError):
            f.result(timeout=T)


def test_submit_after_shutdown_raises_runtime_error(bg):
    ex = bg.Executor(1)
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(lambda: 1)
    ex.shutdown()  # a second shutdown is harmless


def test_context_manager_shuts_down_and_waits(bg):
    done = []
    with bg.Executor(2) as ex:
        assert ex.__enter__() is ex
        futs = [ex.submit(lambda i=i: (time.sleep(0.01), done.append(i))) for i in range(6)]
    assert sorted(done) == list(range(6))
    assert all(f.done() for f in futs)
    with pytest.raises(RuntimeError):
        ex.submit(lambda: 1)


def test_thread_name_prefix(bg):
    with bg.Executor(2, thread_name_prefix="bgexec") as ex:
        names = {ex.submit(lambda: threading.current_thread().name).result(timeout=T) for _ in range(4)}
    assert all(name.startswith("bgexec") for name in names), names


def test_initializer_runs_in_each_worker_with_initargs(bg):
    lock = threading.Lock()
    calls = []
    local = threading.local()

    def init(a, b):
        with lock:
            calls.append((a, b, threading.get_ident()))
        local.ready = (a, b)

    with bg.Executor(2, initializer=init, initargs=("x", 2)) as ex:
        barrier = threading.Barrier(2, timeout=T)

        def work():
            barrier.wait()
            return getattr(local, "ready", None), threading.get_ident()

        results = [f.result(timeout=T) for f in [ex.submit(work) for _ in range(2)]]
    assert all(ready == ("x", 2) for ready, _ in results)
    worker_ids = {tid for _, tid in results}
    assert worker_ids <= {tid for _, _, tid in calls}
    assert all((a, b) == ("x", 2) for a, b, _ in calls)
    assert threading.get_ident() not in {tid for _, _, tid in calls}


@pytest.mark.parametrize("n", [1, 2])
def test_initializer_failure_breaks_the_executor(bg, executors, n):
    ran = []

    def bad_init():
        raise OSError("init failed")

    ex = bg.Executor(n, initializer=bad_init)
    executors.append(ex)
    # The initializer may fail before or after a submit: a submit either raises
    # BrokenThreadPool or returns a future that fails with it (pending ones too).
    futs = []
    for i in range(5):
        try:
            futs.append(ex.submit(ran.append, i))
        except BrokenThreadPool:
            pass
    for f in futs:
        assert isinstance(f.exception(timeout=T), BrokenThreadPool)
    assert ran == []
    with pytest.raises(BrokenThreadPool):
        ex.submit(ran.append, 99)
    assert ran == []


@pytest.mark.parametrize("n", [1, 2, 4])
def test_resize_and_n_property(bg, executors, n):
    ex = bg.Executor(n)
    executors.append(ex)
    assert ex.n == n
    ex.resize(n + 2)
    assert ex.n == n + 2
    ex.n = 1
    assert ex.n == 1
    assert ex.submit(lambda: "ok").result(timeout=T) == "ok"


@pytest.mark.parametrize("bad", [2.5, "2", None, True, False])
def test_resize_and_n_reject_non_ints(bg, executors, bad):
    ex = bg.Executor(2)
    executors.append(ex)
    with pytest.raises(TypeError):
        ex.resize(bad)
    with pytest.raises(TypeError):
        ex.n = bad
    assert ex.n == 2


@pytest.mark.parametrize("bad", [0, -3])
def test_resize_and_n_reject_non_positive(bg, executors, bad):
    ex = bg.Executor(2)
    executors.append(ex)
    with pytest.raises(ValueError):
        ex.resize(bad)
    with pytest.raises(ValueError):
        ex.n = bad
    assert ex.n == 2
    assert ex.submit(lambda: 1).result(timeout=T) == 1


def test_executor_resize_does_not_touch_default_pool(bg, executors):
    bg.n = 3
    ex = bg.Executor(1)
    executors.append(ex)
    ex.n = 4
    assert bg.n == 3


@pytest.mark.parametrize("n", [1, 2, 4])
def test_resize_grows_at_once(bg, executors, n):
    ex = bg.Executor(n)
    executors.append(ex)
    barrier = threading.Barrier(12, timeout=T)
    futs = [ex.submit(barrier.wait) for _ in range(12)]
    ex.resize(12)
    assert sorted(f.result(timeout=T + 5) for f in futs) == list(range(12))
