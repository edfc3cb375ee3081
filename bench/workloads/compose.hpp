// when_all, as_completed, map, co_await: the verbs of issue 11 that compose futures, each timed
// against what a user writes without them.
//
// when_all, as_completed: N tasks returning `i`, then one join, two figures per process:
//   ns_per_element        from the first submission until the sum is known: submit N, join.
//                         The same work for every peer, whatever the speed of its submission.
//   ready_ns_per_element  the join alone, over N futures that have all finished (each waited
//                         for before the clock): what the combinator itself costs per element.
// The join is `when_all(fs).get()` then a sum, or a loop of `as_completed(fs)` summing `get()`;
// on the peers, the same futures collected by hand in a std::vector and `get()` one by one. The
// join right after submission is not timed alone: how much of it is still to wait for depends on
// how fast each pool submitted, so it would not be the same work for every peer.
//
// map: `pool::map(x * x + 1)` over 10M ints (a std::span of a prebuilt vector), default chunk,
// into a std::vector<int>; against oneTBB's parallel_for over a blocked_range and a plain loop
// on one thread, each writing into a std::vector<int> allocated inside the clock. ms, median of
// repeats() after one untimed run.
//
// co_await: a coroutine that awaits 100k trivial tasks one after the other (`f = p.run(plus_one,
// v); v = co_await std::move(f);`), against the same chain built from 100k then() continuations
// and one get(). ns per step, median of repeats() after one untimed chain.
#ifndef BENCH_WORKLOADS_COMPOSE_HPP
#define BENCH_WORKLOADS_COMPOSE_HPP

#include <benchmark/benchmark.h>

#include <background/background.hpp>
#include <concepts>
#include <cstddef>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "options.hpp"
#include "peers/background.hpp"
#include "peers/peer.hpp"
#include "stats.hpp"
#include "workloads/throughput.hpp"

#ifdef BENCH_HAVE_TBB
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#endif

