// bench_pools: every workload on background and on each peer found at configure time, one
// Google Benchmark each, named <workload>/<peer> ("ff/background", "rtt/asio"), plus the
// floors (floor/*). Each reports its figure as a counter: ns_per_task, median_us and p99_us,
// ms, cpu_ms, ns_per_element and ready_ns_per_element, ns_per_step, or backlog's memory figures
// (workloads/memory.hpp). The workloads of background's own verbs (map, co_await) add two
// columns that are not peers: map/serial, a plain loop on one thread, and co_await/then, the
// same chain built with then(). bench/run.py runs them one per process, interleaved, and makes
// the table.
//
// Own flags, besides Google Benchmark's:
//   --bg_scale=S    multiply task counts by S (run.py --quick: 0.1)
//   --bg_skipped    print "skipped: <what> (<why>)" for every pair not built, and exit
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "floors.hpp"
#include "options.hpp"
#include "peers/background.hpp"
#include "peers/std_async.hpp"
#include "peers/textbook.hpp"
#include "workloads/compose.hpp"
#include "workloads/fib.hpp"
#include "workloads/latency.hpp"
#include "workloads/lifecycle.hpp"
#include "workloads/memory.hpp"
#include "workloads/throughput.hpp"
#ifdef BENCH_HAVE_TBB
#include "peers/tbb.hpp"
#endif
#ifdef BENCH_HAVE_ASIO
#include "peers/asio.hpp"
#endif
#ifdef BENCH_HAVE_RVASER
#include "peers/rvaser.hpp"
#endif

namespace {

std::vector<std::string> skipped;

template <class Fn>
void add(std::string_view workload, std::string_view peer, Fn fn) {
  std::string name(workload);
  name.append("/").append(peer);
  benchmark::RegisterBenchmark(name.c_str(), fn)->Iterations(1)->UseRealTime();
}

void skip(std::string what, std::string_view why) {
  skipped.push_back("skipped: " + what + " (" + std::string(why) + ")");
}

template <bench::peer P>
void add_peer() {
  const std::string_view n = P::name;
  add("ff", n, bench::ff<P>);
  if constexpr (bench::runs_dropped<P>) add("ff_run", n, bench::ff_run<P>);
  add("futures", n, bench::futures<P>);
  add("producers2", n, bench::producers_ff<P, 2>);
  add("producers8", n, bench::producers_ff<P, 8>);
  add("rtt", n, bench::rtt<P>);
  add("rtt_idle", n, bench::rtt_idle<P>);
  add("seed", n, bench::seed<P>);
  add("when_all", n, bench::when_all<P>);
  if constexpr (bench::forks<P>) {
    add("fib25", n, bench::fib25<P>);
  } else {
    skip("fib25/" + std::string(n), P::no_fork_join);
  }
  if constexpr (requires { P::no_grow; }) {
    skip("grow/" + std::string(n), P::no_grow);
  } else {
    add("grow", n, bench::grow<P>);
  }
  if constexpr (requires { P::no_backlog; }) {
    skip("backlog/" + std::string(n), P::no_backlog);
  } else {
    add("backlog", n, bench::backlog<P>);
  }
  if constexpr (requires { P::no_idle; }) {
    skip("idle_cpu/" + std::string(n), P::no_idle);
  } else {
    add("idle_cpu", n, bench::idle_cpu<P>);
  }
}

// The workloads of background's own composition verbs that have no per-peer form.
void add_compose() {
  add("as_completed100k", "background", bench::as_completed<100'000>);
  add("as_completed10k", "background", bench::as_completed<10'000>);
  skip("as_completed/std_async, textbook, tbb, asio, rvaser",
       "no as_completed for std::future; Python's is the peer");
  add("map", "background", bench::map_background);
  add("map", "serial", bench::map_serial);
#ifdef BENCH_HAVE_TBB
  add("map", "tbb", bench::map_tbb);
#else
  skip("map/tbb", "find_package(TBB) found no oneTBB at configure time");
#endif
  skip("map/std_async, textbook, asio, rvaser",
       "no parallel loop of their own; a hand-split loop would time our splitting");
  add("co_await", "background", bench::co_await_coroutine);
  add("co_await", "then", bench::co_await_then);
  skip("co_await/<every peer>", "no coroutine that awaits their futures; then() is the baseline");
}

void register_all() {
  add_peer<bench::background_peer>();
  add_peer<bench::std_async_peer>();
  add_peer<bench::textbook_peer>();
#ifdef BENCH_HAVE_TBB
  add_peer<bench::tbb_peer>();
#else
  skip("tbb", "find_package(TBB) found no oneTBB at configure time");
#endif
#ifdef BENCH_HAVE_ASIO
  add_peer<bench::asio_peer>();
#else
  skip("asio", "find_package(Boost) found no Boost at configure time");
#endif
#ifdef BENCH_HAVE_RVASER
  add_peer<bench::rvaser_peer>();
#else
  skip("rvaser", "find_package(thread_pool) found no libthread-pool-dev at configure time");
#endif
  add_compose();
  bench::register_floors();
}

// Takes our own flags out of argv before Google Benchmark sees it.
bool take_own_flags(int& argc, char** argv) {
  bool list_skipped = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--bg_scale=", 11) == 0) {
      bench::scale = std::strtod(argv[i] + 11, nullptr);
      if (!(bench::scale > 0.0)) {
        std::fprintf(stderr, "bench_pools: --bg_scale must be positive\n");
        std::exit(2);
      }
    } else if (std::strcmp(argv[i], "--bg_skipped") == 0) {
      list_skipped = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return list_skipped;
}

}  // namespace

int main(int argc, char** argv) {
  const bool list_skipped = take_own_flags(argc, argv);
  register_all();
  if (list_skipped) {
    for (const auto& line : skipped) std::printf("%s\n", line.c_str());
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
