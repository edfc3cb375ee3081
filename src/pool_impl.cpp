#include "pool_impl.hpp"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "background/detail/testing.hpp"
#include "background/error.hpp"
#include "backoff.hpp"
#include "cpu_count.hpp"
#include "fork.hpp"
#include "futex.hpp"
#include "registry.hpp"
#include "signal_mask.hpp"
#include "task_memory.hpp"

namespace background::detail {
namespace {

// How many workers of a pool may search at once: the CPUs this process may use, read once.
std::uint32_t max_searching() noexcept {
  static const auto cpus = static_cast<std::uint32_t>(available_cpus());
  return cpus;
}

constexpr int spin_pauses = 100;
constexpr int spin_yields = 50;

thread_local pool_impl* tls_worker = nullptr;      // the pool this thread works for, if any
thread_local work_deque* tls_deque = nullptr;      // that worker's own deque, if it has one
thread_local running_frame* tls_frames = nullptr;  // tasks running on this thread
thread_local worker_counts* tls_counts = nullptr;  // that worker's counts for stats()
thread_local const sigset_t* tls_start_mask = nullptr;  // that worker's creator's mask
// What this worker owes work_: entries it ran or dropped, not yet subtracted (see
// worker_main()).
thread_local std::uint64_t tls_owed = 0;
constexpr int max_owed_entries = 64;
// Whether this thread's last submit had to wake a parked worker (see submit_woke_worker()).
thread_local bool tls_submit_woke = false;

// relaxed: a test sets it before the resize it is about to make, on the same thread.
std::atomic<int> failing_thread_starts{0};
// relaxed: a test sets it before it starts the pool it is for (thread creation orders it).
std::atomic<void (*)(park_point)> park_hook{nullptr};

// Calls the hook set by set_park_hook(), if any.
void call_park_hook(park_point point) noexcept {
  if (auto* hook = park_hook.load(std::memory_order_relaxed)) hook(point);
}

void check_size(std::size_t threads) {
  if (threads == 0) throw std::invalid_argument("background: a pool needs at least one thread");
  if (threads > pool::max_size) {
    throw std::invalid_argument("background: pool size " + std::to_string(threads) +
                                " is above pool::max_size (" + std::to_string(pool::max_size) +
                                ")");
  }
}

}  // namespace

void set_park_hook(void (*hook)(park_point)) noexcept {
  park_hook.store(hook, std::memory_order_relaxed);
}

void fail_next_thread_starts(int count) noexcept {
  failing_thread_starts.store(count, std::memory_order_relaxed);
}

std::size_t worker_threads(const pool& p) noexcept {
  return pool_access::impl(p)->worker_threads();
}

running_frame*& running_frames() noexcept { return tls_frames; }

pool_impl* pool_impl::current_worker_pool() noexcept { return tls_worker; }

std::stop_token shutdown_token(const pool_impl* p) noexcept {
  return p != nullptr ? p->shutdown_token() : std::stop_token{};
}

bool pool_impl::submit_woke_worker() noexcept { return tls_submit_woke; }

bool pool_impl::cancels_pending(const task_base* t) noexcept {
  // A queued task's pool is alive: its drain waits for the task.
  return t->pool_ != nullptr && t->pool_->cancelling_.load(std::memory_order_relaxed);
}

bool pool_impl::inside(const pool_impl* p) noexcept {
  if (tls_worker == p) return true;
  for (const running_frame* f = tls_frames; f != nullptr; f = f->outer) {
    if (f->pool == p) return true;
  }
  return false;
}

pool_impl::pool_impl(pool_options options, pool* owner)
    : pool_impl(std::move(options), owner, register_pool(this)) {}

pool_impl::pool_impl(pool_options options, pool* owner, std::uint64_t pool_id)
    : id(pool_id), options_(std::move(options)), owner_(owner) {}

void pool_impl::lock_for_fork() noexcept {
  mutex_.lock();
  // Made here, in the parent, where allocating is safe; with the lock held, as the options and
  // the id cannot change anyway. (Copying the options may run a user's copy constructor for
  // their hooks, under this lock, as it would in the child.)
  try {
    fork_spare_ = new pool_impl(options_, owner_, id);
  } catch (...) {
    fork_spare_ = nullptr;  // out of memory: the child makes it (std::terminate if it cannot)
  }
}

void pool_impl::unlock_after_fork() noexcept {
  delete std::exchange(fork_spare_, nullptr);  // never started: nothing queued, no thread
  mutex_.unlock();
}

pool_impl* pool_impl::renew_after_fork() noexcept {
  // The child's only thread, holding mutex_ since the prepare handler. This engine stays as
  // the parent's threads left it: never freed (one reference more), its queued tasks never run.
  // Nothing here allocates or frees unless the prepare handler ran out of memory: the new
  // engine was made then, and the graveyard's room reserved (src/fork.cpp).
  keep_forever(this);
  refs_.fetch_add(1, std::memory_order_relaxed);
  const bool closed = closing_.load(std::memory_order_relaxed);
  // If the thread that forked is one of its workers (fork() from a task), it leaves its loop
  // once that task is done: leave() sees stop_.
  stop_.store(true, std::memory_order_relaxed);
  leave_hint_.store(true, std::memory_order_relaxed);
  pool_impl* fresh = std::exchange(fork_spare_, nullptr);
  if (fresh == nullptr) fresh = new pool_impl(options_, owner_, id);  // std::terminate if none
  fresh->target_ = target_;
  // Its callbacks: the nodes live as long as the pool, now with the new engine.
  fresh->callbacks_head_.store(callbacks_head_.exchange(nullptr, std::memory_order_relaxed),
                               std::memory_order_relaxed);
  fresh->callbacks_tail_.store(callbacks_tail_.exchange(nullptr, std::memory_order_relaxed),
                               std::memory_order_relaxed);
  // Its counts for stats(): the parent's tasks finished before the fork.
  std::uint64_t completed = retired_completed_.load(std::memory_order_relaxed);
  std::uint64_t failed = retired_failed_.load(std::memory_order_relaxed);
  std::uint64_t cancelled = retired_cancelled_.load(std::memory_order_relaxed);
  for (const worker& w : workers_) {
    completed += w.counts.completed.load(std::memory_order_relaxed);
    failed += w.counts.failed.load(std::memory_order_relaxed);
    cancelled += w.counts.cancelled.load(std::memory_order_relaxed);
  }
  fresh->retired_completed_.store(completed, std::memory_order_relaxed);
  fresh->retired_failed_.store(failed, std::memory_order_relaxed);
  fresh->retired_cancelled_.store(cancelled, std::memory_order_relaxed);
  if (closed) {
    // Shutting down in the parent: shut in the child, with nothing to drain or join.
    fresh->closing_.store(true, std::memory_order_relaxed);
    fresh->stop_.store(true, std::memory_order_relaxed);
    fresh->leave_hint_.store(true, std::memory_order_relaxed);
    fresh->stopped_ = true;
  } else {
    fresh->start_pending_.store(target_ > 0, std::memory_order_relaxed);
  }
  pool_access::set_impl(*owner_, fresh);
  mutex_.unlock();
  return fresh;
}

void pool_impl::restore_mask_after_fork() noexcept {
  if (tls_worker != nullptr && tls_start_mask != nullptr) {
    pthread_sigmask(SIG_SETMASK, tls_start_mask, nullptr);
  }
}

void pool_impl::before_fork() noexcept {
  // Read by workers without a lock. (signal_mask.hpp's set is first made under a pool's lock.)
  (void)max_searching();
}

void pool_impl::start_workers_after_fork() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!start_pending_.load(std::memory_order_relaxed)) return;  // another thread did it
  if (!stop_.load(std::memory_order_relaxed)) {
    while (active_ < target_) start_worker();  // throws, leaving it pending, if one cannot start
  }
  start_pending_.store(false, std::memory_order_relaxed);
}

