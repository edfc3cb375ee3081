#!/usr/bin/python3
"""The Python module `background` side by side with the shape of the PyPI original and a bare
concurrent.futures.ThreadPoolExecutor, in one run.

Contenders: ours (the package `background`, found through --pythonpath or $BACKGROUND_PYTHONPATH,
default build/dev/python), original (original_shape.py, the PyPI 0.2.1 shape) and bare
(ThreadPoolExecutor used directly). Workloads, each in a fresh interpreter of its own:

  empty_run   100,000 empty tasks through run() (bare: submit), then wait for all; default n
  empty_task  the same through a task()-decorated function (bare: submit)
  sleeps      100 tasks of time.sleep(0.2) at n = 110 (bare: max_workers=110): first submit to
              all done, no thread started before the clock

Each pass runs every workload x contender once, in a new shuffled order. The table shows the
median and the min over the passes, and the ratios of the medians.

  /usr/bin/python3 bench/python/bench_python.py [--passes N] [--pythonpath DIR] [--json FILE]
                                                [--seed N] [--tasks N] [--only REGEX]
"""
import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The test workflow's build (cmake --workflow --preset test builds the module there).
DEFAULT_PYTHONPATH = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "dev", "python")
CONTENDERS = ["ours", "original", "bare"]
WORKLOADS = ["empty_run", "empty_task", "sleeps"]
TASKS = 100_000
SLEEPS, SLEEP_S, SLEEP_N = 100, 0.2, 110
TARGET_RATIO = 1 / 3      # ours <= 1/3 of original's per-task cost
TARGET_SLEEPS_S = 0.205   # ours: 100 sleeps of 0.2 s at n = 110


# ---------------------------------------------------------------- child: one measurement

def nothing():
    pass


def maxrss_kib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def child(contender, workload, tasks):
    import concurrent.futures as cf
    out = {"contender": contender, "workload": workload}
    if contender == "ours":
        import background as mod
        out["module_file"] = mod.__file__
    elif contender == "original":
        sys.path.insert(0, HERE)
        import original_shape as mod
    else:
        mod = None

    if workload in ("empty_run", "empty_task"):
        if mod is not None:
            out["n"] = getattr(mod, "n", None)
            fn = mod.task(nothing) if workload == "empty_task" else None
            # Warm: the pool's first thread started, one task through, before the clock.
            (fn() if fn else mod.run(nothing))
            if contender == "ours":
                mod.wait()
            else:
                cf.wait(mod.results)
            rss0 = maxrss_kib()
            run = mod.run
            t0 = time.perf_counter()
            if fn is not None:
                for _ in range(tasks):
                    fn()
            else:
                for _ in range(tasks):
                    run(nothing)
            t1 = time.perf_counter()
            if contender == "ours":
                mod.wait()
            else:
                cf.wait(mod.results)
            t2 = time.perf_counter()
        else:
            pool = cf.ThreadPoolExecutor()  # the default max_workers
            out["n"] = pool._max_workers
            pool.submit(nothing).result()
            rss0 = maxrss_kib()
            submit = pool.submit
            fs = []
            append = fs.append
            t0 = time.perf_counter()
            for _ in range(tasks):
                append(submit(nothing))
            t1 = time.perf_counter()
            cf.wait(fs)
            t2 = time.perf_counter()
        out.update(us_per_task=(t2 - t0) / tasks * 1e6, submit_us_per_task=(t1 - t0) / tasks * 1e6,
                   wait_us_per_task=(t2 - t1) / tasks * 1e6, maxrss_kib=maxrss_kib(),
                   maxrss_before_kib=rss0, tasks=tasks)
    elif workload == "sleeps":
        if mod is not None:
            mod.n = SLEEP_N
            out["n"] = mod.n
            t0 = time.perf_counter()
            fs = [mod.run(time.sleep, SLEEP_S) for _ in range(SLEEPS)]
            t1 = time.perf_counter()
            if contender == "ours":
                mod.wait()
            else:
                cf.wait(fs)
            t2 = time.perf_counter()
        else:
            pool = cf.ThreadPoolExecutor(max_workers=SLEEP_N)
            out["n"] = pool._max_workers
            t0 = time.perf_counter()
            fs = [pool.submit(time.sleep, SLEEP_S) for _ in range(SLEEPS)]
            t1 = time.perf_counter()
            cf.wait(fs)
            t2 = time.perf_counter()
        out.update(s=t2 - t0, submit_s=t1 - t0, maxrss_kib=maxrss_kib())
    else:
        raise SystemExit("unknown workload " + workload)
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- parent: passes and table

def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0],
            "executable": sys.executable, "uname": " ".join(platform.uname()),
            "loadavg_start": load}


