"""The module's names: task, run, callback/callbacks, results, pool, default_n, wait, Future."""
import collections
import importlib
import concurrent.futures as cf
import os
import threading

import pytest

from conftest import T, run_py, assert_no_crash


def test_every_name_is_there(bg):
    for name in ("task", "run", "n", "default_n", "callback", "callbacks", "results",
                 "pool", "wait", "Executor", "Future"):
        assert hasattr(bg, name), name
    assert importlib.import_module("background._core")  # the native part


def test_future_is_a_concurrent_futures_future(bg):
    assert issubclass(bg.Future, cf.Future)
    f = bg.run(lambda: 1)
    assert isinstance(f, bg.Future)
    assert f.result(timeout=T) == 1


def test_default_pool_is_a_background_executor(bg):
    assert isinstance(bg.pool, bg.Executor)
    assert isinstance(bg.pool, cf.Executor)


def test_default_pool_is_the_pool_n_resizes(bg):
    bg.n = 3
    assert bg.pool.n == 3
    bg.n = 1
    assert bg.pool.n == 1


def test_default_n_is_the_cpus_this_process_may_use(bg):
    d = bg.default_n()
    assert isinstance(d, int) and not isinstance(d, bool)
    assert 1 <= d <= len(os.sched_getaffinity(0))


def test_fresh_interpreter_starts_with_n_equal_default_n():
    proc = run_py("import background as b; print(b.n, b.default_n())")
    assert proc.returncode == 0, proc.stderr
    assert_no_crash(proc)
    n, d = proc.stdout.split()
    assert n == d


# ---------------------------------------------------------------- task

def test_task_keeps_name_and_doc(bg):
    def greet(name):
        """Says hello."""
        return "hello " + name

    wrapped = bg.task(greet)
    assert wrapped.__name__ == "greet"
    assert wrapped.__doc__ == "Says hello."
    assert wrapped.__wrapped__ is greet


def test_task_passes_args_and_kwargs_and_returns_the_value(bg):
    @bg.task
    def f(a, b, *rest, c=0, **kw):
        return (a, b, rest, c, kw)

    fut = f(1, 2, 3, c=4, d=5)
    assert isinstance(fut, cf.Future)
    assert fut.result(timeout=T) == (1, 2, (3,), 4, {"d": 5})


def test_task_returns_at_once_while_the_pool_is_busy(bg):
    bg.n = 1
    gate = threading.Event()
    started = threading.Event()
    blocker = bg.run(gate.wait, T)

    @bg.task
    def work():
        started.set()
        return 7

    try:
        fut = work()  # the only worker is blocked: this must not run work() here
        assert not fut.done()
        assert not started.is_set()
    finally:
        gate.set()
    assert fut.result(timeout=T) == 7
    assert blocker.result(timeout=T) is True


def test_task_runs_off_the_calling_thread(bg):
    main = threading.get_ident()
    fut = bg.task(threading.get_ident)()
    assert fut.result(timeout=T) != main


def test_task_exception_goes_to_the_future(bg):
    @bg.task
    def boom():
        raise ValueError("boom-1")

    fut = boom()
    with pytest.raises(ValueError, match="boom-1"):
        fut.result(timeout=T)
    assert isinstance(fut.exception(), ValueError)


def test_task_future_is_appended_to_results(bg):
    fut = bg.task(lambda: 3)()
    assert bg.results[-1] is fut
    fut.result(timeout=T)


# ---------------------------------------------------------------- run

def test_run_submits_one_call_and_appends_to_results(bg):
    def add(a, b=0):
        return a + b

    fut = bg.run(add, 2, b=5)
    assert isinstance(fut, bg.Future)
    assert bg.results[-1] is fut
    assert fut.result(timeout=T) == 7


def test_run_uses_background_pool(bg):
    with cf.ThreadPoolExecutor(1, thread_name_prefix="other-pool") as ex:
        bg.pool = ex
        fut = bg.run(lambda: threading.current_thread().name)
        assert fut.result(timeout=T).startswith("other-pool")


# ---------------------------------------------------------------- callbacks

def test_callback_registers_and_returns_f(bg):
    def cb(fut):
        pass

    assert bg.callback(cb) is cb
    assert cb in bg.callbacks
    assert bg.callbacks[-1] is cb


def test_callbacks_are_attached_to_task_futures(bg):
    seen = []
    called = threading.Event()

    @bg.callback
    def cb(fut):
        seen.append(fut)
        called.set()

    fut = bg.task(lambda: "v")()
    assert called.wait(T)
    assert seen == [fut]
    assert seen[0].result() == "v"


def test_every_callback_is_attached_in_order(bg):
    order = []
    done = threading.Event()

    @bg.callback
    def first(fut):
        order.append(("first", fut.result()))

    @bg.callback
    def second(fut):
        order.append(("second", fut.result()))
        done.set()

    bg.task(lambda: 9)()
    assert done.wait(T)
    assert order == [("first", 9), ("second", 9)]


