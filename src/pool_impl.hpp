// pool_impl: the scheduler behind a pool. Submitted tasks go on a lock-free ring (a lock-free
// overflow list takes the rest when it is full), or, when a worker's own task submits
// them, on that worker's work-stealing deque. Workers out of work search for a moment, then
// park on a futex (an event count); submit() wakes a parked one only if none is searching.
// Counting for wait() is one atomic word. docs/design.md explains the whole.
#ifndef BACKGROUND_SRC_POOL_IMPL_HPP
#define BACKGROUND_SRC_POOL_IMPL_HPP

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "background/detail/task_state.hpp"
#include "background/pool.hpp"
#include "injection_queue.hpp"
#include "overflow_list.hpp"
#include "queue_entry.hpp"
#include "work_deque.hpp"

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

// A worker's own counts for stats(): written only by that worker (a load and a store, no
// RMW), read relaxed by stats().
struct worker_counts {
  std::atomic<std::uint64_t> completed{0}, failed{0}, cancelled{0};
  std::atomic<bool> busy{false};
};

class pool_impl {
 public:
  // Starts `threads` workers, named and hooked as `options` say, for the public pool `owner`,
  // whose `impl` it sets before any worker starts (their hooks may use the pool); throws as
  // pool::pool() does, leaving nothing behind.
  static void create(std::size_t threads, pool_options options, pool* owner, pool_impl*& impl);

  // Queues `t` (see detail::submit), making it queued first if it is a pending continuation;
  // returns false, taking nothing, if that continuation was cancelled meanwhile. `internal` is
  // for continuations of accepted work, which a closing pool still accepts from any thread;
  // they run inline once the workers are gone.
  bool submit(task_base* t, bool with_callbacks, bool internal);
  // Queues the post() task `n` (see detail::post()), as submit() queues a task from run().
  void post(post_node* n);
  // Called once for every queued task when it has finished (after its callbacks).
  // `entry_left` says that its queue entry still holds a reference, because a waiter ran it
  // inline or it was cancelled: wait() then also waits for a worker to drop that entry.
  void task_done(bool entry_left) noexcept;
  void resize(std::size_t threads);
  std::size_t size() const noexcept;
  // Worker threads that have not left their loop (detail::worker_threads()).
  std::size_t worker_threads() const noexcept;
  void wait();
  bool wait_until(std::chrono::steady_clock::time_point deadline);
  void add_callback(std::function<void(const outcome&)> f);
  // Calls the callbacks that `t` remembers, with its outcome.
  void run_callbacks(const task_base& t, std::uint32_t phase) noexcept;
  // Calls the callbacks registered up to `last` (none if null) with `result`.
  void run_callbacks(const callback_node* last, const outcome& result) noexcept;
  // The pool object's destructor: drains, stops and joins (unless shutdown() did), then drops
  // the pool's reference.
  void shut_down() noexcept;
  // pool::shutdown(): as the destructor, but the pool object stays; with `cancel_pending`,
  // tasks not yet started are cancelled and running ones asked to stop. Throws logic_error
  // from one of the pool's own tasks.
  void shutdown(bool cancel_pending);
  // Counts a task of this pool that has finished in `phase`, for stats().
  void count_finished(std::uint32_t phase) noexcept;
  pool_stats stats() const;
  pool* owner() const noexcept { return owner_; }
  // fork() (src/fork.cpp): the prepare handler takes the lock of every pool, and the parent's
  // handler releases it. In the child, renew_after_fork() replaces this engine, which belongs to
  // the parent (its queues, its workers), by a new one of the same size, id, options, callbacks
  // and counts, whose workers start at the first submit, resize() or wait() for a task;
  // returns it (a closed one, that takes no task, if this pool was shutting down). This one is
  // never freed, and a worker of it that is the child's thread leaves after its task.
  // lock_for_fork() also makes, in the parent, the engine that renew_after_fork() installs in
  // the child, and unlock_after_fork() (the parent's handler) frees it: the child's handler
  // allocates and frees nothing, as a child that only calls exec() needs (an allocator that
  // does not hold its locks across fork(), as AddressSanitizer's, could hang it there).
  void lock_for_fork() noexcept;
  // Initialises the engine's function-local statics, if they are not yet, before a fork().
  static void before_fork() noexcept;
  void unlock_after_fork() noexcept;
  pool_impl* renew_after_fork() noexcept;
  // In the child: if the thread that forked is a worker (fork() from inside a task), gives it
  // back the signal mask of the thread that started it, now that it is the process's only
  // thread (a process whose only thread blocks SIGTERM, and whatever it execs, would never get
  // it).
  static void restore_mask_after_fork() noexcept;

