#!/usr/bin/env python3
"""The Python peer: the workloads of bench_pools on concurrent.futures.ThreadPoolExecutor.

Prints Google Benchmark's JSON shape ({"benchmarks": [{"name": "ff/python", "ns_per_task": ...}]})
so that run.py reads it like the C++ peers. Task counts are smaller than bench_pools' (the GIL
makes each task cost microseconds); figures are per task, so they still compare.

  python3 bench/python_peer.py [--scale S] [--filter REGEX] [--skipped]
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import resource
import statistics
import sys
import threading
import time

SKIPPED = {
    "fib25": "a worker blocked in result() never runs queued work: fib would deadlock",
    "grow": "ThreadPoolExecutor starts its threads lazily, one per submit: no start to time",
    "map": "executor.map submits a task per element: 10M of them would take minutes",
    "co_await": "a concurrent.futures.Future cannot be awaited without an asyncio loop",
    "backlog": "not written: pymalloc hides queued objects from mallinfo2; RSS alone would do",
}

cpus = os.cpu_count() or 1
scale = 1.0


def scaled(full, floor=1):
    return max(floor, round(full * scale))


def nothing():
    pass


def warm(pool):
    pool.submit(nothing).result()


def ff():
    tasks = scaled(50_000)
    with cf.ThreadPoolExecutor(cpus) as pool:
        warm(pool)
        t0 = time.perf_counter_ns()
        fs = [pool.submit(nothing) for _ in range(tasks)]
        cf.wait(fs)
        return {"ns_per_task": (time.perf_counter_ns() - t0) / tasks, "tasks": tasks}


def futures():
    tasks = scaled(20_000)
    with cf.ThreadPoolExecutor(cpus) as pool:
        warm(pool)
        t0 = time.perf_counter_ns()
        fs = [pool.submit(lambda i=i: i & 1) for i in range(tasks)]
        total = sum(f.result() for f in fs)
        elapsed = time.perf_counter_ns() - t0
        assert total == tasks // 2
        return {"ns_per_task": elapsed / tasks, "tasks": tasks}


def identity(i):
    return i


def join_twice(tasks, join):
    """As bench_pools' time_join: `tasks` tasks returning i, then join(fs) (which returns the
    sum) timed with the submission, and again over futures that have all finished."""
    expected = tasks * (tasks - 1) // 2
    with cf.ThreadPoolExecutor(cpus) as pool:
        warm(pool)
        t0 = time.perf_counter_ns()
        fs = [pool.submit(identity, i) for i in range(tasks)]
        total = join(fs)
        whole = (time.perf_counter_ns() - t0) / tasks
        assert total == expected
        fs = [pool.submit(identity, i) for i in range(tasks)]
        cf.wait(fs)
        t0 = time.perf_counter_ns()
        total = join(fs)
        ready = (time.perf_counter_ns() - t0) / tasks
        assert total == expected
    return {"ns_per_element": whole, "ready_ns_per_element": ready, "tasks": tasks}


def when_all_join(fs):
    """Python's when_all: wait(ALL_COMPLETED), then the results in input order."""
    cf.wait(fs)
    return sum(f.result() for f in fs)


def as_completed_join(fs):
    return sum(f.result() for f in cf.as_completed(fs))


def producers(n):
    each = scaled(50_000, n) // n
    with cf.ThreadPoolExecutor(cpus) as pool:
        warm(pool)
        start = threading.Barrier(n + 1)
        kept = [[] for _ in range(n)]

        def produce(mine):
            start.wait()
            for _ in range(each):
                mine.append(pool.submit(nothing))

        threads = [threading.Thread(target=produce, args=(kept[k],)) for k in range(n)]
        for t in threads:
            t.start()
        t0 = time.perf_counter_ns()
        start.wait()
        for t in threads:
            t.join()
        cf.wait([f for mine in kept for f in mine])
        return {"ns_per_task": (time.perf_counter_ns() - t0) / (each * n), "tasks": each * n}


def round_trips(pool, samples, pause):
    ns = []
    for _ in range(samples):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter_ns()
        pool.submit(nothing).result()
        ns.append(time.perf_counter_ns() - t0)
    return ns


def quantile(v, q):
    v = sorted(v)
    return v[int(q * (len(v) - 1) + 0.5)]


def latency(samples, pause):
    with cf.ThreadPoolExecutor(cpus) as pool:
        warm(pool)
        round_trips(pool, 100, 0)
        ns = round_trips(pool, samples, pause)
    return {"median_us": quantile(ns, 0.5) / 1e3, "p99_us": quantile(ns, 0.99) / 1e3,
            "samples": len(ns)}


def seed():
    ms = []
    for _ in range(5 if scale >= 1 else 1):
        t0 = time.perf_counter_ns()
        pool = cf.ThreadPoolExecutor(110)
        fs = [pool.submit(time.sleep, 0.1) for _ in range(100)]
        cf.wait(fs)
        ms.append((time.perf_counter_ns() - t0) / 1e6)
        pool.shutdown()
    return {"ms": statistics.median(ms)}


def cpu_ms():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return (u.ru_utime + u.ru_stime) * 1e3


def idle_cpu():
    seconds = 2.0 if scale >= 1 else 0.5
    with cf.ThreadPoolExecutor(64) as pool:
        cf.wait([pool.submit(time.sleep, 0.005) for _ in range(64)])
        before = cpu_ms()
        time.sleep(seconds)
        return {"cpu_ms": (cpu_ms() - before) * 2.0 / seconds}


WORKLOADS = {
    "ff": ff,
    "futures": futures,
    "producers2": lambda: producers(2),
    "producers8": lambda: producers(8),
    "rtt": lambda: latency(scaled(20_000), 0),
    "rtt_idle": lambda: latency(scaled(300, 100), 0.001),
    "seed": seed,
    "idle_cpu": idle_cpu,
    # A tenth of bench_pools' counts, as above: 10k and 1k for as_completed100k and 10k.
    "when_all": lambda: join_twice(scaled(10_000, 2), when_all_join),
    "as_completed100k": lambda: join_twice(scaled(10_000, 2), as_completed_join),
    "as_completed10k": lambda: join_twice(scaled(1_000, 2), as_completed_join),
}


def main():
    global scale
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply task counts (quick: 0.1)")
    ap.add_argument("--filter", default=".", help="regex on names such as ff/python")
    ap.add_argument("--skipped", action="store_true", help="list what is not measured, and why")
    args = ap.parse_args()
    scale = args.scale
    if args.skipped:
        for w, why in SKIPPED.items():
            print(f"skipped: {w}/python ({why})")
        return
    out = []
    for w, fn in WORKLOADS.items():
        name = f"{w}/python"
        if re.search(args.filter, name):
            out.append({"name": name, "run_type": "iteration", **fn()})
    json.dump({"context": {"python": sys.version.split()[0]}, "benchmarks": out}, sys.stdout,
              indent=1)
    print()


if __name__ == "__main__":
    main()
