#include "cpu_count.hpp"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "background/detail/testing.hpp"

namespace background::detail {
namespace {

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

std::size_t affinity_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<std::size_t>(count);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? hw : 1;
}

// CPUs allowed by a quota of `quota` µs per `period` µs, rounded up; `unlimited` if none.
std::size_t quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return unlimited;
  return static_cast<std::size_t>((quota + period - 1) / period);
}

// The quota in one cgroup directory, v2 (`cpu.max`: "max 100000" or "200000 100000") or v1.
std::size_t dir_quota(const std::string& dir, bool v2) {
  if (v2) {
    std::ifstream in(dir + "/cpu.max");
    std::string quota;
    long long period = 0;
    if (!(in >> quota >> period) || quota == "max") return unlimited;
    return quota_cpus(std::stoll(quota), period);
  }
  std::ifstream q(dir + "/cpu.cfs_quota_us");
  std::ifstream p(dir + "/cpu.cfs_period_us");
  long long quota = -1;
  long long period = 0;
  if (!(q >> quota) || !(p >> period)) return unlimited;
  return quota_cpus(quota, period);
}

// The smallest quota on the way from this process's cgroup up to the hierarchy's root.
std::size_t hierarchy_quota(const std::string& mount, std::string path, bool v2) {
  std::size_t best = unlimited;
  for (;;) {
    best = std::min(best, dir_quota(mount + path, v2));
    if (path.empty() || path == "/") break;
    path.erase(path.find_last_of('/'));
  }
  return best;
}

struct mount_point {
  std::string dir;   // where it is mounted, under the root the files are read from
  std::string root;  // the cgroup it shows at `dir` ("/": the hierarchy's root)
  bool v2 = false;
};

// Where the cgroup v2 hierarchy, and the v1 hierarchy with the cpu controller, are mounted, as
// paths under `root`.
std::vector<mount_point> cgroup_mounts(const std::string& root) {
  std::vector<mount_point> found;
  std::ifstream in(root + "/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream before(line.substr(0, dash));
    std::istringstream after(line.substr(dash + 3));
    std::string id, parent, dev, mount_root, dir, fstype, source, options;
    before >> id >> parent >> dev >> mount_root >> dir;
    after >> fstype >> source >> options;
    if (fstype == "cgroup2") found.push_back({root + dir, mount_root, true});
    if (fstype == "cgroup" && ("," + options + ",").find(",cpu,") != std::string::npos) {
      found.push_back({root + dir, mount_root, false});
    }
  }
  return found;
}

// The CPUs that the cgroup quotas on this process's way to the root allow, as the files under
// `root` (empty: "/") say; `unlimited` if none is set.
std::size_t cgroup_cpus(const std::string& root) {
  const std::vector<mount_point> mounts = cgroup_mounts(root);
  std::size_t best = unlimited;
  std::ifstream in(root + "/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    // "hierarchy-id:controllers:path"; v2 is "0::path".
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    const bool v2 = controllers.empty();
    if (!v2 && ("," + controllers + ",").find(",cpu,") == std::string::npos) continue;
    for (const mount_point& m : mounts) {
      if (m.v2 != v2) continue;
      // A mount that shows a cgroup below the hierarchy's root (Docker's v1 mounts show
      // /docker/<id>) holds the process's cgroup at its path relative to that cgroup.
      std::string relative = path == "/" ? "" : path;
      if (m.root != "/" && relative.compare(0, m.root.size(), m.root) == 0 &&
          (relative.size() == m.root.size() || relative[m.root.size()] == '/')) {
        relative.erase(0, m.root.size());
      }
      // In a container the hierarchy is often mounted at the process's own cgroup: look at the
      // full path first, then at the mount itself.
      best = std::min(best, hierarchy_quota(m.dir, relative, v2));
      best = std::min(best, dir_quota(m.dir, v2));
    }
  }
  return best;
}

}  // namespace

std::size_t available_cpus() noexcept {
  const std::size_t cpus = affinity_cpus();
  const std::size_t limit = cgroup_cpu_limit("");
  return std::max<std::size_t>(limit != 0 ? std::min(cpus, limit) : cpus, 1);
}

std::size_t cgroup_cpu_limit(const char* root) noexcept {
  try {
    const std::size_t cpus = cgroup_cpus(root);
    return cpus == unlimited ? 0 : cpus;
  } catch (...) {
    return 0;  // an unreadable or odd cgroup file: no limit known, the affinity count holds
  }
}

}  // namespace background::detail
