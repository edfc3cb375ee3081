"""background.Future: the concurrent.futures.Future protocol, cancel, nested waits, exceptions, GIL."""
import asyncio
import concurrent.futures as cf
import threading

import pytest

from conftest import T


class Boom(Exception):
    pass


class MyBase(BaseException):
    pass


# ---------------------------------------------------------------- the protocol

def test_result_timeout_raises_timeout_error(bg):
    gate = threading.Event()
    f = bg.run(gate.wait, T)
    try:
        with pytest.raises(cf.TimeoutError):
            f.result(timeout=0.05)
        with pytest.raises(cf.TimeoutError):
            f.exception(timeout=0.05)
        assert not f.done()
        assert f.running() or not f.done()
    finally:
        gate.set()
    assert f.result(timeout=T) is True
    assert f.done() and not f.cancelled() and not f.running()


def test_exception_and_result(bg):
    def boom():
        raise Boom("x1")

    f = bg.run(boom)
    e = f.exception(timeout=T)
    assert isinstance(e, Boom) and str(e) == "x1"
    with pytest.raises(Boom, match="x1"):
        f.result()
    ok = bg.run(lambda: 5)
    assert ok.exception(timeout=T) is None


def test_add_done_callback_before_and_after_done(bg):
    gate = threading.Event()
    got = []
    called = threading.Event()
    f = bg.run(gate.wait, T)

    def cb(fut):
        got.append(fut)
        called.set()

    f.add_done_callback(cb)
    gate.set()
    assert called.wait(T)
    assert got == [f]
    late = []
    f.add_done_callback(late.append)  # already done: called at once, in this thread
    assert late == [f]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_cancel_a_queued_future(bg, n):
    bg.n = n
    gate = threading.Event()
    barrier = threading.Barrier(n + 1, timeout=T)
    ran = []

    def block():
        barrier.wait()
        return gate.wait(T)

    blockers = [bg.run(block) for _ in range(n)]
    barrier.wait()  # every worker is busy: the next task stays queued
    queued = bg.run(ran.append, "ran")
    try:
        assert queued.cancel() is True
        assert queued.cancelled()
        assert queued.done()
        assert queued.cancel() is True  # cancelling again: still cancelled
    finally:
        gate.set()
    assert all(b.result(timeout=T) for b in blockers)
    assert bg.wait(timeout=T)
    assert ran == []
    with pytest.raises(cf.CancelledError):
        queued.result(timeout=T)
    with pytest.raises(cf.CancelledError):
        queued.exception(timeout=T)


def test_cancel_calls_done_callbacks(bg):
    bg.n = 1
    gate = threading.Event()
    started = threading.Event()
    blocker = bg.run(lambda: (started.set(), gate.wait(T))[1])
    assert started.wait(T)
    queued = bg.run(lambda: None)
    seen = []
    queued.add_done_callback(seen.append)
    try:
        assert queued.cancel()
        assert seen == [queued]
    finally:
        gate.set()
    blocker.result(timeout=T)


def test_cancel_a_running_or_finished_future_returns_false(bg):
    gate = threading.Event()
    started = threading.Event()

    def work():
        started.set()
        return gate.wait(T)

    f = bg.run(work)
    assert started.wait(T)
    try:
        assert f.running()
        assert f.cancel() is False
    finally:
        gate.set()
    assert f.result(timeout=T) is True
    assert f.cancel() is False
    assert not f.cancelled()


def test_cancel_on_an_executor(bg):
    gate = threading.Event()
    started = threading.Event()
    ran = []
    with bg.Executor(1) as ex:
        first = ex.submit(lambda: (started.set(), gate.wait(T))[1])
        assert started.wait(T)
        queued = [ex.submit(ran.append, i) for i in range(3)]
        try:
            assert [f.cancel() for f in queued] == [True, True, True]
        finally:
            gate.set()
        assert first.result(timeout=T) is True
    assert ran == []


