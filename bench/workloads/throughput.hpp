// ff, ff_run, futures, producers: many tiny tasks, reported as ns per task. The pool is started
// before the clock and is warm (it has run a task); the clock stops once every task has finished.
#ifndef BENCH_WORKLOADS_THROUGHPUT_HPP
#define BENCH_WORKLOADS_THROUGHPUT_HPP

#include <benchmark/benchmark.h>

#include <cstddef>
#include <latch>
#include <thread>
#include <vector>

#include "options.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"

namespace bench {

inline std::size_t cpus() { return std::max(1U, std::thread::hardware_concurrency()); }

template <peer P>
void warm_up(P& p) {
  p.post([] {});
  p.wait_all();
}

// 1M empty fire-and-forget tasks from one thread, each sent by `send(p)`, then wait for all.
template <peer P, class Send>
void fire_and_forget(benchmark::State& state, Send send) {
  const std::size_t tasks = scaled(1'000'000, task_factor<P>());
  P p(cpus());
  warm_up(p);
  for (auto _ : state) {
    const auto t0 = clock::now();
    for (std::size_t i = 0; i < tasks; ++i) send(p);
    p.wait_all();
    state.counters["ns_per_task"] = ns_since(t0) / static_cast<double>(tasks);
  }
  state.counters["tasks"] = static_cast<double>(tasks);
}

// ff: the tasks sent with post().
template <peer P>
void ff(benchmark::State& state) {
  fire_and_forget<P>(state, [](P& p) { p.post([] {}); });
}

// ff_run: the tasks sent with run_dropped(), on peers whose post() is not their future-returning
// call (background: run() with the future dropped, against post()).
template <runs_dropped P>
void ff_run(benchmark::State& state) {
  fire_and_forget<P>(state, [](P& p) { p.run_dropped([] {}); });
}

// futures: 200k tasks returning an int; submit all, then get all and sum.
template <peer P>
void futures(benchmark::State& state) {
  const std::size_t tasks = scaled(200'000, task_factor<P>());
  P p(cpus());
  warm_up(p);
  using future = decltype(p.submit([] { return 1; }));
  std::vector<future> fs;
  fs.reserve(tasks);
  for (auto _ : state) {
    const auto t0 = clock::now();
    for (std::size_t i = 0; i < tasks; ++i) fs.push_back(p.submit([i] { return int(i & 1); }));
    long sum = 0;
    for (auto& f : fs) sum += f.get();
    state.counters["ns_per_task"] = ns_since(t0) / static_cast<double>(tasks);
    if (sum != static_cast<long>(tasks / 2)) state.SkipWithError("wrong sum");
    fs.clear();
  }
  state.counters["tasks"] = static_cast<double>(tasks);
}

// producers2, producers8: `producers` threads submit 1M fire-and-forget tasks in total, then
// the benchmark's thread waits for all. The producer threads start before the clock.
template <peer P, int producers>
void producers_ff(benchmark::State& state) {
  const std::size_t tasks = scaled(1'000'000, task_factor<P>(), producers);
  const std::size_t each = tasks / producers;
  P p(cpus());
  warm_up(p);
  for (auto _ : state) {
    std::latch start(producers + 1);
    std::vector<std::jthread> threads;
    for (int t = 0; t < producers; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        for (std::size_t i = 0; i < each; ++i) p.post([] {});
      });
    }
    const auto t0 = clock::now();
    start.arrive_and_wait();
    threads.clear();  // joins the producers
    p.wait_all();
    state.counters["ns_per_task"] = ns_since(t0) / static_cast<double>(each * producers);
  }
  state.counters["tasks"] = static_cast<double>(each * producers);
}

}  // namespace bench

#endif  // BENCH_WORKLOADS_THROUGHPUT_HPP