void pool_impl::create(std::size_t threads, pool_options options, pool* owner, pool_impl*& impl) {
  check_size(threads);
  auto* p = new pool_impl(std::move(options), owner);
  impl = p;
  try {
    p->resize(threads);
  } catch (...) {
    p->shut_down();  // joins what started, then drops the last reference: deletes p
    impl = nullptr;
    throw;
  }
}

pool_impl::~pool_impl() {
  // Entries still queued are tasks that were run inline or cancelled (or, if this pool was
  // deleted from one of its own tasks, that task's): drop their references.
  // (A post() task is never left: nobody else can run it, so the drain waited for it.)
  const auto drop = [](task_base* t) {
    if (is_post(t)) {
      (void)post_of(t)->run(post_of(t), /*cancelled=*/true, nullptr);
    } else {
      t->release();
    }
  };
  while (task_base* t = pop_locked()) drop(t);
  for (int i = 0; i < deques_made_.load(std::memory_order_relaxed); ++i) {
    work_deque* d = deques_[i].load(std::memory_order_relaxed);
    while (task_base* t = d->steal()) drop(t);
    delete d;
  }
  for (callback_node* n = callbacks_head_.load(std::memory_order_relaxed); n != nullptr;) {
    delete std::exchange(n, n->next.load(std::memory_order_relaxed));
  }
}