def run_child(contender, workload, args):
    env = dict(os.environ)
    if contender == "ours":
        env["PYTHONPATH"] = args.pythonpath + (os.pathsep + env["PYTHONPATH"]
                                               if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", contender, workload,
           "--tasks", str(args.tasks)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timeout after %ss" % args.timeout}
    if p.returncode != 0:
        return {"error": "exit %d: %s" % (p.returncode, p.stderr.strip().splitlines()[-1:]
                                          or "")}
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return {"error": "no result: " + p.stdout[-200:] + p.stderr[-200:]}
    return json.loads(lines[-1])


# The table's rows: (label, workload, key, unit scale).
ROWS = [
    ("empty run() us/task", "empty_run", "us_per_task", 1),
    ("  submit phase us/task", "empty_run", "submit_us_per_task", 1),
    ("  wait phase us/task", "empty_run", "wait_us_per_task", 1),
    ("  peak RSS MiB", "empty_run", "maxrss_kib", 1 / 1024),
    ("  RSS before tasks MiB", "empty_run", "maxrss_before_kib", 1 / 1024),
    ("empty task() us/task", "empty_task", "us_per_task", 1),
    ("  submit phase us/task", "empty_task", "submit_us_per_task", 1),
    ("  wait phase us/task", "empty_task", "wait_us_per_task", 1),
    ("  peak RSS MiB", "empty_task", "maxrss_kib", 1 / 1024),
    ("sleeps 100x0.2s n=110 s", "sleeps", "s", 1),
    ("  submit phase s", "sleeps", "submit_s", 1),
]


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    if x >= 1:
        return "%.2f" % x
    return "%.3f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("CONTENDER", "WORKLOAD"), help=argparse.SUPPRESS)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--pythonpath", default=os.environ.get("BACKGROUND_PYTHONPATH",
                                                          DEFAULT_PYTHONPATH),
                    help="where `background` (ours) is importable from (default: "
                         "$BACKGROUND_PYTHONPATH or %s)" % DEFAULT_PYTHONPATH)
    ap.add_argument("--json", metavar="FILE", help="save every run and the table here")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tasks", type=int, default=TASKS, help="tasks of the empty workloads")
    ap.add_argument("--only", default=None, help="regex over contender/workload")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.tasks)

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    m = machine()
    print("machine: nproc %s, %s, Python %s (%s)" % (m["nproc"], m["cpu"], m["python"],
                                                     m["executable"]))
    print("load average at start: %s; seed %d; passes %d; ours from %s"
          % (m["loadavg_start"], seed, args.passes, args.pythonpath))
    pairs = [(c, w) for w in WORKLOADS for c in CONTENDERS
             if not args.only or re.search(args.only, c + "/" + w)]
    runs = []
    errors = {}
    for p in range(args.passes):
        order = pairs[:]
        rng.shuffle(order)
        t = time.perf_counter()
        for c, w in order:
            r = run_child(c, w, args)
            r.update(contender=c, workload=w, passno=p)
            runs.append(r)
            if "error" in r:
                errors.setdefault((c, w), r["error"])
        print("pass %d/%d done (%.1f s)" % (p + 1, args.passes, time.perf_counter() - t),
              file=sys.stderr, flush=True)
    for (c, w), e in errors.items():
        print("error: %s/%s: %s" % (c, w, e))
    files = {r.get("module_file") for r in runs if r.get("module_file")}
    if files:
        print("ours imported from: " + ", ".join(sorted(files)))
    ns = {}
    for r in runs:
        if "n" in r:
            ns.setdefault((r["contender"], r["workload"]), r["n"])
    print("pool sizes: " + "; ".join("%s/%s n=%s" % (c, w, n) for (c, w), n in sorted(ns.items())))

    table = []
    head = "%-25s" % "" + "".join("%18s" % (c + " med/min") for c in CONTENDERS) \
        + "%13s%13s" % ("ours/orig", "ours/bare")
    print()
    print(head)
    for label, w, key, scale in ROWS:
        cells = {}
        for c in CONTENDERS:
            xs = [r[key] * scale for r in runs
                  if r["contender"] == c and r["workload"] == w and key in r]
            cells[c] = (statistics.median(xs), min(xs), len(xs)) if xs else None
        if not any(cells.values()):
            continue
        line = "%-25s" % label
        for c in CONTENDERS:
            v = cells[c]
            line += "%18s" % ("%s / %s" % (fmt(v[0]), fmt(v[1])) if v else "-")
        ratios = []
        for other in ("original", "bare"):
            if cells["ours"] and cells[other] and cells[other][0]:
                ratios.append(cells["ours"][0] / cells[other][0])
            else:
                ratios.append(None)
        line += "".join("%13s" % ("%.3f" % q if q is not None else "-") for q in ratios)
        print(line)
        table.append({"row": label, "workload": w, "key": key,
                      "cells": {c: (None if v is None else {"median": v[0], "min": v[1],
                                                           "runs": v[2]})
                                for c, v in cells.items()},
                      "ours_over_original": ratios[0], "ours_over_bare": ratios[1]})

    print()
    targets = []
    for row in table:
        if row["key"] == "us_per_task" and row["ours_over_original"] is not None:
            q = row["ours_over_original"]
            targets.append(("%s: ours/original %.3f <= 0.333" % (row["row"].strip(), q),
                            q <= TARGET_RATIO))
        if row["key"] == "s" and row["cells"]["ours"]:
            s = row["cells"]["ours"]["median"]
            targets.append(("sleeps: ours %.3f s <= %.3f s" % (s, TARGET_SLEEPS_S),
                            s <= TARGET_SLEEPS_S))
    for text, ok in targets:
        print("target %-48s %s" % (text, "met" if ok else "MISSED"))
    with open("/proc/loadavg") as f:
        print("load average at end: " + " ".join(f.read().split()[:3]))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "seed": seed, "passes": args.passes,
                       "pythonpath": args.pythonpath, "tasks": args.tasks, "runs": runs,
                       "table": table, "targets": [{"target": t, "met": ok}
                                                   for t, ok in targets]}, f, indent=1)
        print("saved " + args.json)


if __name__ == "__main__":
    main()
