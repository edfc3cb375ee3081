#include "pool_impl.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "background/detail/testing.hpp"
#include "background/error.hpp"
#include "futex.hpp"
#include "registry.hpp"

namespace background::detail {
namespace {

constexpr int spin_iterations = 1000;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

thread_local pool_impl* tls_worker = nullptr;      // the pool this thread works for, if any
thread_local running_frame* tls_frames = nullptr;  // tasks running on this thread

// relaxed: a test sets it before the resize it is about to make, on the same thread.
std::atomic<int> failing_thread_starts{0};

void check_size(std::size_t threads) {
  if (threads == 0) throw std::invalid_argument("background: a pool needs at least one thread");
  if (threads > pool::max_size) {
    throw std::invalid_argument("background: pool size " + std::to_string(threads) +
                                " is above pool::max_size (" + std::to_string(pool::max_size) +
                                ")");
  }
}

}  // namespace

void fail_next_thread_starts(int count) noexcept {
  failing_thread_starts.store(count, std::memory_order_relaxed);
}

std::size_t worker_threads(const pool& p) noexcept {
  return pool_access::impl(p)->worker_threads();
}

running_frame*& running_frames() noexcept { return tls_frames; }

pool_impl* pool_impl::current_worker_pool() noexcept { return tls_worker; }

bool pool_impl::inside(const pool_impl* p) noexcept {
  if (tls_worker == p) return true;
  for (const running_frame* f = tls_frames; f != nullptr; f = f->outer) {
    if (f->pool == p) return true;
  }
  return false;
}

pool_impl::pool_impl() : id(register_pool(this)) {}

pool_impl* pool_impl::create(std::size_t threads) {
  check_size(threads);
  auto* p = new pool_impl();
  try {
    p->resize(threads);
  } catch (...) {
    p->shut_down();  // joins what started, then drops the last reference: deletes p
    throw;
  }
  return p;
}

pool_impl::~pool_impl() {
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
  worker& w = workers_.emplace_back();
  retain();  // the worker's reference
  try {
    w.thread = std::thread([this, &w] { worker_main(&w); });
  } catch (...) {
    workers_.pop_back();
    refs_.fetch_sub(1, std::memory_order_relaxed);  // never the last: the caller holds one
    throw;
  }
  ++active_;
}

void pool_impl::reap_exited() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->exited) {
      it->thread.join();  // its loop has returned: this waits only for the thread to end
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void pool_impl::worker_main(worker* self) {
  tls_worker = this;
  bool spun = false;  // spun since the last task: the next time out of work, sleep
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (stop_) break;
    if (active_ > target_) {  // a shrink: this thread is surplus, and between tasks
      --active_;
      break;
    }
    if (head_ == nullptr) {
      // Out of work: look for more for a moment before sleeping, so that a burst of tasks or a
      // round trip finds this worker awake and submit() makes no syscall to wake it.
      if (!spun) {
        spun = true;
        lock.unlock();
        spin_until_queued();
        lock.lock();
        continue;
      }
      ++sleeping_;
      work_cv_.wait(lock);
      --sleeping_;
      continue;
    }
    spun = false;
    run_next(lock);
  }
  self->exited = true;
  lock.unlock();
  tls_worker = nullptr;
  release();  // may delete the pool, if it was destroyed from this thread's task
}

void pool_impl::run_next(std::unique_lock<std::mutex>& lock) noexcept {
  task_base* t = head_;
  head_ = t->next_;
  if (head_ == nullptr) tail_ = nullptr;
  queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  lock.unlock();
  // Passes on the queue's reference. Does nothing but drop it if a waiter ran the task inline
  // or it was cancelled. A task it runs is counted done here, under the lock taken anyway.
  const bool ran = execute(t, /*drop_ref=*/true, /*caller_counts=*/true);
  lock.lock();
  if (ran) {
    --outstanding_;
    if ((outstanding_ == 0 && stale_entries_ == 0) || closing_) idle_cv_.notify_all();
  } else if (--stale_entries_ == 0 && outstanding_ == 0) {
    idle_cv_.notify_all();
  }
}

void pool_impl::spin_until_queued() const noexcept {
  // A bounded spin: about 20 us on current x86 cores (a pause is 10 to 40 ns), short enough
  // that idle workers cost nothing measurable, long enough to span the gap between the tasks
  // of a burst and a caller's back-to-back round trips. relaxed: it only decides whether to
  // take the lock now, and the lock orders everything else.
  for (int i = 0; i < spin_iterations; ++i) {
    if (queued_.load(std::memory_order_relaxed) != 0) return;
    cpu_relax();
  }
}

