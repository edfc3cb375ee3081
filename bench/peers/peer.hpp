// What a peer adapter provides, so that each workload is written once for every pool.
//
//   static constexpr std::string_view name;  // the column in the table: "background", "asio"
//   explicit P(std::size_t threads);          // starts the pool (timed in seed and grow)
//   void post(F f);                           // fire and forget
//   auto submit(F f);                         // something with get() that returns f()
//   void wait_all();                          // until every posted task has finished
//
// Optional:
//   void fork_join(A a, B b);    // runs a as a task and b inline, then waits for a: only on
//                                // pools where a task may wait for another (fib25)
//   static constexpr const char* no_fork_join;  // why not, printed by --bg_skipped
//   static constexpr const char* no_grow;       // why grow cannot be measured
//   static constexpr const char* no_idle;       // why idle_cpu cannot be measured
//   static constexpr double task_factor;        // run fewer tasks (std::async)
//   static constexpr const char* no_backlog;    // why backlog cannot be measured
//   static constexpr const char* own_allocator; // why malloc's count misses its tasks (backlog)
//   void run_dropped(F f);       // submits f through the call that returns a future, and drops
//                                // the future at once: ff_run, when post() is another call
#ifndef BENCH_PEERS_PEER_HPP
#define BENCH_PEERS_PEER_HPP

#include <concepts>
#include <string_view>

namespace bench {

// clang-format 14 mangles requires-expressions.
// clang-format off
template <class P>
concept peer = requires(P& p) {
  { P::name } -> std::convertible_to<std::string_view>;
  p.post([] {});
  p.wait_all();
  { p.submit([] { return 1; }).get() } -> std::convertible_to<int>;
};

template <class P>
concept forks = requires(P& p) { p.fork_join([] {}, [] {}); };

template <class P>
concept runs_dropped = requires(P& p) { p.run_dropped([] {}); };
// clang-format on

template <class P>
constexpr double task_factor() {
  if constexpr (requires { P::task_factor; }) {
    return P::task_factor;
  } else {
    return 1.0;
  }
}

}  // namespace bench

#endif  // BENCH_PEERS_PEER_HPP