void pool_impl::release() noexcept {
  // acq_rel: whoever deletes the pool sees every write that other holders made before letting
  // go (a worker's last `exited = true`, say).
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void pool_impl::start_worker() {
  if (failing_thread_starts.load(std::memory_order_relaxed) > 0 &&
      failing_thread_starts.fetch_sub(1, std::memory_order_relaxed) > 0) {
    throw std::system_error(EAGAIN, std::generic_category(),
                            "background: cannot start a worker thread (injected failure)");
  }
  // Its deque: a free slot, made the first time it is used. Made before anything else, so
  // that a failed allocation leaves everything as it was.
  int slot = -1;
  for (int i = 0; i < deque_slots; ++i) {
    if (!deque_owned_[i]) {
      slot = i;
      break;
    }
  }
  if (slot >= 0 && slot == deques_made_.load(std::memory_order_relaxed)) {
    // The store to deques_made_ publishes the deque: a thread that loads it (acquire or
    // seq_cst) and sees the slot counted sees the deque made, so the slot itself is relaxed.
    deques_[slot].store(new work_deque, std::memory_order_relaxed);
    deques_made_.store(slot + 1, std::memory_order_seq_cst);
  }
  std::size_t index = 0;
  while (index < index_used_.size() && index_used_[index]) ++index;
  if (index == index_used_.size()) index_used_.push_back(false);  // may throw: nothing changed
  worker& w = workers_.emplace_back();
  w.index = index;
  if (slot >= 0) {
    deque_owned_[slot] = true;
    w.slot = slot;
  }
  retain();  // the worker's reference
  try {
    const block_async_signals masked;  // the worker starts with them blocked (signal_mask.hpp)
    w.start_mask = masked.saved();
    w.thread = std::thread([this, &w] { worker_main(&w); });
  } catch (...) {
    if (w.slot >= 0) deque_owned_[w.slot] = false;
    workers_.pop_back();                            // its index was not marked used yet
    refs_.fetch_sub(1, std::memory_order_relaxed);  // never the last: the caller holds one
    throw;
  }
  index_used_[index] = true;
  ++active_;
}

void pool_impl::thread_started(const worker& self) noexcept {
  // Linux allows 15 characters: the name is cut, never the number. Built in a buffer: g++ 12
  // at -O3 warns (-Wrestrict, a false positive, GCC bug 105329) on "-" + std::to_string(k).
  char number[24];
  const int digits = std::snprintf(number, sizeof number, "-%zu", self.index);
  const std::size_t number_size = digits > 0 ? static_cast<std::size_t>(digits) : 0;
  std::string name = options_.name.empty() ? std::string("background") : options_.name;
  if (name.size() + number_size > 15) name.resize(15 - std::min<std::size_t>(number_size, 15));
  name.append(number, number_size);
  pthread_setname_np(pthread_self(), name.c_str());  // fails only for a name too long
  if (options_.on_thread_start) {
    try {
      options_.on_thread_start(self.index);
    } catch (...) {
      report_unobserved(std::current_exception());
    }
  }
}

void pool_impl::thread_stopping(const worker& self) noexcept {
  if (options_.on_thread_stop) {
    try {
      options_.on_thread_stop(self.index);
    } catch (...) {
      report_unobserved(std::current_exception());
    }
  }
}

pool_impl::exited_workers::~exited_workers() {
  // Its loop has returned: this waits only for the thread to end, which may still run its
  // thread_local destructors (an embedding's, say, that take a lock of their own: Python's GIL).
  for (worker& w : list) w.thread.join();
}

void pool_impl::take_exited(exited_workers& out) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto next = std::next(it);
    if (it->exited) out.list.splice(out.list.end(), workers_, it);
    it = next;
  }
}

void pool_impl::worker_main(worker* self) {
  tls_worker = this;
  // acquire-free: the slot was made and assigned under the mutex, before this thread started.
  tls_deque = self->slot >= 0 ? deques_[self->slot].load(std::memory_order_relaxed) : nullptr;
  tls_counts = &self->counts;
  tls_start_mask = &self->start_mask;
  thread_started(*self);
  bool spun = false;       // spun since the last task: the next time out of work, park
  bool searching = false;  // counted in searching_
  // The entries it ran or dropped are subtracted from work_ in batches, when the queue is empty
  // or every max_owed_entries, not one by one: work_ is then written by one thread per task,
  // the submitter, instead of two on two cores.
  int owed_entries = 0;
  // push() leaves a task to a searching worker rather than waking one: the last searcher to
  // stop searching (it found work, parks or leaves) wakes another if the queue is not empty.
  // seq_cst RMW, then seq_cst loads of the queue: the Dekker pair with push(), as for parking
  // below.
  const auto stop_searching = [this, &searching] {
    searching = false;
    if (searching_.fetch_sub(1, std::memory_order_seq_cst) == 1) {
      if (maybe_queued()) wake_one();
    }
  };
  const auto settle_owed = [this, &owed_entries] {
    owed_entries = 0;
    if (tls_owed != 0) account(std::exchange(tls_owed, 0));
  };
  for (;;) {
    // relaxed: a hint; leave() decides under the lock. Searching and the batch end first: once
    // leave() has marked this thread exited, resize() may join it holding the mutex, which they
    // may take.
    if (leave_hint_.load(std::memory_order_relaxed)) {
      if (searching) stop_searching();
      settle_owed();
      drain_local();
      if (leave(self)) break;
    }
    if (task_base* t = find_work()) {
      spun = false;
      if (++owed_entries == max_owed_entries) settle_owed();
      if (searching) stop_searching();
      // relaxed: a snapshot for stats(), which promises no more.
      self->counts.busy.store(true, std::memory_order_relaxed);
      run_entry(t, /*batched=*/true);
      self->counts.busy.store(false, std::memory_order_relaxed);
      continue;
    }
    // Out of work: what it ran is subtracted from work_ before it searches or parks, so wait()
    // returns no later than before. (shut_down() from a task settles it first, too.)
    settle_owed();
    if (!spun) {
      // Out of work: look for more for a moment before parking, so that a burst of tasks or a
      // round trip finds this worker awake, and push() makes no syscall to wake another.
      spun = true;
      if (!searching) {
        // At most as many searchers as CPUs: more could only spin against each other, and 64
        // idle workers must not each spend 50 us after their last task. relaxed: a heuristic;
        // a few too many is harmless, and one that does not search parks properly below.
        if (searching_.load(std::memory_order_relaxed) >= max_searching()) continue;
        searching = true;
        searching_.fetch_add(1, std::memory_order_seq_cst);
      }
      spin_for_work();
      continue;
    }
    // Parking: it stops searching without waking another, since its own look at the queues
    // below covers any task that push() left to it.
    if (searching) {
      searching = false;
      searching_.fetch_sub(1, std::memory_order_seq_cst);
    }
    // wake_seq_ is an event count: the key is read before this worker counts itself sleeping
    // and looks at the queue and leave_hint_, so a wake_one() or wake_all() made after those
    // looks has changed it, and futex_wait() returns at once. seq_cst: the key read comes
    // before sleeping_'s increment; and it is an acquire, so that if it reads a wake_all()'s
    // increment, the leave_hint_ stored before that increment is seen below.
    call_park_hook(park_point::before_key);
    const std::uint32_t key = wake_seq_.load(std::memory_order_seq_cst);
    sleeping_.fetch_add(1, std::memory_order_seq_cst);
    // Dekker with push(): it queues, then reads searching_ and sleeping_; we leave the first
    // and join the second, then look at the queue. If push() saw neither a searcher nor a
    // sleeper, we see its task here. If it saw a sleeper, it bumps wake_seq_ after our key.
    // A worker that must leave does not park: it searches again (below), so that it passes a
    // task left to it on to another when it stops searching at the top of the loop.
    const bool parked =
        !maybe_queued(/*parking=*/true) && !leave_hint_.load(std::memory_order_relaxed);
    if (parked) {
      // Nothing is pending: if a backlog has drained since the last time, the memory its tasks
      // held goes back to the system. Only then: a trim takes malloc's locks for milliseconds
      // (16 ms after a million tasks), which a busy pool's submitters would wait for. relaxed:
      // a heuristic.
      if (work_.load(std::memory_order_relaxed) == 0) trim_task_memory();
      call_park_hook(park_point::before_sleep);
      futex_wait(wake_seq_, key, nullptr);
    }
    // Woken (or not parked after all): it searches again, and counts as searching, so that it
    // wakes the next worker if it finds work and more is queued. That is how a burst wakes as
    // many workers as it needs, one by one, while push() wakes one only when nobody searches.
    searching_.fetch_add(1, std::memory_order_seq_cst);
    searching = true;
    sleeping_.fetch_sub(1, std::memory_order_relaxed);
    spun = false;
    if (!parked) {
      // A task may be on its way but not yet visible (a push between taking a ring cell and
      // filling it): let that thread run rather than spin against it.
      std::this_thread::yield();
    }
  }
  // No longer a worker: its deque may be another's by now, and what the hook submits or waits
  // for is an outside thread's. Its index stays taken until the hook has run, so that a new
  // worker's on_thread_start(k) never comes before this one's on_thread_stop(k).
  tls_worker = nullptr;
  tls_deque = nullptr;
  tls_counts = nullptr;
  thread_stopping(*self);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    index_used_[self->index] = false;
    self->exited = true;  // from here, joining it waits only for the thread to end
  }
  release();  // may delete the pool, if it was destroyed from this thread's task
}

