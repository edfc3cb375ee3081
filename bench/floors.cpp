// The floors, measured in the same run as the pools: what the hardware and the kernel charge
// for the steps a pool cannot avoid, so that each figure has something to be compared with.
#include "floors.hpp"

#include <benchmark/benchmark.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "options.hpp"
#include "stats.hpp"

namespace bench {
namespace {

long futex(std::atomic<int>* word, int op, int value) {
  return syscall(SYS_futex, reinterpret_cast<int*>(word), op, value, nullptr, nullptr, 0);
}

// Sleeps in FUTEX_WAIT while `word` holds `seen`.
void futex_wait(std::atomic<int>& word, int seen) {
  while (word.load(std::memory_order_acquire) == seen) futex(&word, FUTEX_WAIT_PRIVATE, seen);
}

void futex_wake(std::atomic<int>& word) { futex(&word, FUTEX_WAKE_PRIVATE, 1); }

// Per operation, in ns: time / (iterations * 1e-9). Google Benchmark picks the iterations.
void report_ns_per_op(benchmark::State& state) {
  state.counters["ns"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void malloc64(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(64);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  report_ns_per_op(state);
}

void atomic_add(benchmark::State& state) {
  std::atomic<long> n{0};
  for (auto _ : state) n.fetch_add(1, std::memory_order_acq_rel);
  benchmark::DoNotOptimize(n.load());
  report_ns_per_op(state);
}

void futex_wake_nobody(benchmark::State& state) {
  std::atomic<int> word{0};
  for (auto _ : state) futex_wake(word);
  report_ns_per_op(state);
}

// A thread asleep in FUTEX_WAIT for 1 ms is woken and wakes the caller back, as a pool's
// worker and its submitter would at best: the floor for rtt_idle.
void futex_ping_idle(benchmark::State& state) {
  std::atomic<int> ping{0};
  std::atomic<int> pong{0};
  const int samples = static_cast<int>(scaled(300, 1.0, 100));
  std::jthread echo([&] {
    for (int i = 1; i <= samples; ++i) {
      futex_wait(ping, i - 1);
      pong.store(i, std::memory_order_release);
      futex_wake(pong);
    }
  });
  for (auto _ : state) {
    std::vector<double> ns;
    for (int i = 1; i <= samples; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const auto t0 = clock::now();
      ping.store(i, std::memory_order_release);
      futex_wake(ping);
      futex_wait(pong, i - 1);
      ns.push_back(ns_since(t0));
    }
    state.counters["median_us"] = quantile(ns, 0.5) / 1000.0;
    state.counters["p99_us"] = quantile(ns, 0.99) / 1000.0;
  }
}

// The raw cost under grow: start 110 std::threads that do nothing, and join them.
void threads110(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<double> ms;
    for (int r = 0; r < repeats(); ++r) {
      const auto t0 = clock::now();
      {
        std::vector<std::jthread> ts;
        ts.reserve(110);
        for (int i = 0; i < 110; ++i) ts.emplace_back([] {});
      }
      ms.push_back(ns_since(t0) / 1e6);
    }
    state.counters["ms"] = median(ms);
  }
}

}  // namespace

void register_floors() {
  benchmark::RegisterBenchmark("floor/malloc64", malloc64)->UseRealTime();
  benchmark::RegisterBenchmark("floor/atomic_add", atomic_add)->UseRealTime();
  benchmark::RegisterBenchmark("floor/futex_wake", futex_wake_nobody)->UseRealTime();
  benchmark::RegisterBenchmark("floor/futex_ping_idle", futex_ping_idle)
      ->Iterations(1)
      ->UseRealTime();
  benchmark::RegisterBenchmark("floor/threads110", threads110)->Iterations(1)->UseRealTime();
}

}  // namespace bench
