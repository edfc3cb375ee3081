"""fork() with live pools (os.fork, multiprocessing's "fork" start method): the child's pools
work, the parent's unfinished calls raise ForkedError there instead of waiting for ever, and a
child that ends normally (atexit: the drain and the door) exits. Subprocesses: a failure would
hang the interpreter."""
import os
import textwrap

import pytest

from conftest import assert_no_crash, run_py

# The sanitizers' runtimes cannot follow a child of a multi-threaded process that starts threads
# (TSan ends it, "dup thread"; GCC 12's ASan can block it in its allocator): as the C++ fork tests
# do, these run their children in the plain build only.
pytestmark = pytest.mark.skipif(os.environ.get("BACKGROUND_TEST_SANITIZER") is not None,
                                reason="sanitizers cannot follow threads started after a fork")


def _run(code, timeout=120):
    proc = run_py(textwrap.dedent(code), timeout=timeout)
    assert_no_crash(proc)
    return proc


def test_an_os_fork_child_uses_the_pools_and_exits_normally():
    # The parent's call is still running (its worker inside the door) at the fork: the child's
    # exit waited for that worker for ever before the door was reset in the child.
    proc = _run("""
        import os, threading, time, background
        started = threading.Event()
        def slow():
            started.set()
            time.sleep(1.0)
            return "parent"
        pending = background.run(slow)
        started.wait()
        ex = background.Executor(2)
        queued = [ex.submit(time.sleep, 0.5) for _ in range(4)]
        pid = os.fork()
        if pid == 0:
            try:
                pending.result(timeout=30)
                print("no error")
            except background.ForkedError:
                print("forked")
            print(queued[-1].exception(timeout=30).__class__.__name__)
            print(background.run(lambda: 6 * 7).result(timeout=30))
            print(ex.submit(lambda: "mine").result(timeout=30))
            background.n = 3
            print(background.n)
            raise SystemExit(0)  # atexit runs: the drain, then the door
        _, status = os.waitpid(pid, 0)
        print("child status", status)
        print(pending.result(), sum(1 for f in queued if f.result() is None))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:7] == [
        "forked", "ForkedError", "42", "mine", "3", "child status 0", "parent 4"], proc.stdout


def test_multiprocessing_fork_children_use_the_default_pool():
    proc = _run("""
        import multiprocessing as mp, background

        @background.task
        def square(x):
            return x * x

        def child(q):
            q.put(sum(f.result(timeout=30) for f in [square(i) for i in range(20)]))

        if __name__ == "__main__":
            print(square(3).result())
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            procs = [ctx.Process(target=child, args=(q,)) for _ in range(3)]
            for p in procs:
                p.start()
            print(sorted(q.get(timeout=60) for _ in procs))
            for p in procs:
                p.join(60)
            print([p.exitcode for p in procs])
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["9", "[2470, 2470, 2470]", "[0, 0, 0]"], proc.stdout
