// pool_impl: the scheduler behind a pool. This first engine keeps one FIFO queue under a mutex;
// its interface (submit, task_done, resize, wait, shut_down) is what a faster engine replaces.
#ifndef BACKGROUND_SRC_POOL_IMPL_HPP
#define BACKGROUND_SRC_POOL_IMPL_HPP

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "background/detail/task_state.hpp"
#include "background/pool.hpp"

namespace background::detail {

// A registered callback. Nodes form an append-only list that lives as long as the pool, so a
// task can remember the last node it must call without copying the list.
struct callback_node {
  std::function<void(const outcome&)> fn;
  std::atomic<callback_node*> next{nullptr};
};

// The tasks a thread is running, innermost first (inline runs nest). A pool destroyed from one
// of its own tasks marks that task's frame, so the frame keeps the pool alive until it ends.
struct running_frame {
  pool_impl* pool;
  running_frame* outer;
  bool holds_pool_ref = false;
};

class pool_impl {
 public:
  // Starts `threads` workers; throws as pool::pool() does, leaving nothing behind.
  static pool_impl* create(std::size_t threads);

  // Queues `t` (see detail::submit), making it queued first if it is a pending continuation;
  // returns false, taking nothing, if that continuation was cancelled meanwhile. `internal` is
  // for continuations of accepted work, which a closing pool still accepts from any thread;
  // they run inline once the workers are gone.
  bool submit(task_base* t, bool with_callbacks, bool internal);
  // Called once for every queued task when it has finished (after its callbacks).
  // `entry_left` says that its queue entry still holds a reference, because a waiter ran it
  // inline or it was cancelled: wait() then also waits for a worker to drop that entry.
  void task_done(bool entry_left) noexcept;
  void resize(std::size_t threads);
  std::size_t size() const noexcept;
  // Worker threads that have not left their loop (detail::worker_threads()).
  std::size_t worker_threads() const noexcept;
  void wait();
  void add_callback(std::function<void(const outcome&)> f);
  // Calls the callbacks that `t` remembers, with its outcome.
  void run_callbacks(const task_base& t, std::uint32_t phase) noexcept;
  // The pool object's destructor: drains, stops and joins, then drops the pool's reference.
  void shut_down() noexcept;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  const std::uint64_t id;

  // The pool whose worker this thread is, if any.
  static pool_impl* current_worker_pool() noexcept;
  // Whether this thread is running one of `p`'s tasks, or is one of its workers.
  static bool inside(const pool_impl* p) noexcept;

 private:
  struct worker {
    std::thread thread;
    bool exited = false;  // its loop has returned; joining it no longer waits for anything
  };

  pool_impl();
  ~pool_impl();
  void worker_main(worker* self);
  void start_worker();  // with mutex_ held
  void reap_exited();   // with mutex_ held
  // Pops the queue's head (there is one) and runs it with `lock` released (or, if it already
  // ran or was cancelled, drops the entry).
  void run_next(std::unique_lock<std::mutex>& lock) noexcept;
  // Returns when a task is queued, or after a bounded spin (see the definition).
  void spin_until_queued() const noexcept;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // workers: a task was queued, a shrink, or stop_
  std::condition_variable idle_cv_;  // wait() and shut_down(): outstanding_ fell
  task_base* head_ = nullptr;        // FIFO of queued tasks, linked through task_base::next_
  task_base* tail_ = nullptr;
  // The length of that queue, for workers spinning without the lock. Written only under the
  // lock (a plain load and store, so no RMW); read relaxed by spinners, which then take the
  // lock before touching the queue.
  std::atomic<std::size_t> queued_{0};
  std::size_t target_ = 0;       // size(): the size last set
  std::size_t active_ = 0;       // threads that have not decided to leave
  std::size_t sleeping_ = 0;     // workers waiting on work_cv_
  std::size_t outstanding_ = 0;  // tasks queued or running, not yet task_done()
  // Queue entries of tasks that a waiter ran or that were cancelled, not yet dropped by a
  // worker. It may be -1 for a moment: a worker can drop an entry before the task's runner
  // reports it done.
  std::ptrdiff_t stale_entries_ = 0;
  bool closing_ = false;  // shut_down() has started
  bool stop_ = false;     // workers must leave now
  std::list<worker> workers_;

  // One for the pool object and one for each worker thread that has not returned.
  // relaxed increments (made from a live reference); acq_rel decrement, see release().
  std::atomic<std::uint32_t> refs_{1};

  // release: pairs with the acquire load in submit() (and in run_callbacks()), so a task that
  // remembers a node also sees its function and every node before it.
  std::atomic<callback_node*> callbacks_head_{nullptr};
  std::atomic<callback_node*> callbacks_tail_{nullptr};
};

// How the library reaches a public pool's engine.
struct pool_access {
  static pool_impl* impl(const pool& p) noexcept { return p.impl_; }
};

// Claims `t` (queued -> running), runs it, finishes it and returns true; false if someone else
// claimed or cancelled it first. With `drop_ref`, it takes over the caller's reference (a
// queue's), dropping it before the pool counts the task done. With `caller_counts` (a worker
// that popped `t`), the pool does not count it done: the caller does, in the critical section
// where it pops the next task, so a worker takes the pool's lock once per task, not twice.
bool execute(task_base* t, bool drop_ref, bool caller_counts = false) noexcept;

// Runs the body of `t`, which this thread has claimed (its phase is st_running), and finishes
// it; `drop_ref` and `caller_counts` as for execute().
void run_claimed(task_base* t, bool drop_ref, bool caller_counts = false) noexcept;

// The tasks running on this thread, innermost first.
running_frame*& running_frames() noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_POOL_IMPL_HPP