def test_seed_readme_callback_prints_result(bg, capsys):
    # The seed's "Advanced usage": a callback that prints future.result().
    done = threading.Event()

    @bg.task
    def work():
        return "Done!"

    @bg.callback
    def work_callback(future):
        print(future.result())
        done.set()

    work()
    assert done.wait(T)
    assert "Done!" in capsys.readouterr().out


def test_callbacks_apply_from_registration_on(bg):
    bg.n = 1
    seen = []
    later = threading.Event()
    before = bg.task(lambda: "before")()
    before.result(timeout=T)
    assert bg.wait(timeout=T)

    @bg.callback
    def cb(fut):
        seen.append(fut)
        later.set()

    after = bg.task(lambda: "after")()
    assert later.wait(T)
    assert seen == [after]
    assert before not in seen


def test_run_does_not_attach_callbacks(bg):
    seen = []
    task_seen = threading.Event()

    @bg.callback
    def cb(fut):
        seen.append(fut)
        task_seen.set()

    via_run = bg.run(lambda: "run")
    assert via_run.result(timeout=T) == "run"
    assert bg.wait(timeout=T)
    via_task = bg.task(lambda: "task")()
    assert task_seen.wait(T)
    assert bg.wait(timeout=T)
    assert via_task in seen
    assert via_run not in seen


# ---------------------------------------------------------------- results

def test_results_is_a_deque_of_1000(bg):
    assert isinstance(bg.results, collections.deque)
    assert bg.results.maxlen == 1000


@pytest.mark.parametrize("n", [1, 2, 4])
def test_results_keeps_the_last_1000(bg, n):
    bg.n = n
    bg.results.clear()
    noop = bg.task(lambda: None)
    futs = [noop() if i % 2 else bg.run(lambda: None) for i in range(1500)]
    assert bg.wait(timeout=T)
    assert len(bg.results) == 1000
    assert list(bg.results) == futs[-1000:]


def test_assigning_a_list_to_results_makes_later_calls_append_there(bg):
    mine = []
    bg.results = mine
    f1 = bg.task(lambda: 1)()
    f2 = bg.run(lambda: 2)
    assert bg.results is mine
    assert mine == [f1, f2]
    assert [f.result(timeout=T) for f in mine] == [1, 2]


# ---------------------------------------------------------------- pool

def test_assigning_an_executor_sends_later_tasks_there(bg):
    seen = threading.Event()

    @bg.callback
    def cb(fut):
        seen.set()

    with cf.ThreadPoolExecutor(2, thread_name_prefix="tpe-x") as ex:
        bg.pool = ex
        assert bg.pool is ex
        fut = bg.task(lambda: threading.current_thread().name)()
        assert fut.result(timeout=T).startswith("tpe-x")
        assert bg.results[-1] is fut
        assert seen.wait(T)  # callbacks are attached on any pool's futures


def test_assigning_a_background_executor(bg):
    with bg.Executor(2) as ex:
        bg.pool = ex
        fut = bg.run(lambda: 5)
        assert isinstance(fut, bg.Future)
        assert fut.result(timeout=T) == 5


def test_anything_with_a_callable_submit_is_a_pool(bg):
    class Inline:
        def __init__(self):
            self.calls = 0

        def submit(self, fn, *args, **kwargs):
            self.calls += 1
            f = cf.Future()
            f.set_result(fn(*args, **kwargs))
            return f

    inline = Inline()
    bg.pool = inline
    assert bg.task(lambda x: x * 2)(21).result() == 42
    assert bg.run(lambda: "r").result() == "r"
    assert inline.calls == 2


@pytest.mark.parametrize("bad", [None, 3, object(), "pool", type("NoCall", (), {"submit": 5})()])
def test_assigning_something_without_submit_raises_and_keeps_the_pool(bg, bad):
    before = bg.pool
    with pytest.raises(TypeError):
        bg.pool = bad
    assert bg.pool is before
    assert bg.run(lambda: 1).result(timeout=T) == 1


# ---------------------------------------------------------------- wait

@pytest.mark.parametrize("n", [1, 2, 4])
def test_wait_returns_true_once_idle(bg, n):
    bg.n = n
    futs = [bg.run(sum, range(1000)) for _ in range(50)]
    assert bg.wait() is True
    assert all(f.done() for f in futs)


def test_wait_returns_false_when_the_timeout_expires(bg):
    gate = threading.Event()
    fut = bg.run(gate.wait, T)
    try:
        assert bg.wait(timeout=0.05) is False
        assert not fut.done()
    finally:
        gate.set()
    assert bg.wait(timeout=T) is True
    assert fut.result() is True


def test_wait_from_a_default_pool_task_raises_runtime_error(bg):
    fut = bg.run(bg.wait)
    assert isinstance(fut.exception(timeout=T), RuntimeError)
    fut2 = bg.run(bg.wait, 1)
    assert isinstance(fut2.exception(timeout=T), RuntimeError)


def test_wait_from_another_executor_is_allowed(bg):
    with bg.Executor(1) as ex:
        assert ex.submit(bg.wait, T).result(timeout=T) is True
