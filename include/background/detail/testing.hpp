// Seams for the library's own tests. Not part of the API.
#ifndef BACKGROUND_DETAIL_TESTING_HPP
#define BACKGROUND_DETAIL_TESTING_HPP

#include <cstddef>

#include "background/detail/export.hpp"

namespace background {
class pool;
}  // namespace background

namespace background::detail {

// Makes the next `count` worker-thread starts, in any pool, fail with std::system_error
// (EAGAIN), as when the system is out of threads. 0 turns it off.
BACKGROUND_API void fail_next_thread_starts(int count) noexcept;

// Turns the per-thread caches of task-state blocks on (the default) or off, for tests that
// count allocations: with it off, every task state is one operator new and one delete.
BACKGROUND_API void use_task_cache(bool on) noexcept;

// Where a worker that is about to park calls the park hook: when it starts (before it reads
// the event count's key), between its look at the overflow list and its look at the ring, and
// after its last look found nothing, just before it sleeps.
enum class park_point { before_key, between_looks, before_sleep };

// Calls `hook` (null: none) on a worker that is about to park, at each park_point: a test can
// hold the worker there and submit or move tasks in exactly the windows where a wake-up is
// easiest to lose. Set it before the pool that it is meant for has started.
BACKGROUND_API void set_park_hook(void (*hook)(park_point)) noexcept;

// The number of worker threads `p` has now: started and not yet out of their loop. Once the
// pool is idle and a shrink's surplus threads have left, it equals `p.size()`; threads that a
// shrink made surplus count until they leave.
BACKGROUND_API std::size_t worker_threads(const pool& p) noexcept;

// Calls `hook` (null: none) in the check that reports a failed task's exception once nothing
// can observe it any more, between its look at the task's futures and its look at the then()
// continuations that may still take the exception over: a test can hold a thread there while
// it adds a then() and drops the last future. It is called for every failed task's check, on
// whichever thread makes it (a worker settling the task, the thread dropping a future).
BACKGROUND_API void set_report_hook(void (*hook)()) noexcept;

// The pools in the registry that then(p, f) continuations find their pool in by id: every
// pool from its construction until its shutdown has drained, and none after.
BACKGROUND_API std::size_t registered_pools() noexcept;

// The CPUs that a cgroup CPU quota allows this process (v2 `cpu.max`, v1 `cpu.cfs_quota_us` per
// `cpu.cfs_period_us`, rounded up; the smallest on the way from its cgroup to the root), or 0 if
// none is set, read from the files under `root` as if it were "/" (`root`/proc/self/mountinfo,
// `root`/proc/self/cgroup, and the cgroup files under the mount points found there). With "",
// what the default pool's size is lowered to.
BACKGROUND_API std::size_t cgroup_cpu_limit(const char* root) noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_TESTING_HPP
