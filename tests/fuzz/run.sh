#!/usr/bin/env bash
# Runs the fuzz_ops libFuzzer target for a bounded time, starting from the seed corpus, and
# fails on any crash (an invariant violation aborts), leak, sanitizer report or timeout.
#
# Usage: tests/fuzz/run.sh FUZZER [SECONDS=60] [ARTIFACT_DIR=./fuzz-artifacts]
#
# New inputs go to a scratch corpus (deleted afterwards); a failing input is saved in
# ARTIFACT_DIR as crash-*, leak-* or timeout-*. Reproduce one with `FUZZER FILE`, shrink it with
# `FUZZER -minimize_crash=1 -runs=10000 FILE`.
set -euo pipefail

if (($# < 1 || $# > 3)); then
  echo "usage: $0 FUZZER [SECONDS=60] [ARTIFACT_DIR=./fuzz-artifacts]" >&2
  exit 2
fi
fuzzer=$(realpath "$1")
seconds=${2:-60}
artifacts=${3:-fuzz-artifacts}
seeds=$(cd "$(dirname "$0")" && pwd)/corpus

mkdir -p "$artifacts"
artifacts=$(realpath "$artifacts")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$seeds"/* "$scratch"/

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=512 -len_control=0 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch" "$seeds" || status=$?
if ((status != 0)); then
  echo "fuzz: FAILED (exit $status); the failing input is in $artifacts:" >&2
  ls -l "$artifacts" >&2
  exit 1
fi
echo "fuzz: no crash, leak or timeout in $seconds s"