bool pool_impl::leave(worker* self) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool go = stop_.load(std::memory_order_relaxed);
  if (!go && active_ > target_) {  // a shrink: this thread is surplus, and between tasks
    --active_;
    go = true;
  }
  leave_hint_.store(stop_.load(std::memory_order_relaxed) || active_ > target_,
                    std::memory_order_relaxed);
  if (go) {
    if (self->slot >= 0) deque_owned_[self->slot] = false;  // emptied by drain_local()
    // Its counts move to the retired ones (stats() adds its zeroes until it has exited).
    const auto move = [](std::atomic<std::uint64_t>& from, std::atomic<std::uint64_t>& to) {
      to.fetch_add(from.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    };
    move(self->counts.completed, retired_completed_);
    move(self->counts.failed, retired_failed_);
    move(self->counts.cancelled, retired_cancelled_);
  }
  return go;
}

bool pool_impl::maybe_queued(bool parking) const noexcept {
  // seq_cst loads for the Dekker pairs described in worker_main(). The overflow list before
  // the ring: pop_locked() moves entries from the list to the ring without announcing them,
  // and the list's tail becomes null (a seq_cst CAS) only after those ring pushes, so a parker
  // that reads it null then sees the pushes; in the other order it could miss both.
  if (overflow_.maybe_nonempty()) return true;
  if (parking) call_park_hook(park_point::between_looks);
  if (queue_.maybe_nonempty()) return true;
  // seq_cst, like the rest: a deque made a moment ago is seen by the same Dekker argument.
  const int made = deques_made_.load(std::memory_order_seq_cst);
  for (int i = 0; i < made; ++i) {
    if (deques_[i].load(std::memory_order_relaxed)->maybe_nonempty()) return true;
  }
  return false;
}

bool pool_impl::push(task_base* t) {
  // While the overflow list holds tasks, new ones go behind them, so that the ring cannot keep
  // them waiting forever. (A seq_cst load: a plain load on x86.)
  if (overflow_.maybe_nonempty() || !queue_.try_push(t)) {
    overflow_.push(t);
    // The ring is full: this producer is ahead of the workers by a thousand tasks or more.
    // Every 64th task it queues on the overflow list, it yields its CPU, so that where there
    // are more threads than CPUs the workers get to run: without it, 8 producers on 2 vCPUs
    // kept the workers to a fifth of the CPU time, queued nearly everything (memory, page
    // faults) and ran at 250-290 ns per task; with it, ~110. Where nothing else waits for the
    // CPU, the yield returns at once: about 1 us per 64 tasks.
    thread_local unsigned overflowed = 0;
    if ((++overflowed & 63) == 0) std::this_thread::yield();
  }
  return announce();
}

