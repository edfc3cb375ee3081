#!/usr/bin/env python3
"""Runs the benchmark suite side by side and prints one table: background against its peers.

Builds nothing: give it the bench_pools binary (cmake --workflow --preset bench). Each pass runs
every workload x peer once, one process each, in a shuffled order, so that peers share the
machine's good and bad moments; the table shows the median over the passes. The Python peer
(python_peer.py) is interleaved the same way. Everything goes to bench/results/<date>.json.

  python3 bench/run.py [BINARY] [--passes N] [--quick] [--scale S] [--only REGEX] [--seed N]
                      [--out FILE]
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_BINARY = os.path.join("build", "bench", "bench", "bench_pools")
# The last two are not peers but background's own baselines: map/serial (a plain loop on one
# thread) and co_await/then (the same chain built with then()).
PEERS = ["background", "std_async", "textbook", "tbb", "asio", "rvaser", "python", "serial",
         "then"]

# The table's rows: (label, workload, counter).
ROWS = [
    ("ff ns/task", "ff", "ns_per_task"),
    ("ff run() dropped ns/task", "ff_run", "ns_per_task"),
    ("futures ns/task", "futures", "ns_per_task"),
    ("producers2 ns/task", "producers2", "ns_per_task"),
    ("producers8 ns/task", "producers8", "ns_per_task"),
    ("rtt median us", "rtt", "median_us"),
    ("rtt p99 us", "rtt", "p99_us"),
    ("rtt_idle median us", "rtt_idle", "median_us"),
    ("rtt_idle p99 us", "rtt_idle", "p99_us"),
    ("fib25 ms", "fib25", "ms"),
    ("seed ms", "seed", "ms"),
    ("grow ms", "grow", "ms"),
    ("idle_cpu ms/2s", "idle_cpu", "cpu_ms"),
    ("when_all ns/element", "when_all", "ns_per_element"),
    ("when_all ready ns/element", "when_all", "ready_ns_per_element"),
    ("as_completed100k ns/element", "as_completed100k", "ns_per_element"),
    ("as_completed10k ns/element", "as_completed10k", "ns_per_element"),
    ("as_completed100k ready ns/el", "as_completed100k", "ready_ns_per_element"),
    ("as_completed10k ready ns/el", "as_completed10k", "ready_ns_per_element"),
    ("map ms", "map", "ms"),
    ("co_await ns/step", "co_await", "ns_per_step"),
    ("backlog B/task (malloc)", "backlog", "bytes_per_task"),
    ("backlog B/task (RSS)", "backlog", "rss_bytes_per_task"),
    ("backlog drain ms", "backlog", "drain_ms"),
    ("backlog RSS kept %", "backlog", "rss_kept_pct"),
]

# Rows whose "best peer" is taken from another workload: ff_run exists for background only (run()
# with the future dropped), and is held to the peers' ff.
BEST_FROM = {"ff run() dropped ns/task": "ff"}

# Counters read from each benchmark (the table's rows, the floors, and the rest of the JSON).
METRICS = ("ns_per_task", "median_us", "p99_us", "ms", "cpu_ms", "ns", "ns_per_element",
           "ready_ns_per_element", "ns_per_step", "bytes_per_task", "rss_bytes_per_task",
           "drain_ms", "rss_kept_pct", "rss_kept_peak_pct", "heap_kept_bytes",
           "rss_kept_trim_pct")

# Workloads python_peer.py runs, as <workload>/python.
PYTHON_WORKLOADS = ["ff", "futures", "producers2", "producers8", "rtt", "rtt_idle", "seed",
                    "idle_cpu", "when_all", "as_completed100k", "as_completed10k"]

FLOORS = [
    ("malloc+free 64 B", "floor/malloc64", "ns", "ns"),
    ("atomic fetch_add", "floor/atomic_add", "ns", "ns"),
    ("FUTEX_WAKE, no waiter", "floor/futex_wake", "ns", "ns"),
    ("futex ping after 1 ms idle, median", "floor/futex_ping_idle", "median_us", "us"),
    ("futex ping after 1 ms idle, p99", "floor/futex_ping_idle", "p99_us", "us"),
    ("start+join 110 std::threads", "floor/threads110", "ms", "ms"),
]


def at_most(limit):
    return lambda bg, best, fl, m: bg <= limit


def ratio_at_most(r):
    return lambda bg, best, fl, m: None if best is None else bg <= r * best


def both(a, b):
    def check(*args):
        x, y = a(*args), b(*args)
        return None if x is None or y is None else x and y

    return check


def near_futex_floor(bg, best, fl, m):
    floor = fl.get(("floor/futex_ping_idle", "median_us"))
    return None if floor is None else bg <= 1.10 * floor


def at_most_tbb(bg, best, fl, m):
    tbb = m.get(("fib25/tbb", "ms"))
    return None if tbb is None else bg <= tbb


def ratio_of(name, counter, r):
    """background's median at most r times the median of `name` (another benchmark)."""
    def check(bg, best, fl, m):
        other = m.get((name, counter))
        return None if other is None else bg <= r * other

    return check