namespace bench {

// --- when_all, as_completed ----------------------------------------------------------------

// Submits `tasks` tasks returning i, then times `join(fs)` (which returns the sum) twice: once
// with the submission inside the clock, once over futures that have all finished.
template <peer P, class Join>
void time_join(benchmark::State& state, P& p, std::size_t tasks, Join join) {
  using future = decltype(p.submit([] { return 1; }));
  const auto expected = static_cast<long long>(tasks) * static_cast<long long>(tasks - 1) / 2;
  std::vector<future> fs;
  fs.reserve(tasks);
  auto submit_all = [&] {
    for (std::size_t i = 0; i < tasks; ++i) fs.push_back(p.submit([i] { return int(i); }));
  };
  for (auto _ : state) {
    auto t0 = clock::now();
    submit_all();
    long long sum = join(fs);
    state.counters["ns_per_element"] = ns_since(t0) / static_cast<double>(tasks);
    if (sum != expected) state.SkipWithError("wrong sum");
    fs.clear();

    submit_all();
    for (auto& f : fs) f.wait();
    t0 = clock::now();
    sum = join(fs);
    state.counters["ready_ns_per_element"] = ns_since(t0) / static_cast<double>(tasks);
    if (sum != expected) state.SkipWithError("wrong sum");
    fs.clear();
  }
  state.counters["tasks"] = static_cast<double>(tasks);
}

// when_all: background::when_all on background, get() one by one on the peers.
template <peer P>
void when_all(benchmark::State& state) {
  const std::size_t tasks = scaled(100'000, task_factor<P>(), 2);
  P p(cpus());
  warm_up(p);
  if constexpr (std::same_as<P, background_peer>) {
    time_join(state, p, tasks, [](auto& fs) {
      const std::vector<int> all = background::when_all(fs).get();
      return std::accumulate(all.begin(), all.end(), 0LL);
    });
  } else {
    time_join(state, p, tasks, [](auto& fs) {
      long long sum = 0;
      for (auto& f : fs) sum += f.get();
      return sum;
    });
  }
}

// as_completed100k, as_completed10k: the same sum, taken in the order the tasks finish. No C++
// peer has as_completed; Python's is in python_peer.py. Linear means the same ns per element at
// both sizes.
template <std::size_t full>
void as_completed(benchmark::State& state) {
  const std::size_t tasks = scaled(full, 1.0, 2);
  background_peer p(cpus());
  warm_up(p);
  time_join(state, p, tasks, [](auto& fs) {
    long long sum = 0;
    for (auto&& f : background::as_completed(fs)) sum += f.get();
    return sum;
  });
}

// --- map -------------------------------------------------------------------------------------

inline constexpr auto square_plus_one = [](int x) { return x * x + 1; };

// The 10M inputs (a tenth with --quick), built once per process, outside every clock; values
// stay below 10,000 so that x * x + 1 cannot overflow.
inline const std::vector<int>& map_input() {
  static const std::vector<int> in = [] {
    std::vector<int> v(scaled(10'000'000));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>(i % 10'000);
    return v;
  }();
  return in;
}

// Runs `once()` (which returns the output vector) once untimed, then repeats() times timed;
// checks every output against a plain loop's, outside the clock. Reports the median in ms.
template <class Once>
void time_map(benchmark::State& state, Once once) {
  const std::vector<int>& in = map_input();
  std::vector<int> expected(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) expected[i] = square_plus_one(in[i]);
  if (once() != expected) state.SkipWithError("wrong map output");
  for (auto _ : state) {
    std::vector<double> ms;
    for (int r = 0; r < repeats(); ++r) {
      const auto t0 = clock::now();
      std::vector<int> out = once();
      benchmark::DoNotOptimize(out.data());
      ms.push_back(ns_since(t0) / 1e6);
      if (out != expected) state.SkipWithError("wrong map output");
    }
    state.counters["ms"] = median(ms);
  }
  state.counters["elements"] = static_cast<double>(in.size());
}

// map/background: pool::map with its default chunk, on a pool of cpus() workers; the calling
// thread waits in get().
inline void map_background(benchmark::State& state) {
  background_peer p(cpus());
  warm_up(p);
  const std::span<const int> in(map_input());
  time_map(state, [&] { return p.pool().map(square_plus_one, in).get(); });
}

// map/serial: a plain loop on the calling thread.
inline void map_serial(benchmark::State& state) {
  const std::vector<int>& in = map_input();
  time_map(state, [&] {
    std::vector<int> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = square_plus_one(in[i]);
    return out;
  });
}

#ifdef BENCH_HAVE_TBB
// map/tbb: parallel_for over a blocked_range (default grain and partitioner) in a task_arena
// of cpus() slots, one of them the calling thread's, as TBB's own examples write it.
inline void map_tbb(benchmark::State& state) {
  oneapi::tbb::task_arena arena(static_cast<int>(cpus()));
  arena.initialize();
  const std::vector<int>& in = map_input();
  time_map(state, [&] {
    std::vector<int> out(in.size());
    arena.execute([&] {
      oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, in.size()),
                                [&](const oneapi::tbb::blocked_range<std::size_t>& r) {
                                  for (std::size_t i = r.begin(); i != r.end(); ++i) {
                                    out[i] = square_plus_one(in[i]);
                                  }
                                });
    });
    return out;
  });
}
#endif

// --- co_await --------------------------------------------------------------------------------

inline constexpr auto plus_one = [](int v) { return v + 1; };

// `steps` trivial tasks awaited one after the other. The body starts on the default pool (a
// coroutine returning background::future does) and moves to `p` at once. Every future is a
// named variable before it is awaited (g++ 12 may destroy a temporary in a co_await twice), and
// is awaited as an rvalue, so that its value is moved out and the future not copied.
inline background::future<int> await_chain(background::pool& p, int steps) {
  co_await background::resume_on(p);
  int v = 0;
  for (int i = 0; i < steps; ++i) {
    background::future<int> f = p.run(plus_one, v);
    v = co_await std::move(f);
  }
  co_return v;
}

// The same chain as continuations: each then() adds one, on `p`; one get() at the end.
inline int then_chain(background::pool& p, int steps) {
  background::future<int> f = p.run([] { return 0; });
  for (int i = 0; i < steps; ++i) f = std::move(f).then(plus_one);
  return std::move(f).get();
}

// Times `chain(pool, steps)` (which returns the last value, `steps`) repeats() times after one
// untimed chain; reports the median ns per step.
template <class Chain>
void time_chain(benchmark::State& state, Chain chain) {
  const int steps = static_cast<int>(scaled(100'000));
  background_peer p(cpus());
  warm_up(p);
  background::run([] {}).get();  // starts the default pool, where a coroutine's body begins
  if (chain(p.pool(), steps) != steps) state.SkipWithError("wrong chain result");
  for (auto _ : state) {
    std::vector<double> ns;
    for (int r = 0; r < repeats(); ++r) {
      const auto t0 = clock::now();
      const int v = chain(p.pool(), steps);
      ns.push_back(ns_since(t0) / steps);
      if (v != steps) state.SkipWithError("wrong chain result");
    }
    state.counters["ns_per_step"] = median(ns);
  }
  state.counters["steps"] = steps;
}

// co_await/background: the coroutine; co_await/then: the then() chain.
inline void co_await_coroutine(benchmark::State& state) {
  time_chain(state, [](background::pool& p, int steps) { return await_chain(p, steps).get(); });
}
inline void co_await_then(benchmark::State& state) { time_chain(state, then_chain); }

}  // namespace bench

#endif  // BENCH_WORKLOADS_COMPOSE_HPP
