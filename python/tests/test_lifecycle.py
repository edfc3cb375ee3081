"""Threads, waits and pools at the edges of their lives: the races an independent review of the
native bridge found (python/src/interpreter.cpp, native_pool.cpp), each a scenario that failed
before its fix. Subprocesses where a failure would abort or hang the interpreter."""
import textwrap
import threading
import time

import pytest

from conftest import T, assert_no_crash, run_py


def _run(code, timeout=60):
    proc = run_py(textwrap.dedent(code), timeout=timeout)
    assert_no_crash(proc)
    return proc


@pytest.mark.parametrize("blocking", ["background.run(time.sleep, 0.01); background.wait()",
                                      "background.n = 1 + k % 2"])
def test_a_daemon_thread_blocked_in_native_code_at_exit_does_not_abort(blocking):
    # Taking the GIL back after a native wait or resize once the interpreter finalizes ended the
    # daemon thread with pthread_exit inside a noexcept frame: std::terminate (17/20 runs).
    for _ in range(3):
        proc = _run(f"""
            import threading, time, background
            def spin():
                k = 0
                while True:
                    {blocking}
                    k += 1
            threading.Thread(target=spin, daemon=True).start()
            time.sleep(0.2)
        """)
        assert proc.returncode == 0, proc.stderr


def test_exit_does_not_wait_for_a_daemon_thread_that_keeps_the_gil():
    # A daemon thread in background.wait() once the door had closed kept the GIL that a task
    # still inside needed to finish: exit hung (4/8 runs).
    for _ in range(3):
        proc = _run("""
            import threading, time, background
            def daemon():
                while True:
                    background.run(time.sleep, 0.5)
                    time.sleep(0.2)
                    background.wait()
            threading.Thread(target=daemon, daemon=True).start()
            time.sleep(0.3)
        """, timeout=30)
        assert proc.returncode == 0, proc.stderr


def test_resize_and_size_at_once_do_not_deadlock():
    # resize() joined leaving workers, whose thread states wait for the GIL, under the pool's
    # lock, while size() held the GIL and waited for that lock (5/5 runs hung).
    proc = _run("""
        import threading, time, background
        ex = background.Executor(4)
        stop = False
        def resizer():
            while not stop:
                ex.n = 1
                ex.n = 4
        t = threading.Thread(target=resizer, daemon=True)
        t.start()
        t0 = time.time()
        while time.time() - t0 < 1:
            ex.n
        stop = True
        t.join()
        print("no deadlock", flush=True)
        # Join the workers that the shrinks retired (a later resize or the shutdown joins them):
        # exiting with them unjoined is a thread leak to ThreadSanitizer (a CI failure).
        ex.shutdown()
    """, timeout=30)
    assert proc.returncode == 0 and "no deadlock" in proc.stdout, proc.stderr


def test_an_executor_dropped_by_its_own_task_after_shutdown_without_wait():
    proc = _run("""
        import time, background
        class Service:
            def __init__(self):
                self.ex = background.Executor(2, thread_name_prefix="svc")
            def work(self):
                time.sleep(0.2)
                return 1
        s = Service()
        f = s.ex.submit(s.work)  # the call holds s, and so the executor
        s.ex.shutdown(wait=False)
        del s                    # the last reference goes with the call, on svc's worker
        print(f.result(timeout=5), flush=True)
    """, timeout=30)
    assert proc.returncode == 0 and proc.stdout.split() == ["1"], proc.stderr


def test_shutdown_from_its_own_task_after_shutdown_without_wait_raises(bg):
    ex = bg.Executor(2)
    started = threading.Event()

    def own():
        started.set()
        time.sleep(0.1)
        ex.shutdown()  # would wait for itself

    f = ex.submit(own)
    assert started.wait(T)
    ex.shutdown(wait=False)
    assert isinstance(f.exception(timeout=T), RuntimeError)
    ex.shutdown()


def test_a_call_run_inline_by_another_pools_worker_runs_no_batch_there(bg):
    # B's only worker is busy; a default-pool task waits for one of B's calls and so runs it.
    # It must not go on with B's other calls: B has one worker, and they are B's to run.
    local = threading.local()
    b = bg.Executor(1, initializer=lambda: setattr(local, "b", True))
    gate = threading.Event()
    b.submit(gate.wait, T)
    try:
        fs = [b.submit(lambda i=i: (i, getattr(local, "b", False))) for i in range(10)]
        assert bg.run(lambda: fs[0].result()).result(timeout=T) == (0, False)
        time.sleep(0.1)
        assert [f for f in fs[1:] if f.done()] == []
    finally:
        gate.set()
    assert [f.result(timeout=T) for f in fs[1:]] == [(i, True) for i in range(1, 10)]
    b.shutdown()


def test_a_nested_wait_runs_only_what_it_waits_for(bg):
    ex = bg.Executor(4)
    unrelated = threading.Event()

    def outer():
        x = ex.submit(lambda: 1)
        y = ex.submit(unrelated.wait, T)  # queued after x, for an idle worker to take
        x.result()
        return y.done() or threading.current_thread().name

    try:
        # Had the wait gone on with y, outer could only return once y was released: by then
        # y is done. (A worker taking y is fine: it runs elsewhere.)
        f = ex.submit(outer)
        assert f.result(timeout=T) is not True
    finally:
        unrelated.set()
    ex.shutdown()


def test_a_nested_wait_ends_when_the_call_does_not_when_its_worker_is_free(bg):
    # Two workers: outer on one, x on the other. x's worker, once x returns, goes on with the
    # pool's unstarted calls in one batch (run_backlog): y, which blocks until released. A
    # wait for x that lasted until x's native task ended would last as long as y.
    ex = bg.Executor(2)
    x_started = threading.Event()
    unrelated = threading.Event()

    def x_body():
        x_started.set()
        time.sleep(0.05)  # outer queues y meanwhile, which x's worker then takes in its batch
        return 1

    def outer():
        x = ex.submit(x_body)
        assert x_started.wait(T)  # x runs on the other worker: this wait cannot claim it
        y = ex.submit(unrelated.wait, T)
        assert x.result() == 1
        return y.done()

    try:
        f = ex.submit(outer)
        assert f.result(timeout=T) is False
    finally:
        unrelated.set()
    ex.shutdown()


def test_submitting_after_the_exit_hook_raises():
    proc = _run("""
        import atexit
        def late():
            import background
            try:
                background.run(lambda: 1)
            except RuntimeError as e:
                print("raised:", e, flush=True)
        atexit.register(late)  # registered first: runs after background's own hook
        import background
        background.run(lambda: 0).result()
    """, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "raised: cannot schedule new futures after interpreter shutdown" in proc.stdout
