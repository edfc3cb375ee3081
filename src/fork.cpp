// fork(): a child process made by fork() inherits its parent's memory but only the thread that
// called fork(). The handlers installed here make every pool usable in the child at once:
// - prepare (parent, before the fork): takes the locks of the registry, of every pool, of the
//   error handler and of the task-block depot, so that no other thread is mid-update under one
//   of them when the memory is copied. Lock-free state (queues, task states) cannot be frozen
//   that way; the child never reads it as the parent's threads left it, except each task's own
//   state word.
//   It also makes, for every pool, the engine the child will get, and room to keep the old
//   ones: the child's handler then allocates and frees nothing.
// - parent (after the fork): frees those engines and unlocks; nothing else changes there.
// - child: adds one to fork_generation, so that every task made before is known to be the
//   parent's; gives each pool its new engine, of the same size, whose workers start at the first
//   submit (a child that only calls exec() or _exit() starts no thread, and nothing here
//   allocates: the child of a multi-threaded process may find the allocator's locks taken); and
//   leaves the old engines, with everything queued on them, to the parent: never
//   freed, never run here.
// A future of the parent's task, waited for in the child, finishes with `forked` (see
// forked_done() in src/task.cpp).
#include "fork.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "background/detail/task_state.hpp"

namespace background::detail {

std::atomic<std::uint32_t> fork_generation{0};

namespace {

// Leaked on purpose, as the other process-wide state: reachable for ever.
struct graveyard_t {
  std::mutex mutex;
  std::vector<const void*> kept;
};
graveyard_t& graveyard() {
  static auto* g = new graveyard_t;
  return *g;
}

void prepare() noexcept {
  // The order of the library's locks everywhere else: the default pool's construction, the
  // registry, then a pool; the error handler's and the depot's are never held while another is
  // taken. Function-local statics that threads initialise without one of these locks are
  // initialised first (pool_impl::before_fork()): a static whose initialisation another thread
  // is in the middle of would stay locked for ever in the child.
  lock_default_pool_for_fork();
  const std::size_t pools = lock_pools_for_fork();
  lock_error_handler_for_fork();
  lock_task_memory_for_fork();
  graveyard_t& g = graveyard();
  g.mutex.lock();
  // Room for the child to keep each pool's old engine without allocating (see child()).
  try {
    g.kept.reserve(g.kept.size() + pools);
  } catch (...) {
    // Out of memory: the child's push_back allocates instead.
  }
}

void parent() noexcept {
  graveyard().mutex.unlock();
  unlock_task_memory_after_fork();
  unlock_error_handler_after_fork();
  unlock_pools_after_fork();
  unlock_default_pool_after_fork();
}

void child() noexcept {
  // relaxed: this is the process's only thread; threads it starts later see the new value.
  fork_generation.fetch_add(1, std::memory_order_relaxed);
  graveyard().mutex.unlock();
  unlock_task_memory_after_fork();
  unlock_error_handler_after_fork();
  renew_pools_after_fork();
  unlock_default_pool_after_fork();
}

}  // namespace

void install_fork_handlers() noexcept {
  // pthread_once, not a function-local static: a fork() while another thread is in the middle
  // of this would leave a static's guard taken for ever in the child, while glibc resets a
  // pthread_once in progress.
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, [] {
    if (pthread_atfork(prepare, parent, child) != 0) {
      // ENOMEM only. The pools still work in this process; a child would not get its own.
      std::fputs("background: pthread_atfork failed; pools will not work in forked children\n",
                 stderr);
    }
  });
}

std::mutex& fork_mutex() noexcept { return graveyard().mutex; }

void keep_forever_locked(const void* p) noexcept {
  try {
    graveyard().kept.push_back(p);
  } catch (...) {
    // Out of memory: the object is still never freed, only LeakSanitizer would miss it.
  }
}

void keep_forever(const void* p) noexcept {
  std::lock_guard<std::mutex> lock(fork_mutex());
  keep_forever_locked(p);
}

}  // namespace background::detail