bool pool_impl::announce() {
  // See worker_main(): the queue write before this, then these reads. A searching worker will
  // find the task (and, if it is the last searcher, wake another when it does); otherwise a
  // sleeping one is woken.
  const bool woke = searching_.load(std::memory_order_seq_cst) == 0 && wake_one();
  // A worker helping shut_down() drain waits on idle_cv_, not wake_seq_.
  if (closing_.load(std::memory_order_seq_cst)) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // the helper is inside wait() now
    idle_cv_.notify_all();
  }
  return woke;
}

bool pool_impl::wake_one() {
  if (sleeping_.load(std::memory_order_seq_cst) == 0) return false;
  // After the queue write and the sleeping_ read (see worker_main()); what makes it reach a
  // parker is that the parker read its key before its sleeping_ RMW, which our read saw.
  wake_seq_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_one(wake_seq_);
  return true;
}

void pool_impl::wake_all() {
  // seq_cst, as in wake_one(): its caller stored leave_hint_ (or stop_) first.
  wake_seq_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(wake_seq_);
}

task_base* pool_impl::pop() {
  if (task_base* t = queue_.try_pop()) return t;
  if (!overflow_.maybe_nonempty()) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  return pop_locked();
}

task_base* pool_impl::pop_locked() {
  if (task_base* t = queue_.try_pop()) return t;
  task_base* t = overflow_.try_pop();
  if (t == nullptr) return nullptr;
  // While here, move the next ones (up to a quarter of the ring) onto the ring, so that the
  // workers take them without the lock: a producer that outruns the workers otherwise makes
  // every pop take the mutex (ff: ~210 -> ~165 ns per task). They stay in order: while the
  // list is not empty, producers append to it, not the ring, so the ring holds only entries
  // older than the list's. The last entry stays (pop_front_if() leaves it): taking it empties
  // the list, which only try_pop() does.
  for (std::size_t moved = 1; moved < injection_queue::capacity / 4; ++moved) {
    if (!overflow_.pop_front_if([this](task_base* e) { return queue_.try_push(e); })) break;
  }
  return t;
}

void pool_impl::run_entry(task_base* t, bool batched) noexcept {
  // After shutdown(cancel_pending), what has not started is cancelled: then execute() only
  // drops the entry. relaxed: see cancelling_.
  if (is_post(t)) {
    run_post(post_of(t), cancelling_.load(std::memory_order_relaxed), batched);
    return;
  }
  if (cancelling_.load(std::memory_order_relaxed)) cancel(t);
  // Passes on the queue's reference. Does nothing but drop it if a waiter ran the task inline
  // or it was cancelled. A task it runs is counted done here, not in task_done().
  const bool ran = execute(t, /*drop_ref=*/true, /*caller_counts=*/true);
  const std::uint64_t delta = ran ? one_task : one_stale_entry;
  if (batched) {
    tls_owed += delta;  // worker_main() settles it
  } else {
    account(delta);
  }
}

void pool_impl::run_post(post_node* n, bool cancel, bool batched) noexcept {
  // In a frame of this pool, as a task from run() runs: destroying the pool from inside it
  // (or from its callable's destructor) waits for the other tasks only, and keeps the pool
  // alive until this one is done; its callbacks count as inside the pool.
  running_frame frame{this, tls_frames};
  tls_frames = &frame;
  std::exception_ptr error = n->run(n, cancel, this);  // n is gone
  // The callbacks registered by now (see post_node). acquire: pairs with the release store in
  // add_callback(), so the nodes up to it are linked and their functions visible.
  const callback_node* last_callback = callbacks_tail_.load(std::memory_order_acquire);
  const std::uint32_t phase = cancel ? st_cancelled : error != nullptr ? st_failed : st_ready;
  // As for a task from run(): callbacks, then the report (nobody can observe it: it has no
  // future), then the count, so that wait() returns after both.
  run_callbacks(last_callback, outcome(cancel, error));
  count_finished(phase);
  if (error != nullptr) report_unobserved(std::move(error));
  tls_frames = frame.outer;
  if (batched) {
    tls_owed += one_task;  // worker_main() settles it
  } else {
    task_done(/*entry_left=*/false);
  }
  if (frame.holds_pool_ref) release();  // the pool was destroyed from inside this task
}

void pool_impl::spin_for_work() const noexcept {
  // About 50 us in all: short enough that idle workers cost nothing measurable, long enough to
  // span the gap between the tasks of a burst and a caller's back-to-back round trips.
  // maybe_nonempty()'s loads are seq_cst, which costs nothing more than relaxed on x86.
  spin_then_yield([this] { return maybe_queued() || leave_hint_.load(std::memory_order_relaxed); },
                  spin_pauses, spin_yields);
}

void pool_impl::account(std::uint64_t delta) noexcept {
  // seq_cst: the Dekker pairs with wait() and shut_down() (idle_waiters_, then work_), and
  // release for whoever sees the result: what the tasks did happens before wait() returns.
  const std::uint64_t now = work_.fetch_sub(delta, std::memory_order_seq_cst) - delta;
  if (now != 0 && !closing_.load(std::memory_order_seq_cst)) return;
  if (idle_waiters_.load(std::memory_order_seq_cst) == 0) return;
  { std::lock_guard<std::mutex> lock(mutex_); }  // the waiter is inside wait() now
  idle_cv_.notify_all();
}

