// fib25: recursive fork-join. Each call fib(n) with n >= 2 runs fib(n-1) as a task, computes
// fib(n-2) inline, then waits for the task: about 121k tasks and as many nested waits.
#ifndef BENCH_WORKLOADS_FIB_HPP
#define BENCH_WORKLOADS_FIB_HPP

#include <benchmark/benchmark.h>

#include <vector>

#include "options.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"
#include "workloads/throughput.hpp"

namespace bench {

template <forks P>
long fib(P& p, int n) {
  if (n < 2) return n;
  long a = 0;
  long b = 0;
  p.fork_join([&p, &a, n] { a = fib(p, n - 1); }, [&p, &b, n] { b = fib(p, n - 2); });
  return a + b;
}

// The top call runs inside the pool: in the arena for TBB, as a task for the others.
template <forks P>
long fib_from_outside(P& p, int n) {
  if constexpr (requires { p.enter([] { return 1L; }); }) {
    return p.enter([&p, n] { return fib(p, n); });
  } else {
    return p.submit([&p, n] { return fib(p, n); }).get();
  }
}

template <forks P>
void fib25(benchmark::State& state) {
  P p(cpus());
  warm_up(p);
  for (auto _ : state) {
    std::vector<double> ms;
    for (int r = 0; r < repeats(); ++r) {
      const auto t0 = clock::now();
      const long v = fib_from_outside(p, 25);
      ms.push_back(ns_since(t0) / 1e6);
      if (v != 75025) state.SkipWithError("wrong fib(25)");
    }
    state.counters["ms"] = median(ms);
  }
}

}  // namespace bench

#endif  // BENCH_WORKLOADS_FIB_HPP
