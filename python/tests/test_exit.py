"""Interpreter exit runs what is queued, in fresh interpreters."""
import signal
import textwrap

import pytest

from conftest import run_py, assert_no_crash


def _run(code):
    proc = run_py(textwrap.dedent(code), timeout=60)
    assert_no_crash(proc)
    return proc


# Worker threads write whole lines with os.write (one write each): print() from several threads
# may interleave a line and its newline.


@pytest.mark.parametrize("n", [1, 2, 4])
def test_tasks_still_queued_at_exit_all_run(n):
    proc = _run(f"""
        import os, time, background
        background.n = {n}

        @background.task
        def work(i):
            time.sleep(0.01)
            os.write(1, f"ran {{i}}\\n".encode())

        for i in range(20):
            work(i)
        print("main done", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "main done" in lines
    assert sorted(l for l in lines if l.startswith("ran ")) == sorted(f"ran {i}" for i in range(20))


def test_a_task_still_running_at_exit_finishes():
    proc = _run("""
        import os, time, background

        def late():
            time.sleep(0.3)
            os.write(1, b"late task finished\\n")

        background.run(late)
        print("main done", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["main done", "late task finished"]


def test_sys_exit_inside_a_task_does_not_end_the_process():
    proc = _run("""
        import sys, background

        @background.task
        def quit_():
            sys.exit(3)

        f = quit_()
        e = f.exception(timeout=30)
        print(type(e).__name__, e.code, flush=True)
        print("still here", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["SystemExit 3", "still here"]


def test_sys_exit_inside_a_task_left_unretrieved_at_exit():
    proc = _run("""
        import os, sys, background
        background.run(sys.exit, 4)
        background.run(os.write, 1, b"after\\n")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "after" in proc.stdout.splitlines()


def test_keyboard_interrupt_in_main_with_tasks_queued():
    proc = _run("""
        import os, time, background
        background.n = 1

        @background.task
        def work(i):
            time.sleep(0.01)
            os.write(1, f"ran {i}\\n".encode())

        for i in range(20):
            work(i)
        raise KeyboardInterrupt
    """)
    # CPython ends a process whose main thread let KeyboardInterrupt escape by re-raising
    # SIGINT (returncode -2); exit status 1 is accepted too.
    assert proc.returncode in (1, -signal.SIGINT), (proc.returncode, proc.stderr)
    assert "Traceback" in proc.stderr and "KeyboardInterrupt" in proc.stderr
    ran = [l for l in proc.stdout.splitlines() if l.startswith("ran ")]
    assert sorted(ran) == sorted(f"ran {i}" for i in range(20))


def test_imported_but_never_used():
    proc = _run("import background")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""


def test_imported_resized_but_never_used():
    proc = _run("import background; background.n = 8; background.n = 1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("n", [1, 2, 4])
def test_executor_left_without_shutdown_runs_queued_work(n):
    proc = _run(f"""
        import os, time, background
        ex = background.Executor({n})
        for i in range(10):
            ex.submit(lambda i=i: (time.sleep(0.01), os.write(1, f"ex ran {{i}}\\n".encode())))
        print("main done", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    ran = [l for l in proc.stdout.splitlines() if l.startswith("ex ran ")]
    assert sorted(ran) == sorted(f"ex ran {i}" for i in range(10))


def test_executor_as_context_manager_in_a_fresh_interpreter():
    proc = _run("""
        import background
        with background.Executor(2) as ex:
            futs = [ex.submit(pow, 2, i) for i in range(10)]
            print(list(ex.map(str, range(3))))
        print([f.result() for f in futs])
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['0', '1', '2']", str([2 ** i for i in range(10)])]


def test_exit_with_unretrieved_exception_does_not_crash():
    proc = _run("""
        import background
        def boom():
            raise ValueError("at-exit")
        f = background.run(boom)
        background.wait()
    """)
    assert proc.returncode == 0, proc.stderr


def test_exit_while_tasks_submit_more_tasks():
    proc = _run("""
        import os, time, background
        background.n = 2

        def spawn(depth):
            os.write(1, f"depth {depth}\\n".encode())
            if depth < 5:
                background.run(spawn, depth + 1)

        background.run(spawn, 0)
    """)
    assert proc.returncode == 0, proc.stderr
    # Queued by then or not, nothing crashes; what was queued before exit ran.
    assert "depth 0" in proc.stdout