def test_concurrent_futures_wait_over_a_mix(bg):
    gate = threading.Event()
    with cf.ThreadPoolExecutor(1) as tpe, bg.Executor(1) as ex:
        slow = bg.run(gate.wait, T)
        quick_tpe = tpe.submit(lambda: "tpe")
        quick_ex = ex.submit(lambda: "ex")
        try:
            done, not_done = cf.wait([slow, quick_tpe, quick_ex], timeout=T,
                                     return_when=cf.FIRST_COMPLETED)
            assert done and slow not in done
            assert slow in not_done
        finally:
            gate.set()
        done, not_done = cf.wait([slow, quick_tpe, quick_ex], timeout=T)
        assert not not_done
        assert {f.result() for f in done} == {True, "tpe", "ex"}


def test_concurrent_futures_wait_first_exception(bg):
    gate = threading.Event()

    def boom():
        raise Boom()

    slow = bg.run(gate.wait, T)
    bad = bg.run(boom)
    try:
        done, not_done = cf.wait([slow, bad], timeout=T, return_when=cf.FIRST_EXCEPTION)
        assert bad in done and slow in not_done
    finally:
        gate.set()
    slow.result(timeout=T)
    bad.exception()


@pytest.mark.parametrize("n", [1, 2, 4])
def test_as_completed_over_a_mix(bg, n):
    bg.n = n
    with cf.ThreadPoolExecutor(2) as tpe, bg.Executor(n) as ex:
        futs = ([bg.run(lambda i=i: ("run", i)) for i in range(10)]
                + [bg.task(lambda i=i: ("task", i))() for i in range(10)]
                + [ex.submit(lambda i=i: ("ex", i)) for i in range(10)]
                + [tpe.submit(lambda i=i: ("tpe", i)) for i in range(10)])
        got = [f.result() for f in cf.as_completed(futs, timeout=T)]
    assert sorted(got) == sorted(f.result() for f in futs)
    assert len(got) == 40


def test_as_completed_yields_in_completion_order(bg):
    bg.n = 2
    gate = threading.Event()
    slow = bg.run(gate.wait, T)
    fast = bg.run(lambda: "fast")
    it = cf.as_completed([slow, fast], timeout=T)
    assert next(it) is fast
    gate.set()
    assert next(it) is slow


def test_asyncio_wrap_future(bg):
    async def main():
        a = await asyncio.wrap_future(bg.run(lambda: 41))
        b = await asyncio.wrap_future(bg.task(lambda x: x + 1)(41))
        results = await asyncio.gather(*(asyncio.wrap_future(bg.run(pow, 2, i)) for i in range(8)))
        with pytest.raises(Boom):
            await asyncio.wrap_future(bg.run(_raise_boom))
        return a, b, results

    a, b, results = asyncio.run(main())
    assert (a, b) == (41, 42)
    assert results == [2 ** i for i in range(8)]


def _raise_boom():
    raise Boom("async")


def test_asyncio_wrap_future_from_an_executor(bg):
    async def main():
        with bg.Executor(2) as ex:
            return await asyncio.wrap_future(ex.submit(lambda: "ex"))

    assert asyncio.run(main()) == "ex"


def test_run_in_executor_with_background_executor(bg):
    async def main():
        loop = asyncio.get_running_loop()
        with bg.Executor(2) as ex:
            return await loop.run_in_executor(ex, pow, 3, 3)

    assert asyncio.run(main()) == 27


# ---------------------------------------------------------------- nested waits

@pytest.mark.parametrize("n", [1, 2, 4])
def test_nested_wait_on_a_queued_task_completes(bg, n):
    bg.n = n
    barrier = threading.Barrier(n, timeout=T)
    calls = []
    lock = threading.Lock()

    def inner(i):
        with lock:
            calls.append(i)
        return i * 10

    def outer(i):
        barrier.wait()  # every worker runs an outer: each inner is queued
        return bg.run(inner, i).result()  # no timeout

    futs = [bg.run(outer, i) for i in range(n)]
    assert [f.result(timeout=T + 10) for f in futs] == [i * 10 for i in range(n)]
    assert bg.wait(timeout=T)
    assert sorted(calls) == list(range(n))  # each inner ran once


