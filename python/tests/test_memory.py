"""background.results is bounded: 200,000 tasks do not grow memory without bound."""
import gc

import pytest

from conftest import T


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("n", [2])
def test_200k_empty_tasks_keep_memory_bounded(bg, n):
    bg.n = n

    @bg.task
    def empty():
        pass

    def nothing():
        pass

    # Warm up (allocator arenas, thread stacks) before the baseline.
    for _ in range(5000):
        empty()
    assert bg.wait(timeout=T)
    gc.collect()
    before = _rss_kib()
    total = 200_000
    batch = 10_000
    for b in range(total // batch):
        for i in range(batch):
            if i % 2:
                empty()
            else:
                bg.run(nothing)
        assert bg.wait(timeout=T)
        assert len(bg.results) <= 1000
    gc.collect()
    grown_mib = (_rss_kib() - before) / 1024
    assert len(bg.results) == 1000
    assert grown_mib < 100, f"RSS grew {grown_mib:.1f} MiB over {total} tasks"
