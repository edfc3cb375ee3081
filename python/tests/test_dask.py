"""background.pool = a Dask client's executor: tasks run in other processes."""
import os
import threading

import pytest

from conftest import T

pytestmark = pytest.mark.dask


def test_dask_executor_as_background_pool(bg):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = None
    saved_pool = bg.pool
    try:
        client = Client(cluster)
        bg.pool = client.get_executor()

        # Defined here so that cloudpickle sends them by value.
        def where(x):
            import os
            return os.getpid(), x * 2

        def add(a, b=0):
            return a + b

        def fail():
            raise ZeroDivisionError("in a worker")

        seen = []
        called = threading.Event()

        @bg.callback
        def cb(fut):
            seen.append(fut)
            if len(seen) == 4:
                called.set()

        remote = bg.task(where)
        bg.results.clear()
        futs = [remote(i) for i in range(4)]
        assert list(bg.results) == futs
        values = [f.result(timeout=T) for f in futs]
        pids = {pid for pid, _ in values}
        assert [v for _, v in values] == [0, 2, 4, 6]
        assert os.getpid() not in pids
        assert called.wait(T)
        assert sorted(map(id, seen)) == sorted(map(id, futs))

        r = bg.run(add, 2, b=3)
        assert bg.results[-1] is r
        assert r.result(timeout=T) == 5

        bad = bg.run(fail)
        with pytest.raises(ZeroDivisionError):
            bad.result(timeout=T)

        # n still resizes the native pool only; tasks still go to Dask.
        bg.n = 3
        assert bg.n == 3
        assert saved_pool.n == 3
        pid, v = bg.task(where)(21).result(timeout=T)
        assert v == 42 and pid != os.getpid()
    finally:
        bg.pool = saved_pool
        if client is not None:
            client.close()
        cluster.close()