bool pool_impl::submit(task_base* t, bool with_callbacks, bool internal) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (closing_ && !internal && !inside(this)) throw shutdown_error();
  // A cancelled continuation may get these too; nobody reads them from a cancelled task.
  t->pool_ = this;
  t->pool_id_ = id;
  std::uint32_t s = t->state_.load(std::memory_order_relaxed);
  const bool continuation = (s & st_phase_mask) == st_pending;
  if (!continuation && (s & st_phase_mask) != st_queued) return false;  // cancelled meanwhile
  if (with_callbacks) {
    // acquire: pairs with the release store in add_callback().
    t->callbacks_ = callbacks_tail_.load(std::memory_order_acquire);
  }
  if (continuation) {
    // Counted and made runnable under our lock: a waiter that claims it at once and finishes
    // it takes the lock in task_done() only after we have counted it. After stop_, no worker
    // is left and nothing keeps the pool alive for another thread, so this thread claims it
    // itself, straight from pending, and nobody else can finish it.
    const std::uint32_t next = stop_ ? st_running : st_queued;
    for (;;) {
      if ((s & st_phase_mask) != st_pending) return false;  // cancelled meanwhile
      // release: pairs with the acquire in execute() (a waiter may claim it at once) and in
      // cancel(), so pool_ and the callable are visible there.
      // Claimed for this thread, it keeps the waiter bit, for the final exchange to wake them.
      if (t->state_.compare_exchange_weak(s, stop_ ? next | (s & st_waiters) : next,
                                          std::memory_order_release, std::memory_order_relaxed)) {
        break;
      }
    }
    if (!stop_ && (s & st_waiters) != 0) futex_wake_all(t->state_);  // they may run it inline
  }
  ++outstanding_;
  if (stop_) {
    // A continuation of a task that destroyed its own pool (see above), or a task that such a
    // task submits: no worker is left to run it.
    lock.unlock();
    if (continuation) {
      run_claimed(t, /*drop_ref=*/true);
    } else {
      execute(t, /*drop_ref=*/true);
    }
    return true;
  }
  t->next_ = nullptr;
  if (tail_ == nullptr) {
    head_ = t;
  } else {
    tail_->next_ = t;
  }
  tail_ = t;
  queued_.store(queued_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (closing_) idle_cv_.notify_all();  // a worker helping shut_down() may be waiting for it
  // Wake a worker only if one sleeps (decided under the lock, so none is missed), and after
  // unlocking, so that it does not wake into a held mutex. Once the lock is released a worker
  // may run this task, which may destroy the pool (`delete p` from its own task): a reference
  // keeps the pool alive for the notify.
  const bool wake = sleeping_ > 0;
  if (wake) retain();
  lock.unlock();
  if (wake) {
    work_cv_.notify_one();
    release();
  }
  return true;
}

void pool_impl::task_done(bool entry_left) noexcept {
  // The decrement and the notify happen under the lock, and nothing touches the pool after the
  // unlock: shut_down() may delete it as soon as outstanding_ reaches what it waits for.
  std::lock_guard<std::mutex> lock(mutex_);
  --outstanding_;
  if (entry_left) ++stale_entries_;
  if ((outstanding_ == 0 && stale_entries_ == 0) || closing_) idle_cv_.notify_all();
}

void pool_impl::resize(std::size_t threads) {
  check_size(threads);
  std::lock_guard<std::mutex> lock(mutex_);
  if (stop_) throw shutdown_error();
  reap_exited();
  const std::size_t old_target = target_;
  target_ = threads;
  try {
    while (active_ < target_) start_worker();
  } catch (...) {
    target_ = old_target;  // threads this call started are now surplus and leave at once
    work_cv_.notify_all();
    throw;
  }
  if (active_ > target_) work_cv_.notify_all();
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

void pool_impl::wait() {
  if (inside(this)) {
    throw std::logic_error(
        "background: wait() called from one of the pool's own tasks or callbacks would wait for "
        "itself; wait for the futures you need instead");
  }
  std::unique_lock<std::mutex> lock(mutex_);
  idle_cv_.wait(lock, [this] { return outstanding_ == 0 && stale_entries_ == 0; });
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
  const outcome result(phase == st_cancelled, phase == st_failed ? t.error_ : nullptr);
  // acquire: pairs with the release stores in add_callback(); the task saw its last node, so
  // every node up to it is linked.
  for (callback_node* n = callbacks_head_.load(std::memory_order_acquire);;
       n = n->next.load(std::memory_order_acquire)) {
    try {
      n->fn(result);
    } catch (...) {
      report_unobserved(std::current_exception());
    }
    if (n == t.callbacks_) break;
  }
}

void pool_impl::shut_down() noexcept {
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
  std::unique_lock<std::mutex> lock(mutex_);
  closing_ = true;
  while (outstanding_ > own) {
    if (on_worker && head_ != nullptr) {
      // This worker is busy destroying the pool: help its siblings drain the queue (with
      // n = 1, nobody else would).
      run_next(lock);
      continue;
    }
    idle_cv_.wait(lock);
  }
  // Only now: until the drain is over, then() on a finished task must still find this pool,
  // for this pool's own tasks. Not under our lock: submit_to_pool() takes the registry's lock
  // first, then ours.
  lock.unlock();
  unregister_pool(id);
  lock.lock();
  stop_ = true;
  // What is left in the queue are entries of tasks that were run inline or cancelled.
  task_base* leftovers = std::exchange(head_, nullptr);
  tail_ = nullptr;
  queued_.store(0, std::memory_order_relaxed);
  std::list<worker> workers;
  workers.swap(workers_);
  lock.unlock();
  work_cv_.notify_all();
  while (leftovers != nullptr) std::exchange(leftovers, leftovers->next_)->release();
  for (worker& w : workers) {
    if (w.thread.get_id() == std::this_thread::get_id()) {
      w.thread.detach();  // this thread's task goes on; its loop sees stop_ and returns
    } else {
      w.thread.join();
    }
  }
  // A detached worker still writes its `exited` flag: keep its entry alive with the pool.
  lock.lock();
  workers_.splice(workers_.end(), workers);
  lock.unlock();
  release();
}

}  // namespace background::detail
