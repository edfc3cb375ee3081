// How many CPUs this process may use: the default pool's size.
#ifndef BACKGROUND_SRC_CPU_COUNT_HPP
#define BACKGROUND_SRC_CPU_COUNT_HPP

#include <cstddef>

namespace background::detail {

// The CPUs in this thread's affinity mask, lowered to a cgroup CPU quota where one is set
// (v2 `cpu.max`, or v1 `cpu.cfs_quota_us`, rounded up), at least 1.
std::size_t available_cpus() noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_CPU_COUNT_HPP
