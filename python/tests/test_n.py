"""background.n: reading, validation, resizing at once (grow and shrink), from any thread."""
import threading
import time

import pytest

from conftest import T, Concurrency

BAD_TYPES = [2.5, 1.0, "3", None, True, False, [2], 3 + 0j]
BAD_VALUES = [0, -1, -100]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_reading_gives_what_was_set(bg, n):
    bg.n = n
    assert bg.n == n
    assert type(bg.n) is int


@pytest.mark.parametrize("bad", BAD_TYPES, ids=repr)
def test_non_int_raises_type_error_and_changes_nothing(bg, bad):
    bg.n = 3
    with pytest.raises(TypeError):
        bg.n = bad
    assert bg.n == 3
    assert bg.pool.n == 3


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_non_positive_raises_value_error_and_changes_nothing(bg, bad):
    bg.n = 3
    with pytest.raises(ValueError):
        bg.n = bad
    assert bg.n == 3
    # Tasks still run (the original's n = 0 made them never run).
    assert bg.run(lambda: "ok").result(timeout=T) == "ok"


@pytest.mark.parametrize("n", [1, 2, 4])
def test_exactly_n_tasks_run_at_once(bg, n):
    bg.n = n
    # n tasks can all be inside the barrier at once ...
    barrier = threading.Barrier(n, timeout=T)
    futs = [bg.run(barrier.wait) for _ in range(n)]
    assert sorted(f.result(timeout=T) for f in futs) == list(range(n))
    # ... and never more than n.
    c = Concurrency()

    def work():
        with c:
            time.sleep(0.005)

    futs = [bg.run(work) for _ in range(6 * n)]
    for f in futs:
        f.result(timeout=T)
    assert c.peak <= n


@pytest.mark.parametrize("n", [1, 2, 4])
def test_growing_starts_queued_tasks_at_once(bg, n):
    bg.n = n
    barrier = threading.Barrier(20, timeout=T)
    futs = [bg.run(barrier.wait) for _ in range(20)]
    bg.n = 20  # no further call: the 20 - n queued tasks must start now
    # A broken barrier (timeout) would raise BrokenBarrierError from result().
    assert sorted(f.result(timeout=T + 5) for f in futs) == list(range(20))
    assert bg.n == 20


@pytest.mark.parametrize("n", [1, 2, 4])
def test_growing_from_inside_a_task(bg, n):
    bg.n = n
    k = n + 3
    barrier = threading.Barrier(k, timeout=T)

    def grow_then_meet():
        bg.n = k
        return barrier.wait()

    futs = [bg.run(grow_then_meet)] + [bg.run(barrier.wait) for _ in range(k - 1)]
    assert sorted(f.result(timeout=T + 5) for f in futs) == list(range(k))
    assert bg.n == k


def _assign_in_thread(bg, value):
    """Assigns bg.n from a helper thread; returns whether the assignment returned."""
    t = threading.Thread(target=setattr, args=(bg, "n", value), daemon=True)
    t.start()
    t.join(T)
    return not t.is_alive()


@pytest.mark.parametrize("n", [2, 4])
def test_shrinking_does_not_block_and_applies_to_later_tasks(bg, n):
    bg.n = n
    gate = threading.Event()
    barrier = threading.Barrier(n + 1, timeout=T)

    def busy():
        barrier.wait()
        return gate.wait(T)

    busy_futs = [bg.run(busy) for _ in range(n)]
    barrier.wait()  # all n workers are busy now
    try:
        assert _assign_in_thread(bg, 1), "shrinking blocked while every worker was busy"
        assert bg.n == 1
    finally:
        gate.set()
    assert all(f.result(timeout=T) for f in busy_futs)
    assert bg.wait(timeout=T)
    c = Concurrency()

    def work():
        with c:
            time.sleep(0.005)

    for f in [bg.run(work) for _ in range(4 * n)]:
        f.result(timeout=T)
    assert c.peak == 1


@pytest.mark.parametrize("n", [1, 2, 4])
def test_shrinking_from_inside_a_task_does_not_block(bg, n):
    bg.n = n + 1

    def shrink():
        bg.n = 1
        return "shrunk"

    assert bg.run(shrink).result(timeout=T) == "shrunk"
    assert bg.n == 1
    assert bg.run(lambda: 2).result(timeout=T) == 2


def test_n_assigned_from_many_threads(bg):
    values = [1, 2, 3, 4] * 5
    threads = [threading.Thread(target=setattr, args=(bg, "n", v)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    assert bg.n in (1, 2, 3, 4)
    bg.n = 2
    assert bg.n == 2
    barrier = threading.Barrier(2, timeout=T)
    futs = [bg.run(barrier.wait) for _ in range(2)]
    assert sorted(f.result(timeout=T) for f in futs) == [0, 1]