  // The token that shutdown(cancel_pending) requests stop on.
  std::stop_token shutdown_token() const noexcept { return shutdown_stop_.get_token(); }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  const std::uint64_t id;

  // The pool whose worker this thread is, if any.
  static pool_impl* current_worker_pool() noexcept;
  // Whether this thread's last submit (to any pool) woke a parked worker to run it.
  static bool submit_woke_worker() noexcept;
  // On a worker: runs `t` on this thread if it is the newest task in the worker's own deque,
  // taking it back from there (so that it leaves no stale entry); false if it is not there.
  static bool run_if_newest_local(task_base* t) noexcept;
  // Whether the queued task `t` must be cancelled rather than run: its pool's
  // shutdown(cancel_pending) has started.
  static bool cancels_pending(const task_base* t) noexcept;
  // Whether this thread is running one of `p`'s tasks, or is one of its workers.
  static bool inside(const pool_impl* p) noexcept;
  // Whether submit() from this thread would take a task rather than throw shutdown_error:
  // shut_down() has not started, or this thread is inside() the pool. seq_cst, as in submit().
  bool takes_tasks() const noexcept {
    return !closing_.load(std::memory_order_seq_cst) || inside(this);
  }

 private:
  struct worker {
    std::thread thread;
    bool exited = false;    // past its loop and stop hook; joining it waits for nothing more
    int slot = -1;          // its deque in deques_, if it got one
    std::size_t index = 0;  // its number in the pool: the smallest free one when it started
    worker_counts counts;
    sigset_t start_mask{};  // the mask of the thread that started it, before signal_mask.hpp's
  };

