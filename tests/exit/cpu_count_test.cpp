// cpu_count_test: the default pool's size (background::n, and a default-constructed pool) is the
// number of CPUs the process may run on: its affinity mask when no cgroup CPU quota is set, and
// 1 in a child process restricted to one CPU before the default pool's first use.
#include <gtest/gtest.h>
#include <sched.h>

#include <cstddef>
#include <fstream>
#include <string>

#include "background/background.hpp"
#include "child_process.hpp"

namespace {

// Whether a cgroup CPU quota is set where this machine mounts one (v1 or v2); the library then
// counts fewer CPUs than the affinity mask, and the first test does not apply.
bool cpu_quota_set() {
  std::ifstream v1("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  long long quota = -1;
  if (v1 >> quota && quota > 0) return true;
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string max;
  return v2 >> max && max != "max";
}

std::size_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return static_cast<std::size_t>(CPU_COUNT(&set));
}

TEST(CpuCountTest, DefaultPoolMatchesAffinityMask) {
  if (cpu_quota_set()) GTEST_SKIP() << "a cgroup CPU quota is set on this machine";
  const std::size_t cpus = affinity_cpus();
  ASSERT_GT(cpus, 0u);
  EXPECT_EQ(std::size_t{background::n}, cpus);
  EXPECT_EQ(background::pool{}.size(), cpus);
}

TEST(CpuCountTest, OneCpuAffinityGivesOneThread) {
  const exit_tests::child_result r =
      exit_tests::run_child(BACKGROUND_EXIT_SCENARIOS, {"affinity1"});
  ASSERT_TRUE(r.exited_with(0)) << r.describe();
  EXPECT_EQ(r.output, "n 1\npool 1\n");
}

}  // namespace
