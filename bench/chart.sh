#!/bin/sh
# chart.sh [RESULTS.json] [OUT.png]: draws the results of bench/run.py (default: the newest in
# bench/results) as grouped bars on a log scale, to docs/benchmarks.png: ns per task on the
# left, round-trip latency on the right with the futex floor as a dashed line.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
json=${1:-$(ls -t "$here"/results/*.json 2>/dev/null | head -n 1)}
out=${2:-$here/../docs/benchmarks.png}
[ -n "$json" ] && [ -f "$json" ] || { echo "chart.sh: no results; run bench/run.py first" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "chart.sh: gnuplot not found (apt install gnuplot-nox)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per panel: a row per workload, a column per peer, "-" where not measured.
python3 - "$json" "$tmp" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
m = {(r["name"], r["metric"]): r["value"] for r in res["medians"]}
order = ["background", "std_async", "textbook", "tbb", "asio", "rvaser", "python"]
peers = [p for p in order if any(n.endswith("/" + p) for n, _ in m)]
panels = {
    "throughput": [("ff", "ff", "ns_per_task"), ("futures", "futures", "ns_per_task"),
                   ("producers2", "producers2", "ns_per_task"),
                   ("producers8", "producers8", "ns_per_task")],
    "latency": [("rtt median", "rtt", "median_us"), ("rtt p99", "rtt", "p99_us"),
                ("rtt_idle median", "rtt_idle", "median_us")],
}
for panel, rows in panels.items():
    with open(f"{sys.argv[2]}/{panel}.dat", "w") as f:
        f.write("workload " + " ".join(peers) + "\n")
        for label, w, c in rows:
            vals = [m.get((f"{w}/{p}", c)) for p in peers]
            f.write(f'"{label}" ' + " ".join("-" if v is None else f"{v:.6g}" for v in vals) + "\n")
floor = m.get(("floor/futex_ping_idle", "median_us"))
with open(f"{sys.argv[2]}/vars.gp", "w") as f:
    f.write(f"npeers = {len(peers)}\n")
    f.write(f"floor = {floor if floor else 0}\n")
    f.write(f'subtitle = "{res["machine"].get("cpu_model", "")}, nproc {res["machine"].get("nproc", "")}, '
            f'{res["settings"]["passes"]} pass(es), scale {res["settings"]["scale"]}, {res["date"][:10]}"\n')
PY

mkdir -p "$(dirname "$out")"
gnuplot <<GP
load "$tmp/vars.gp"
set terminal pngcairo size 1400,620 font "DejaVu Sans,14" noenhanced
set output "$out"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics mytics lc rgb "#dddddd"
set key at screen 0.5, screen 0.83 center horizontal reverse Left maxcols 7 maxrows 1 samplen 1.5 font ",13"
set tmargin 6
set ytics format "%g"
set xtics nomirror
set multiplot layout 1,2 title "background vs peers, lower is better (log scale)\n".subtitle
set title "throughput: ns per task"
plot for [i=2:npeers+1] "$tmp/throughput.dat" using i:xtic(1) title columnhead(i)
set title "round trip: us (dashed: futex ping floor, 1 ms idle)"
unset key
if (floor > 0) set arrow 1 from graph 0, first floor to graph 1, first floor nohead dt 2 lw 2 lc rgb "black"
plot for [i=2:npeers+1] "$tmp/latency.dat" using i:xtic(1) title columnhead(i)
unset multiplot
GP
echo "wrote $out"