  pool_impl(pool_options options, pool* owner);
  pool_impl(pool_options options, pool* owner, std::uint64_t pool_id);
  // Starts the workers of an engine renewed after fork(), if not yet started; throws as
  // resize() does when a thread cannot start (nothing is queued then).
  void start_workers_after_fork();
  // Drains, stops and joins, once; later calls wait for the first to finish.
  void stop_workers() noexcept;
  // On the worker: names the thread and calls on_thread_start (or on_thread_stop).
  void thread_started(const worker& self) noexcept;
  void thread_stopping(const worker& self) noexcept;
  ~pool_impl();
  void worker_main(worker* self);
  void start_worker();  // with mutex_ held
  // Workers that have left, taken out of workers_ under mutex_, and joined when this is
  // destroyed, after the lock is released.
  struct exited_workers {
    std::list<worker> list;
    exited_workers() = default;
    exited_workers(const exited_workers&) = delete;
    exited_workers& operator=(const exited_workers&) = delete;
    ~exited_workers();
  };
  void take_exited(exited_workers& out);  // with mutex_ held
  // Whether this worker must leave now (stop_, or a shrink made it surplus); takes the lock.
  bool leave(worker* self);
  // The next task for a worker: its own deque's newest, else the ring's oldest, else one
  // stolen from another worker's deque; null if none was found.
  task_base* find_work() noexcept;
  task_base* steal() noexcept;
  // Moves the tasks left in this worker's deque to the ring (before it leaves).
  void drain_local();
  // Wakes a worker for a task just queued, unless one is searching; and a draining shut_down().
  // Says whether it woke a parked worker.
  bool announce();
  // Queues `t`: on the ring, or, when the ring is full or the overflow list is not empty, on
  // the overflow list. Then announce(), and returns what it returned.
  bool push(task_base* t);
  // The oldest queued entry, or null. pop_locked() is for a caller that holds mutex_.
  task_base* pop();
  task_base* pop_locked();
  // `parking`: the last look of a worker about to park (calls the test hook between looks).
  bool maybe_queued(bool parking = false) const noexcept;
  // Wakes one parked worker, if there is one; says whether there was.
  bool wake_one();
  // Wakes every parked worker (leave_hint_ or stop_ changed).
  void wake_all();
  // Runs (or, if a waiter ran it or it was cancelled, drops) a popped entry, and counts it:
  // at once, or if `batched` (its worker loop), in this thread's batch (see worker_main()).
  void run_entry(task_base* t, bool batched) noexcept;
  // Runs the post() task `n` on this thread, or, if `cancel`, destroys it unrun; then its
  // callbacks, the report of its exception, and its count (`batched` as for run_entry()).
  void run_post(post_node* n, bool cancel, bool batched) noexcept;
  // Counts a new task in work_, or, on one of this pool's workers that owes work_ for tasks it
  // has run, in its batch; returns which (`netted`), for uncount().
  bool count_new(bool own_worker) noexcept;
  void uncount(bool netted) noexcept;
  // Queues an entry (queue_entry.hpp) that count_new() counted: on this worker's deque if
  // `to_deque` and it has room, else on the ring; records whether that woke a parked worker.
  void enqueue(task_base* entry, bool to_deque);
  // Returns when a task may be queued or a worker must leave, or after a bounded spin.
  void spin_for_work() const noexcept;
  // Subtracts `delta` from work_ and wakes wait() and shut_down() if they may now return.
  void account(std::uint64_t delta) noexcept;

  // work_ counts, in one word so that both change in one RMW: tasks submitted and not yet
  // done (the low 32 bits) and, times 2^32, queue entries of tasks a waiter ran inline or that
  // were cancelled, not yet dropped by a worker (it may be -1 for a moment: a worker can drop
  // such an entry before the task's runner reports it done; the word wraps and comes back).
  static constexpr std::uint64_t one_task = 1;
  static constexpr std::uint64_t one_stale_entry = std::uint64_t{1} << 32;

  injection_queue queue_;

  // Workers' deques, one per worker up to deque_slots (more workers use the ring only). A slot
  // is made once, under the mutex, and kept until the pool is deleted, so thieves may scan
  // them without a lock; a worker owns the one it holds in deque_owned_ until it leaves, and
  // empties it first.
  static constexpr int deque_slots = 64;
  std::atomic<work_deque*> deques_[deque_slots]{};
  std::atomic<int> deques_made_{0};  // slots made: thieves scan [0, deques_made_)
  bool deque_owned_[deque_slots]{};  // under the mutex

  // Tasks queued while the ring was full: producers push without a lock, and the workers pop
  // under the mutex. While it holds tasks, new ones go behind them, so that the ring cannot
  // keep them waiting forever.
  overflow_list overflow_;

  // The mutex guards: popping the overflow list, the worker list and sizes, idle_cv_'s waits,
  // and the callback list's appends.
  mutable std::mutex mutex_;
  std::condition_variable idle_cv_;  // wait() and shut_down(): work_ fell
  std::size_t target_ = 0;           // size(): the size last set
  std::size_t active_ = 0;           // threads that have not decided to leave
  std::list<worker> workers_;
  std::vector<bool> index_used_;  // worker indices in use (under the mutex)
  // Counts of workers that have left, and of tasks finished by threads that are not this
  // pool's workers (relaxed RMWs: that path is rare).
  std::atomic<std::uint64_t> retired_completed_{0}, retired_failed_{0}, retired_cancelled_{0};