bool pool_impl::count_new(bool own_worker) noexcept {
  // Counted first, so that shut_down() cannot miss it and a waiter that runs it at once counts
  // it done only after this. seq_cst: the Dekker pair with shut_down() (closing_, then work_).
  // On one of this pool's workers that owes work_ for tasks it has run (tls_owed, not yet
  // subtracted), it owes one less instead: work_ then counts this task in place of one that is
  // done, so it never counts fewer than are pending, and fork-join tasks cost no RMW on a line
  // that every worker writes. (Its own running task is counted too, so shut_down() waits.)
  const bool netted = own_worker && static_cast<std::uint32_t>(tls_owed) != 0;
  if (netted) {
    tls_owed -= one_task;
  } else {
    work_.fetch_add(one_task, std::memory_order_seq_cst);
  }
  return netted;
}

void pool_impl::uncount(bool netted) noexcept {
  if (netted) {
    tls_owed += one_task;
  } else {
    account(one_task);
  }
}

void pool_impl::enqueue(task_base* entry, bool to_deque) {
  // A task submitted from one of our workers' own tasks goes on its deque (fork-join: it is
  // likely to be waited for there, soon).
  if (to_deque && tls_deque != nullptr && tls_deque->push(entry)) {
    tls_submit_woke = announce();  // for the thieves
  } else {
    tls_submit_woke = push(entry);
  }
}

void pool_impl::post(post_node* n) {
  if (start_pending_.load(std::memory_order_relaxed)) start_workers_after_fork();
  tls_submit_woke = false;  // set below if this post wakes a parked worker
  const bool own_worker = tls_worker == this;
  const bool netted = count_new(own_worker);
  // As in submit(): the Dekker pair with shut_down().
  if (closing_.load(std::memory_order_seq_cst) && !inside(this)) {
    uncount(netted);
    throw shutdown_error();
  }
  if (stop_.load(std::memory_order_acquire)) {
    // No worker is left (see submit()): this thread, inside one of the pool's tasks, runs it.
    run_post(n, /*cancel=*/false, /*batched=*/false);
    return;
  }
  // A reference keeps the pool alive until this call is done with it, as in submit().
  if (!own_worker) retain();
  enqueue(entry_of(n), /*to_deque=*/own_worker);
  if (!own_worker) release();
}

bool pool_impl::submit(task_base* t, bool with_callbacks, bool internal) {
  if (start_pending_.load(std::memory_order_relaxed)) start_workers_after_fork();
  tls_submit_woke = false;  // set below if this submit wakes a parked worker
  const bool own_worker = tls_worker == this;
  const bool netted = count_new(own_worker);
  if (closing_.load(std::memory_order_seq_cst) && !internal && !inside(this)) {
    uncount(netted);
    throw shutdown_error();
  }
  // A cancelled continuation may get these too; nobody reads them from a cancelled task.
  t->pool_ = this;
  t->pool_id_ = id;
  std::uint32_t s = t->state_.load(std::memory_order_relaxed);
  const bool continuation = (s & st_phase_mask) == st_pending;
  if (!continuation && (s & st_phase_mask) != st_queued) {  // cancelled meanwhile
    uncount(netted);
    return false;
  }
  if (with_callbacks) {
    // acquire: pairs with the release store in add_callback().
    t->callbacks_ = callbacks_tail_.load(std::memory_order_acquire);
  }
  // After stop_ no worker is left (see shut_down(): only this thread can be submitting then,
  // from a task that destroyed its own pool), so this thread runs the task itself; a
  // continuation it claims straight from pending, and nobody else can finish it.
  const bool stopped = stop_.load(std::memory_order_acquire);
  // Once it is queued (and a continuation is queued by the CAS below, before it is pushed), a
  // waiting worker may run it, and the task may destroy the pool (`delete p` from its own task,
  // or the last step of a coroutine whose caller then destroys the pool): a reference keeps it
  // alive until this call is done with it. One of its own workers needs none: it holds one until
  // its thread returns.
  if (!own_worker) retain();
  const auto unpin = [this, own_worker] {
    if (!own_worker) release();
  };
  if (continuation) {
    const std::uint32_t next = stopped ? st_running : st_queued;
    for (;;) {
      if ((s & st_phase_mask) != st_pending) {  // cancelled meanwhile
        uncount(netted);
        unpin();
        return false;
      }
      // release: pairs with the acquire in execute() (a waiter may claim it at once) and in
      // cancel(), so pool_ and the callable are visible there.
      // Claimed for this thread, it keeps the waiter bit, for the final exchange to wake them.
      // The relink count and the waiter bit stay; so do the helpers' bit if this thread runs it.
      const std::uint32_t keep = s & ~st_phase_mask & (stopped ? ~0U : ~st_helpers);
      if (t->state_.compare_exchange_weak(s, next | keep, std::memory_order_release,
                                          std::memory_order_relaxed)) {
        break;
      }
    }
    // Helpers may run it inline now; they sleep again (setting their bit) if not.
    if (!stopped && (s & st_helpers) != 0) futex_wake_all(t->state_);
  }
  if (stopped) {
    if (continuation) {
      run_claimed(t, /*drop_ref=*/true);
    } else {
      execute(t, /*drop_ref=*/true);
    }
    unpin();
    return true;
  }
  // Continuations that a finishing task schedules (`internal`) go on the ring, in the order
  // their antecedents finished.
  enqueue(t, /*to_deque=*/!internal && own_worker);
  unpin();
  return true;
}

task_base* pool_impl::find_work() noexcept {
  if (tls_deque != nullptr) {
    if (task_base* t = tls_deque->take()) return t;
  }
  if (task_base* t = pop()) return t;
  return steal();
}

