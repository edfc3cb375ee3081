// cpu_count_test: the default pool's size (background::n, and a default-constructed pool) is the
// number of CPUs the process may run on: its affinity mask when no cgroup CPU quota is set, and
// 1 in a child process restricted to one CPU before the default pool's first use; and the
// cgroup CPU quota (v1 and v2, rounded up, the smallest on the way to the root), read from fake
// cgroup files through the detail::cgroup_cpu_limit seam, since no test machine has a quota.
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>

#include "background/background.hpp"
#include "background/detail/testing.hpp"
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

// A fake root: proc/self/mountinfo, proc/self/cgroup and cgroup files, in a fresh directory
// that is removed afterwards.
class CgroupQuotaTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (std::filesystem::temp_directory_path() / "cgroup-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    root_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Writes `text` to the file `path` (absolute, as on a real system) under the fake root.
  void write(const std::string& path, const std::string& text) {
    const std::filesystem::path file = root_ / path.substr(1);
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }

  // A process in cgroup `path` of the v2 hierarchy, mounted at /sys/fs/cgroup.
  void v2_process(const std::string& path) {
    write("/proc/self/mountinfo",
          "24 31 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
          "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 "
          "rw,nsdelegate,memory_recursiveprot\n");
    write("/proc/self/cgroup", "0::" + path + "\n");
  }

  // A process in cgroup `path` of the v1 hierarchy with the cpu controller, mounted at
  // /sys/fs/cgroup/cpu,cpuacct.
  void v1_process(const std::string& path) {
    write("/proc/self/mountinfo",
          "35 30 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory\n"
          "36 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup "
          "rw,cpu,cpuacct\n");
    write("/proc/self/cgroup", "9:memory:" + path + "\n4:cpu,cpuacct:" + path + "\n");
  }

  std::size_t limit() const { return background::detail::cgroup_cpu_limit(root_.c_str()); }

  std::filesystem::path root_;
};

TEST_F(CgroupQuotaTest, V2FractionalQuotaRoundsUp) {
  v2_process("/app.slice/web.service");
  write("/sys/fs/cgroup/app.slice/web.service/cpu.max", "150000 100000\n");
  EXPECT_EQ(limit(), 2u);  // 1.5 CPUs: two workers, not one
}

TEST_F(CgroupQuotaTest, V2QuotaBelowOneCpuIsOne) {
  v2_process("/app.slice/web.service");
  write("/sys/fs/cgroup/app.slice/web.service/cpu.max", "50000 100000\n");
  EXPECT_EQ(limit(), 1u);
}

TEST_F(CgroupQuotaTest, V2WholeQuotaIsExact) {
  v2_process("/app.slice/web.service");
  write("/sys/fs/cgroup/app.slice/web.service/cpu.max", "400000 100000\n");
  EXPECT_EQ(limit(), 4u);
}

TEST_F(CgroupQuotaTest, V2MaxIsNoLimit) {
  v2_process("/app.slice/web.service");
  write("/sys/fs/cgroup/app.slice/web.service/cpu.max", "max 100000\n");
  write("/sys/fs/cgroup/cpu.max", "max 100000\n");
  EXPECT_EQ(limit(), 0u);
}

TEST_F(CgroupQuotaTest, NoCgroupFilesIsNoLimit) {
  v2_process("/app.slice/web.service");
  EXPECT_EQ(limit(), 0u);
  EXPECT_EQ(background::detail::cgroup_cpu_limit((root_ / "nothing-here").c_str()), 0u);
}

TEST_F(CgroupQuotaTest, V2SmallestQuotaOnTheWayToTheRootWins) {
  v2_process("/kubepods/pod1/container");
  write("/sys/fs/cgroup/kubepods/pod1/container/cpu.max", "max 100000\n");
  write("/sys/fs/cgroup/kubepods/pod1/cpu.max", "250000 100000\n");
  write("/sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n");
  EXPECT_EQ(limit(), 3u);
}

// In a container the hierarchy is often mounted at the process's own cgroup, so the path in
// /proc/self/cgroup does not exist under the mount: the mount's own files hold the quota.
TEST_F(CgroupQuotaTest, V2HierarchyMountedAtTheProcessesOwnCgroup) {
  v2_process("/docker/0123abcd");
  write("/sys/fs/cgroup/cpu.max", "150000 100000\n");
  EXPECT_EQ(limit(), 2u);
}

TEST_F(CgroupQuotaTest, V1FractionalQuotaRoundsUp) {
  v1_process("/docker/0123abcd");
  write("/sys/fs/cgroup/cpu,cpuacct/docker/0123abcd/cpu.cfs_quota_us", "250000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/docker/0123abcd/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(limit(), 3u);
}

TEST_F(CgroupQuotaTest, V1NoQuotaIsNoLimit) {
  v1_process("/user.slice");
  write("/sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_quota_us", "-1\n");
  write("/sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(limit(), 0u);
}

// The memory hierarchy's files are not the cpu controller's: a cpu.max or quota there is not
// read (a line whose controllers do not include cpu is skipped).
TEST_F(CgroupQuotaTest, V1OtherControllersHierarchyIsIgnored) {
  v1_process("/batch");
  write("/sys/fs/cgroup/memory/batch/cpu.cfs_quota_us", "100000\n");
  write("/sys/fs/cgroup/memory/batch/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(limit(), 0u);
}

// A controller list is matched by whole names: the cpuset controller's line (whose path has
// a quota-like file under the cpu mount) is not the cpu controller's.
TEST_F(CgroupQuotaTest, V1CpusetIsNotTheCpuController) {
  write("/proc/self/mountinfo",
        "36 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup "
        "rw,cpu,cpuacct\n");
  write("/proc/self/cgroup", "5:cpuset:/pinned\n4:cpu,cpuacct:/\n");
  write("/sys/fs/cgroup/cpu,cpuacct/pinned/cpu.cfs_quota_us", "100000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/pinned/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(limit(), 0u);
}

// Docker's v1 mounts show the container's cgroup (mountinfo's root field, /docker/<id>) at the
// mount point: a process in a child cgroup of it, with a lower quota there, finds that quota at
// its path relative to the mount's root.
TEST_F(CgroupQuotaTest, V1MountOfACgroupBelowTheRootIsReadRelativeToIt) {
  write("/proc/self/mountinfo",
        "100 90 0:31 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup "
        "rw,cpu,cpuacct\n");
  write("/proc/self/cgroup", "4:cpu,cpuacct:/docker/0123abcd/worker\n");
  write("/sys/fs/cgroup/cpu,cpuacct/worker/cpu.cfs_quota_us", "100000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/worker/cpu.cfs_period_us", "100000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "300000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(limit(), 1u);
}

}  // namespace