def test_nested_wait_through_task_decorator_at_n_1(bg):
    bg.n = 1

    @bg.task
    def inner():
        return "inner"

    @bg.task
    def outer():
        return inner().result() + "+outer"

    assert outer().result(timeout=T) == "inner+outer"


def test_nested_wait_chain_of_depth_50_at_n_1(bg):
    bg.n = 1

    def chain(depth):
        if depth == 0:
            return 0
        return bg.run(chain, depth - 1).result() + 1

    assert bg.run(chain, 50).result(timeout=T) == 50


@pytest.mark.parametrize("n", [1, 2, 4])
def test_nested_wait_on_an_executor(bg, n):
    with bg.Executor(n) as ex:
        barrier = threading.Barrier(n, timeout=T)

        def outer(i):
            barrier.wait()
            return ex.submit(lambda: i + 100).result()

        futs = [ex.submit(outer, i) for i in range(n)]
        assert [f.result(timeout=T + 10) for f in futs] == [i + 100 for i in range(n)]


def test_nested_wait_chain_on_an_executor_1(bg):
    with bg.Executor(1) as ex:
        def chain(depth):
            if depth == 0:
                return "bottom"
            return ex.submit(chain, depth - 1).result()

        assert ex.submit(chain, 50).result(timeout=T) == "bottom"


# ---------------------------------------------------------------- exceptions

@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), MyBase("mine")],
                         ids=["SystemExit", "KeyboardInterrupt", "BaseException-subclass"])
def test_base_exceptions_go_to_the_future(bg, exc):
    bg.n = 1

    def raise_it():
        raise exc

    f = bg.run(raise_it)
    assert f.exception(timeout=T) is exc
    with pytest.raises(type(exc)):
        f.result()
    # The (only) worker survived.
    assert bg.run(lambda: "alive").result(timeout=T) == "alive"


def test_sys_exit_in_a_task(bg):
    import sys
    f = bg.task(sys.exit)(5)
    e = f.exception(timeout=T)
    assert isinstance(e, SystemExit) and e.code == 5


def test_base_exception_on_an_executor(bg):
    with bg.Executor(1) as ex:
        f = ex.submit(_raise_system_exit)
        assert isinstance(f.exception(timeout=T), SystemExit)
        assert ex.submit(lambda: 1).result(timeout=T) == 1


def _raise_system_exit():
    raise SystemExit(0)


# ---------------------------------------------------------------- the GIL

@pytest.mark.parametrize("n", [1, 2, 4])
def test_gil_released_while_main_waits_in_result(bg, n):
    bg.n = n
    # The task needs the GIL to make progress; main blocks in result() without a timeout.
    f = bg.run(lambda: sum(i * i for i in range(200_000)))
    assert f.result() == sum(i * i for i in range(200_000))


def test_gil_released_while_main_waits_in_background_wait(bg):
    bg.n = 2
    box = []
    bg.run(lambda: box.append(sum(range(300_000))))
    assert bg.wait() is True
    assert box == [sum(range(300_000))]


def test_gil_released_a_task_hands_off_to_a_python_thread(bg):
    # Main blocks in result(); the task waits for a plain Python thread that needs the GIL.
    ready = threading.Event()
    t = threading.Thread(target=lambda: (sum(range(100_000)), ready.set()))

    def task():
        t.start()
        return ready.wait(T)

    assert bg.run(task).result() is True
    t.join(T)


def test_gil_released_while_main_waits_on_an_executor_future(bg):
    with bg.Executor(1) as ex:
        f = ex.submit(lambda: sorted(range(100_000), key=lambda x: -x)[0])
        assert f.result() == 99_999
