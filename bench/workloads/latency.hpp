// rtt, rtt_idle: one trivial task at a time, submitted and waited for; each round trip is a
// sample, reported as median and p99 in microseconds.
#ifndef BENCH_WORKLOADS_LATENCY_HPP
#define BENCH_WORKLOADS_LATENCY_HPP

#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>
#include <vector>

#include "options.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"
#include "workloads/throughput.hpp"

namespace bench {

inline void report_us(benchmark::State& state, std::vector<double>& samples_ns) {
  state.counters["median_us"] = quantile(samples_ns, 0.5) / 1000.0;
  state.counters["p99_us"] = quantile(samples_ns, 0.99) / 1000.0;
  state.counters["samples"] = static_cast<double>(samples_ns.size());
}

// `samples` round trips, each after `pause` (0: back to back, workers still awake).
template <peer P>
std::vector<double> round_trips(P& p, std::size_t samples, std::chrono::microseconds pause) {
  std::vector<double> ns;
  ns.reserve(samples);
  for (std::size_t i = 0; i < samples; ++i) {
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    const auto t0 = clock::now();
    auto f = p.submit([] { return 1; });
    benchmark::DoNotOptimize(f.get());
    ns.push_back(ns_since(t0));
  }
  return ns;
}

// rtt: ~20k round trips back to back, after 100 unrecorded ones.
template <peer P>
void rtt(benchmark::State& state) {
  P p(cpus());
  warm_up(p);
  for (auto _ : state) {
    round_trips(p, 100, std::chrono::microseconds(0));
    auto ns = round_trips(p, scaled(20'000), std::chrono::microseconds(0));
    report_us(state, ns);
  }
}

// rtt_idle: ~300 round trips, each after 1 ms of sleep, so the workers have gone to sleep;
// compared with floor/futex_ping_idle.
template <peer P>
void rtt_idle(benchmark::State& state) {
  P p(cpus());
  warm_up(p);
  for (auto _ : state) {
    auto ns = round_trips(p, scaled(300, 1.0, 100), std::chrono::milliseconds(1));
    report_us(state, ns);
  }
}

}  // namespace bench

#endif  // BENCH_WORKLOADS_LATENCY_HPP