task_base* pool_impl::steal() noexcept {
  // acquire: pairs with start_worker()'s store, so every counted slot's deque is visible.
  const int made = deques_made_.load(std::memory_order_acquire);
  if (made == 0) return nullptr;
  // Start at a different victim each time, so that thieves spread out.
  thread_local unsigned next_victim = 0;
  const unsigned start = next_victim++;
  for (int k = 0; k < made; ++k) {
    work_deque* d = deques_[(start + static_cast<unsigned>(k)) % static_cast<unsigned>(made)].load(
        std::memory_order_relaxed);
    if (d == tls_deque) continue;
    if (task_base* t = d->steal()) return t;
  }
  return nullptr;
}

void pool_impl::drain_local() {
  if (tls_deque == nullptr) return;
  // Oldest first would keep their order; newest first is what take() gives, and order among
  // a worker's own submissions is not promised.
  while (task_base* t = tls_deque->take()) push(t);
}

bool pool_impl::run_if_newest_local(task_base* t) noexcept {
  if (tls_deque == nullptr || tls_deque->peek_newest() != t) return false;
  task_base* taken = tls_deque->take();
  if (taken == nullptr) return false;  // a thief took it: it runs there
  // take() gives the newest, which only this thread changes: `t`, an entry of tls_worker's.
  // Counted in this worker's batch, settled when its loop next runs out of work (the task
  // that waits here is still running, so work_ cannot reach zero meanwhile anyway).
  tls_worker->run_entry(taken, /*batched=*/true);
  return true;
}

void pool_impl::task_done(bool entry_left) noexcept {
  // The pool may be destroyed as soon as work_ falls: hold it for the notify. It is alive
  // here, since this task is not yet counted done.
  retain();
  account(entry_left ? one_task - one_stale_entry : one_task);
  release();
}

void pool_impl::resize(std::size_t threads) {
  check_size(threads);
  // Joined once the lock is released (declared first, destroyed last): a leaving thread's end
  // may wait for a lock whose holder waits for ours (size(), stats() or submit() under the GIL).
  exited_workers exited;
  std::lock_guard<std::mutex> lock(mutex_);
  if (stop_.load(std::memory_order_relaxed)) throw shutdown_error();
  take_exited(exited);
  const std::size_t old_target = target_;
  target_ = threads;
  try {
    while (active_ < target_) start_worker();
    start_pending_.store(false, std::memory_order_relaxed);  // after fork(): started now
  } catch (...) {
    target_ = old_target;  // threads this call started are now surplus and leave at once
    leave_hint_.store(active_ > target_, std::memory_order_relaxed);
    wake_all();
    throw;
  }
  if (active_ > target_) {
    leave_hint_.store(true, std::memory_order_relaxed);
    wake_all();
  }
}

std::size_t pool_impl::size() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return target_;
}

std::size_t pool_impl::worker_threads() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const worker& w : workers_) n += w.exited ? 0 : 1;
  return n;
}

void pool_impl::wait() { wait_until(std::chrono::steady_clock::time_point::max()); }

bool pool_impl::wait_until(std::chrono::steady_clock::time_point deadline) {
  if (inside(this)) {
    throw std::logic_error(
        "background: wait() called from one of the pool's own tasks or callbacks would wait for "
        "itself; wait for the futures you need instead");
  }
  // acquire: pairs with the release of the RMWs on work_, so what the tasks did is visible.
  if (work_.load(std::memory_order_acquire) == 0) return true;
  std::unique_lock<std::mutex> lock(mutex_);
  idle_waiters_.fetch_add(1, std::memory_order_seq_cst);  // then work_: see account()
  bool idle = true;
  while (work_.load(std::memory_order_seq_cst) != 0) {
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      idle_cv_.wait(lock);
    } else if (idle_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      idle = work_.load(std::memory_order_seq_cst) == 0;
      break;
    }
  }
  idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
  return idle;
}

void pool_impl::add_callback(std::function<void(const outcome&)> f) {
  auto* node = new callback_node{std::move(f), {}};
  std::lock_guard<std::mutex> lock(mutex_);
  callback_node* tail = callbacks_tail_.load(std::memory_order_relaxed);
  if (tail == nullptr) {
    callbacks_head_.store(node, std::memory_order_release);
  } else {
    tail->next.store(node, std::memory_order_release);  // pairs with run_callbacks()
  }
  callbacks_tail_.store(node, std::memory_order_release);  // pairs with submit()
}

void pool_impl::run_callbacks(const task_base& t, std::uint32_t phase) noexcept {
  if (t.callbacks_ == nullptr) return;
  run_callbacks(t.callbacks_,
                outcome(phase == st_cancelled, phase == st_failed ? t.error_ : nullptr));
}

void pool_impl::run_callbacks(const callback_node* last, const outcome& result) noexcept {
  if (last == nullptr) return;
  // acquire: pairs with the release stores in add_callback(); the task saw its last node, so
  // every node up to it is linked.
  for (callback_node* n = callbacks_head_.load(std::memory_order_acquire);;
       n = n->next.load(std::memory_order_acquire)) {
    try {
      n->fn(result);
    } catch (...) {
      report_unobserved(std::current_exception());
    }
    if (n == last) break;
  }
}

