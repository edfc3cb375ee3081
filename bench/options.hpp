// The knobs run.py passes to bench_pools: how much work each benchmark does.
#ifndef BENCH_OPTIONS_HPP
#define BENCH_OPTIONS_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace bench {

// --bg_scale=S multiplies every task count (run.py --quick passes 0.1); 1 is the full suite.
inline double scale = 1.0;

// `full` scaled by --bg_scale and by a peer's own factor (std::async runs fewer tasks, since it
// starts a thread for each), never below `floor`.
inline std::size_t scaled(std::size_t full, double peer_factor = 1.0, std::size_t floor = 1) {
  const double n = std::round(static_cast<double>(full) * scale * peer_factor);
  return std::max(floor, static_cast<std::size_t>(n));
}

// How many times a one-shot workload (fib25, seed, grow) is repeated in one process; the
// benchmark reports the median of them.
inline int repeats() { return scale >= 1.0 ? 5 : 1; }

}  // namespace bench

#endif  // BENCH_OPTIONS_HPP
