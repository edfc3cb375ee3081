// fork: what a child process made by fork() gets of its parent's pools (src/fork.cpp), and the
// pieces of the other modules that the fork handlers call.
#ifndef BACKGROUND_SRC_FORK_HPP
#define BACKGROUND_SRC_FORK_HPP

#include <cstddef>
#include <mutex>

namespace background::detail {

// Installs the pthread_atfork() handlers, once per process; called when the first pool is made.
void install_fork_handlers() noexcept;

// Keeps `p`, an object the parent's threads were using, reachable for ever in the child, which
// neither frees it (its state may be mid-update) nor lets LeakSanitizer call it lost.
// keep_forever_locked() is for a caller that holds fork_mutex().
void keep_forever(const void* p) noexcept;
void keep_forever_locked(const void* p) noexcept;
// Serialises the child's finishing of the parent's tasks (forked_done() in src/task.cpp);
// held across fork() by the prepare handler, as every lock of the library is.
std::mutex& fork_mutex() noexcept;

// The handlers' pieces in the other modules. Each lock_* takes its module's locks, so that no
// other thread holds them mid-update when the process forks; the unlock_* undo it, in the
// parent after the fork and in the child (where the forking thread still holds them).
void lock_error_handler_for_fork() noexcept;  // src/error.cpp
void unlock_error_handler_after_fork() noexcept;
void lock_task_memory_for_fork() noexcept;  // src/task_memory.cpp
void unlock_task_memory_after_fork() noexcept;
void lock_default_pool_for_fork() noexcept;  // src/pool.cpp: no default pool half-made
void unlock_default_pool_after_fork() noexcept;
// src/registry.cpp: the registry, then every pool; returns how many pools there are.
std::size_t lock_pools_for_fork() noexcept;
void unlock_pools_after_fork() noexcept;
// In the child, instead of unlock_pools_after_fork(): gives every live pool a new engine (see
// pool_impl::renew_after_fork()), then unlocks.
void renew_pools_after_fork() noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_FORK_HPP
