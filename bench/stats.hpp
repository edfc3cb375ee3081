// Timing and the summary statistics the benchmarks report.
#ifndef BENCH_STATS_HPP
#define BENCH_STATS_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace bench {

using clock = std::chrono::steady_clock;

inline double ns_since(clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(clock::now() - t0).count();
}

// The q-quantile (0 <= q <= 1) by the nearest-rank method; reorders `v`.
inline double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0.0;
  auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

inline double median(std::vector<double> v) { return quantile(v, 0.5); }

}  // namespace bench

#endif  // BENCH_STATS_HPP