void pool_impl::count_finished(std::uint32_t phase) noexcept {
  if (tls_worker == this && tls_counts != nullptr) {
    // Only this worker writes its counts: a load and a store, no locked instruction.
    std::atomic<std::uint64_t>& c = phase == st_ready    ? tls_counts->completed
                                    : phase == st_failed ? tls_counts->failed
                                                         : tls_counts->cancelled;
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  std::atomic<std::uint64_t>& c = phase == st_ready    ? retired_completed_
                                  : phase == st_failed ? retired_failed_
                                                       : retired_cancelled_;
  c.fetch_add(1, std::memory_order_relaxed);
}

pool_stats pool_impl::stats() const {
  pool_stats r{};
  std::size_t busy = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const worker& w : workers_) {
      if (w.exited) continue;
      ++r.threads;
      // relaxed: a snapshot; counts may lag by the task a worker is finishing.
      r.completed += w.counts.completed.load(std::memory_order_relaxed);
      r.failed += w.counts.failed.load(std::memory_order_relaxed);
      r.cancelled += w.counts.cancelled.load(std::memory_order_relaxed);
      if (w.counts.busy.load(std::memory_order_relaxed)) ++busy;
    }
    r.completed += retired_completed_.load(std::memory_order_relaxed);
    r.failed += retired_failed_.load(std::memory_order_relaxed);
    r.cancelled += retired_cancelled_.load(std::memory_order_relaxed);
  }
  r.busy = busy;
  // Tasks not yet done, less those running: the rest are queued (or done, in a worker's batch
  // not yet subtracted).
  const auto pending =
      static_cast<std::uint32_t>(work_.load(std::memory_order_relaxed));  // relaxed: a snapshot
  r.queued = pending > busy ? pending - busy : 0;
  return r;
}

void pool_impl::shutdown(bool cancel_pending) {
  if (inside(this)) {
    throw std::logic_error(
        "background: pool::shutdown() called from one of the pool's own tasks or callbacks "
        "would wait for itself");
  }
  if (cancel_pending) {
    // Before the drain, so that its workers cancel what they pop from now on; then the running
    // tasks that take a stop token are asked to stop (their stop callbacks run here).
    cancelling_.store(true, std::memory_order_relaxed);
    shutdown_stop_.request_stop();
  }
  stop_workers();
}

void pool_impl::shut_down() noexcept {
  stop_workers();
  release();
}

void pool_impl::stop_workers() noexcept {
  // Whoever comes second waits for the first to finish, then has nothing to do. A pool
  // destroyed from its own task after shutdown() never gets here: its tasks are all done.
  std::lock_guard<std::mutex> once(shutdown_mutex_);
  if (stopped_) return;
  stopped_ = true;
  // Tasks of this pool that this very thread is running (it is destroying the pool from one
  // of them) will finish after we return: wait for all the others, and keep the pool alive
  // for those.
  std::size_t own = 0;
  for (running_frame* f = tls_frames; f != nullptr; f = f->outer) {
    if (f->pool == this && !f->holds_pool_ref) {
      f->holds_pool_ref = true;
      retain();
      ++own;
    }
  }
  const bool on_worker = tls_worker == this;
  // This worker's batch includes tasks already done: they must not hold the drain up.
  if (on_worker && tls_owed != 0) account(std::exchange(tls_owed, 0));
  // seq_cst: the Dekker pair with submit() (closing_, then work_), and with push().
  closing_.store(true, std::memory_order_seq_cst);
  std::unique_lock<std::mutex> lock(mutex_);
  idle_waiters_.fetch_add(1, std::memory_order_seq_cst);
  // The low half of work_: tasks not yet done.
  while (static_cast<std::uint32_t>(work_.load(std::memory_order_seq_cst)) > own) {
    if (on_worker) {
      // This worker is busy destroying the pool: help its siblings drain the queue (with
      // n = 1, nobody else would). push() notifies idle_cv_ while closing_.
      lock.unlock();
      task_base* t = find_work();
      if (t != nullptr) run_entry(t, /*batched=*/true);
      // Settle the batch at once: it holds that task, and the ones it ran inline
      // (run_if_newest_local()); this very loop would otherwise wait for them.
      if (tls_owed != 0) account(std::exchange(tls_owed, 0));
      lock.lock();
      if (t != nullptr) continue;
      if (maybe_queued()) {  // a push has taken a cell and is about to fill it
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
        continue;
      }
      // The lock was released: what it waits for may have happened meanwhile, and been
      // notified while nobody waited. Look again before waiting (account() notifies under it).
      if (static_cast<std::uint32_t>(work_.load(std::memory_order_seq_cst)) <= own) break;
    }
    idle_cv_.wait(lock);
  }
  idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
  // Only now: until the drain is over, then() on a finished task must still find this pool,
  // for this pool's own tasks. Not under our lock: submit_to_pool() takes the registry's lock
  // first, then ours.
  lock.unlock();
  unregister_pool(id);
  lock.lock();
  stop_.store(true, std::memory_order_release);
  leave_hint_.store(true, std::memory_order_relaxed);
  // What is left in the queues are entries of tasks that were run inline or cancelled; the
  // destructor drops them, once no worker can be moving them any more.
  lock.unlock();
  wake_all();
  // The list is walked without the lock (the workers take it as they leave): after stop_,
  // nothing adds to it or erases from it (resize() throws), and stats() only reads the other
  // members under the lock. A detached worker still writes its `exited` flag: its entry stays.
  for (worker& w : workers_) {
    if (w.thread.get_id() == std::this_thread::get_id()) {
      w.thread.detach();  // this thread's task goes on; its loop sees stop_ and returns
    } else {
      w.thread.join();
    }
  }
}

}  // namespace background::detail