  const pool_options options_;
  pool* const owner_;
  std::mutex shutdown_mutex_;  // held by stop_workers() from start to end
  bool stopped_ = false;       // stop_workers() has run (under shutdown_mutex_)
  std::stop_source shutdown_stop_;
  // The engine for a child process, between the prepare and the child or parent fork handlers
  // (under the mutex, which they hold); null if it could not be made (the child makes it then).
  pool_impl* fork_spare_ = nullptr;

  // seq_cst: sleeping_ (and searching_) and the queue, idle_waiters_ and work_, closing_ and work_
  // are each a pair where one thread writes the first and reads the second and another does the
  // opposite (Dekker): seq_cst makes sure at least one of them sees the other's write.
  // Cache lines are laid out by who writes what, so that a submit does not wait for lines the
  // workers keep writing: work_ (the submitter, and workers' batches); searching_/sleeping_
  // (workers, read by submits); the read-mostly flags; refs_ (two RMWs per submit from outside
  // the pool's own workers).
  alignas(64) std::atomic<std::uint64_t> work_{0};
  alignas(64) std::atomic<std::uint32_t> sleeping_{0};  // workers parked on wake_seq_
  std::atomic<std::uint32_t> wake_seq_{0};        // the event count workers park on (a futex word)
  std::atomic<std::uint32_t> searching_{0};       // workers out of work, spinning before they park
  std::atomic<std::uint32_t> idle_waiters_{0};    // threads in wait() or shut_down()
  alignas(64) std::atomic<bool> closing_{false};  // shut_down() has started
  // shutdown(cancel_pending) has started: workers cancel the entries they pop. relaxed: tasks
  // popped a moment before it is seen are ones that started before the call.
  std::atomic<bool> cancelling_{false};
  // An engine renewed after fork() whose workers have not started (start_workers_after_fork()).
  // relaxed: set before the child had another thread, cleared under the mutex, and a stale
  // `true` only sends a submitter to the lock to find it false.
  std::atomic<bool> start_pending_{false};
  // Workers must leave now. Written under the mutex (release) once the drain is over; read
  // under it, or (acquire) by submit(), where only the thread that set it can see it set.
  std::atomic<bool> stop_{false};
  // stop_, or a shrink made workers surplus: busy workers read it (relaxed) between tasks and
  // take the lock to find out. Written under the mutex.
  std::atomic<bool> leave_hint_{false};

  // One for the pool object and one for each worker thread that has not returned.
  // relaxed increments (made from a live reference); acq_rel decrement, see release().
  alignas(64) std::atomic<std::uint32_t> refs_{1};

  // release: pairs with the acquire load in submit() (and in run_callbacks()), so a task that
  // remembers a node also sees its function and every node before it.
  std::atomic<callback_node*> callbacks_head_{nullptr};
  std::atomic<callback_node*> callbacks_tail_{nullptr};
};

// How the library reaches a public pool's engine.
struct pool_access {
  static pool_impl* impl(const pool& p) noexcept { return p.impl_; }
  static void set_impl(pool& p, pool_impl* impl) noexcept { p.impl_ = impl; }
};

// Claims `t` (queued -> running), runs it, finishes it and returns true; false if someone else
// claimed or cancelled it first. With `drop_ref`, it takes over the caller's reference (a
// queue's), dropping it before the pool counts the task done. With `caller_counts` (a worker
// that popped `t`), the pool does not count it done: the caller does (pool_impl::run_entry(),
// in a batch with the other entries its worker loop ran).
bool execute(task_base* t, bool drop_ref, bool caller_counts = false) noexcept;

// Runs the body of `t`, which this thread has claimed (its phase is st_running), and finishes
// it; `drop_ref` and `caller_counts` as for execute().
void run_claimed(task_base* t, bool drop_ref, bool caller_counts = false) noexcept;

// The tasks running on this thread, innermost first.
running_frame*& running_frames() noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_POOL_IMPL_HPP