# The targets, by row label: (what it says, the check on the medians). backlog's RSS
# kept: resident bytes after a second round's drain minus before the first round, in % of before.
TARGETS = {
    "ff ns/task": ("<=100, <=0.5x best", both(at_most(100), ratio_at_most(0.5))),
    "ff run() dropped ns/task": ("<=0.8x best ff", ratio_at_most(0.8)),
    "futures ns/task": ("<=200, <=1/3 best", both(at_most(200), ratio_at_most(1 / 3))),
    "producers2 ns/task": ("<=0.7x best", ratio_at_most(0.7)),
    "producers8 ns/task": ("<=0.7x best", ratio_at_most(0.7)),
    "rtt median us": ("<=5", at_most(5)),
    "rtt p99 us": ("<=20", at_most(20)),
    "rtt_idle median us": ("<=1.1x futex floor", near_futex_floor),
    "fib25 ms": ("<=tbb", at_most_tbb),
    "seed ms": ("<=101", at_most(101)),
    "grow ms": ("<=5", at_most(5)),
    "idle_cpu ms/2s": ("<=2", at_most(2)),
    "as_completed100k ns/element": (
        "<=1.5x 10k", ratio_of("as_completed10k/background", "ns_per_element", 1.5)),
    "as_completed100k ready ns/el": (
        "<=1.5x 10k", ratio_of("as_completed10k/background", "ready_ns_per_element", 1.5)),
    "map ms": ("<=1.2x tbb", ratio_of("map/tbb", "ms", 1.2)),
    "backlog B/task (malloc)": ("<=best", ratio_at_most(1)),
    "backlog B/task (RSS)": ("<=best", ratio_at_most(1)),
    "backlog RSS kept %": ("<=10", at_most(10)),
}


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cmake_cache(binary):
    """The CMakeCache.txt entries of the build tree that holds `binary`, if any."""
    d = os.path.dirname(os.path.abspath(binary))
    while d != os.path.dirname(d):
        path = os.path.join(d, "CMakeCache.txt")
        if os.path.exists(path):
            entries = {}
            with open(path) as f:
                for line in f:
                    m = re.match(r"^([A-Za-z_]+):[A-Z]+=(.*)$", line.strip())
                    if m:
                        entries[m.group(1)] = m.group(2)
            return entries
        d = os.path.dirname(d)
    return {}


def machine(binary):
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    cache = cmake_cache(binary)
    compiler = cache.get("CMAKE_CXX_COMPILER", "c++")
    return {
        "uname": sh(["uname", "-a"]),
        "nproc": sh(["nproc"]),
        "cpu_model": model,
        "compiler": sh([compiler, "--version"]).splitlines()[0:1],
        "build_type": cache.get("CMAKE_BUILD_TYPE", ""),
        "cxx_flags_release": cache.get("CMAKE_CXX_FLAGS_RELEASE", ""),
        "git_commit": sh(["git", "-C", ROOT, "rev-parse", "HEAD"]),
        "git_branch": sh(["git", "-C", ROOT, "rev-parse", "--abbrev-ref", "HEAD"]),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)["benchmarks"]


def base_name(name):
    """ff/background/iterations:1/real_time -> ff/background"""
    return "/".join(name.split("/")[:2])


def jobs(binary, python, scale):
    """Every (name, command) of one pass: a process per benchmark."""
    names = subprocess.run([binary, "--benchmark_list_tests"], capture_output=True, text=True,
                           check=True).stdout.split()
    out = []
    for n in dict.fromkeys(base_name(n) for n in names):
        out.append((n, [binary, f"--benchmark_filter=^{re.escape(n)}(/|$)",
                        "--benchmark_format=json", f"--bg_scale={scale}"]))
    if python:
        for w in PYTHON_WORKLOADS:
            n = f"{w}/python"
            out.append((n, [python, os.path.join(HERE, "python_peer.py"), "--scale", str(scale),
                            "--filter", f"^{re.escape(n)}$"]))
    return out


