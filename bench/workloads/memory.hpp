// backlog: what a queued task costs in memory, and whether a drained pool gives it back. A pool
// of one worker is blocked in a task; 1M empty fire-and-forget tasks are queued behind it; then
// the worker is released and the pool drained; then a second identical round. Memory is read
// from the kernel (resident pages, /proc/self/statm) and from glibc's malloc (mallinfo2). No
// malloc_trim() before the figures: they are what a user of the pool gets.
#ifndef BENCH_WORKLOADS_MEMORY_HPP
#define BENCH_WORKLOADS_MEMORY_HPP

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <latch>
#include <thread>

#include "options.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"
#include "workloads/throughput.hpp"

namespace bench {

struct memory_use {
  double rss = 0;   // resident bytes of the process
  double heap = 0;  // bytes malloc has handed out and not taken back, mmapped blocks included
};

// Memory now; rss is 0 if /proc/self/statm cannot be read. Memory a pool takes from its own
// allocator (TBB's scalable allocator) shows in rss only.
inline memory_use memory_now() {
  memory_use m;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2) {
      m.rss = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  const struct mallinfo2 mi = mallinfo2();
  m.heap = static_cast<double>(mi.uordblks + mi.hblkhd);
  return m;
}

// One round: blocks the pool's worker in a task, queues `tasks` empty tasks behind it and reads
// memory (returned as `queued`), then releases the worker and waits for all; returns the ms
// from the release until wait_all() returned.
template <peer P>
double backlog_round(P& p, std::size_t tasks, memory_use& queued) {
  std::latch started(1);
  std::atomic<bool> released{false};
  p.post([&] {
    started.count_down();
    released.wait(false);
  });
  started.wait();
  for (std::size_t i = 0; i < tasks; ++i) p.post([] {});
  queued = memory_now();
  const auto t0 = clock::now();
  released = true;
  released.notify_one();
  p.wait_all();
  return ns_since(t0) / 1e6;
}

// backlog: two rounds on a pool of 1 worker. Counters, from round 1 unless said:
//   bytes_per_task      malloc's growth (mallinfo2 uordblks + hblkhd) while queueing, per task;
//                       not reported for a peer with its own allocator (peer.hpp)
//   rss_bytes_per_task  resident growth while queueing, per task
//   drain_ms            from the release until wait_all() returned
//   rss_kept_pct        resident bytes after round 2's drain and 100 ms idle, minus before round
//                       1's queueing,
//                       in % of before round 1's queueing: the "within 10% of before"
//   rss_kept_peak_pct   the same difference in % of round 1's resident growth while queueing
//   heap_kept_bytes     malloc's figure after round 2's drain minus before round 1
//   rss_kept_trim_pct   rss_kept_pct after a malloc_trim(0), read last: what the pool still
//                       holds, against what glibc keeps cached for the process
template <peer P>
void backlog(benchmark::State& state) {
  const std::size_t tasks = scaled(1'000'000);
  const auto n = static_cast<double>(tasks);
  P p(1);
  warm_up(p);
  for (auto _ : state) {
    const memory_use before = memory_now();
    memory_use queued;
    const double drain_ms = backlog_round(p, tasks, queued);
    memory_use queued2;
    backlog_round(p, tasks, queued2);
    // Every peer alike: 100 ms idle before the reading, so that a pool that gives memory back
    // once idle (its workers parked) is seen doing it.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const memory_use after = memory_now();
    malloc_trim(0);
    const memory_use trimmed = memory_now();
    if constexpr (!requires { P::own_allocator; }) {
      state.counters["bytes_per_task"] = (queued.heap - before.heap) / n;
      state.counters["heap_kept_bytes"] = after.heap - before.heap;
    }
    state.counters["rss_bytes_per_task"] = (queued.rss - before.rss) / n;
    state.counters["drain_ms"] = drain_ms;
    state.counters["rss_kept_pct"] = 100 * (after.rss - before.rss) / before.rss;
    state.counters["rss_kept_peak_pct"] =
        100 * (after.rss - before.rss) / (queued.rss - before.rss);
    state.counters["rss_kept_trim_pct"] = 100 * (trimmed.rss - before.rss) / before.rss;
  }
  state.counters["tasks"] = n;
}

}  // namespace bench

#endif  // BENCH_WORKLOADS_MEMORY_HPP
