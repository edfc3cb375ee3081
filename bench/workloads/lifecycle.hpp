// seed, grow, idle_cpu: what a pool costs to start, to stop and to keep while it does nothing.
#ifndef BENCH_WORKLOADS_LIFECYCLE_HPP
#define BENCH_WORKLOADS_LIFECYCLE_HPP

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "options.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"

namespace bench {

// seed: the seed's notebook with n = 110. Starting a pool of 110 threads, 100 tasks that each
// sleep 100 ms, and waiting for them, all inside the clock; stopping the pool is not timed.
template <peer P>
void seed(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<double> ms;
    for (int r = 0; r < repeats(); ++r) {
      std::optional<P> p;
      const auto t0 = clock::now();
      p.emplace(110);
      for (int i = 0; i < 100; ++i) {
        p->post([] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); });
      }
      p->wait_all();
      ms.push_back(ns_since(t0) / 1e6);
    }
    state.counters["ms"] = median(ms);
  }
}

// grow: start a pool of 110 threads and destroy it.
template <peer P>
void grow(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<double> ms;
    for (int r = 0; r < repeats(); ++r) {
      const auto t0 = clock::now();
      { P p(110); }
      ms.push_back(ns_since(t0) / 1e6);
    }
    state.counters["ms"] = median(ms);
  }
}

inline double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

// idle_cpu: a pool of 64 threads, each used once (64 tasks of 5 ms), then left idle: the CPU
// time the whole process uses per 2 s of idling (--bg_scale < 1 idles 0.5 s and scales).
template <peer P>
void idle_cpu(benchmark::State& state) {
  const double seconds = scale >= 1.0 ? 2.0 : 0.5;
  for (auto _ : state) {
    P p(64);
    for (int i = 0; i < 64; ++i) {
      p.post([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
    }
    p.wait_all();
    const double before = cpu_ms();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    state.counters["cpu_ms"] = (cpu_ms() - before) * (2.0 / seconds);
  }
}

}  // namespace bench

#endif  // BENCH_WORKLOADS_LIFECYCLE_HPP