def skipped_lines(binary, python):
    lines = sh([binary, "--bg_skipped"]).splitlines()
    if python:
        lines += sh([python, os.path.join(HERE, "python_peer.py"), "--skipped"]).splitlines()
    else:
        lines.append("skipped: python (python3 not found on PATH)")
    return lines


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(medians, floors):
    peers = [p for p in PEERS if any(k[0].endswith("/" + p) for k in medians)]
    head = ["workload"] + peers + ["bg/best", "target", ""]
    rows = []
    verdicts = []
    for label, w, counter in ROWS:
        values = {p: medians.get((f"{w}/{p}", counter)) for p in peers}
        if all(v is None for v in values.values()):
            continue  # not run (--only)
        bg = values.get("background")
        best_w = BEST_FROM.get(label, w)
        others = [v for p in peers if p != "background"
                  for v in [medians.get((f"{best_w}/{p}", counter))] if v is not None]
        best = min(others) if others else None
        ratio = bg / best if bg is not None and best else None
        target, check = TARGETS.get(label, ("", None))
        verdict = ""
        if check is not None:
            ok = None if bg is None else check(bg, best, floors, medians)
            verdict = "n/a" if ok is None else ("met" if ok else "missed")
            verdicts.append({"row": label, "target": target, "background": bg,
                             "best_peer": best, "verdict": verdict})
        rows.append([label] + [fmt(values[p]) for p in peers] +
                    [fmt(ratio), target, verdict])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) if i <= len(peers) + 1
                       else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
             for r in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines), verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, DEFAULT_BINARY),
                    help=f"the bench_pools binary (default {DEFAULT_BINARY})")
    ap.add_argument("--passes", type=int, default=5, help="passes over every benchmark (5)")
    ap.add_argument("--quick", action="store_true", help="1 pass, a tenth of the task counts")
    ap.add_argument("--scale", type=float, help="task-count multiplier (1; 0.1 with --quick)")
    ap.add_argument("--seed", type=int, help="seed of the shuffles (default: random)")
    ap.add_argument("--only", default=".", help="regex on names (ff/tbb, floor/...) to run")
    ap.add_argument("--out", help="results file (default bench/results/<date>.json)")
    args = ap.parse_args()
    if args.quick:
        args.passes = 1
    scale = args.scale if args.scale else (0.1 if args.quick else 1.0)
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"run.py: no benchmark binary at {args.binary}; "
                 "build it first: cmake --workflow --preset bench")
    python = shutil.which("python3")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)

    info = machine(args.binary)
    skipped = skipped_lines(args.binary, python)
    for line in skipped:
        print(line)
    runs = []
    failures = []
    all_jobs = [j for j in jobs(args.binary, python, scale) if re.search(args.only, j[0])]
    started = time.time()
    for p in range(args.passes):
        order = all_jobs[:]
        rng.shuffle(order)
        for i, (name, cmd) in enumerate(order):
            if sys.stderr.isatty():
                print(f"\r[pass {p + 1}/{args.passes}] {i + 1}/{len(order)} {name:<28}", end="",
                      file=sys.stderr, flush=True)
            t0 = time.time()
            try:
                results = run_json(cmd)
            except (RuntimeError, subprocess.SubprocessError, ValueError) as e:
                failures.append(f"failed: {name} in pass {p + 1}: {str(e).strip()[-300:]}")
                continue
            for b in results:
                if b.get("error_occurred"):
                    failures.append(f"failed: {name} in pass {p + 1}: {b.get('error_message')}")
                    continue
                runs.append({"pass": p, "position": i, "name": base_name(b["name"]),
                             "wall_s": round(time.time() - t0, 3), "result": b})
    if sys.stderr.isatty():
        print(f"\r{'':<60}\r", end="", file=sys.stderr)

    per_metric = {}
    for r in runs:
        for k, v in r["result"].items():
            if k in METRICS:
                per_metric.setdefault((r["name"], k), []).append(v)
    medians = {k: statistics.median(v) for k, v in per_metric.items()}
    floors = {k: v for k, v in medians.items() if k[0].startswith("floor/")}

    text, verdicts = table(medians, floors)
    for line in failures:
        print(line)
    print()
    print(f"{args.passes} pass(es), scale {scale}, medians; lower is better everywhere; "
          f"load average at start {info['loadavg_at_start'][0]:.2f}")
    print(text)
    if any(medians.get((name, counter)) is not None for _, name, counter, _ in FLOORS):
        print("\nfloors, same run:")
        for label, name, counter, unit in FLOORS:
            print(f"  {label:<38} {fmt(medians.get((name, counter))):>8} {unit}")

    date = datetime.datetime.now()
    out = args.out or os.path.join(HERE, "results", date.strftime("%Y-%m-%dT%H%M%S") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({
            "date": date.isoformat(timespec="seconds"),
            "machine": info,
            "settings": {"passes": args.passes, "scale": scale, "quick": args.quick,
                         "only": args.only,
                         "shuffle_seed": seed, "binary": os.path.abspath(args.binary),
                         "seconds": round(time.time() - started, 1)},
            "skipped": skipped,
            "failures": failures,
            "medians": [{"name": k[0], "metric": k[1], "value": v}
                        for k, v in sorted(medians.items())],
            "targets": verdicts,
            "table": text,
            "runs": runs,
        }, f, indent=1)
    print(f"\nwrote {os.path.relpath(out)}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
