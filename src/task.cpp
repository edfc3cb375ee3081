// A task's life after submission: claiming, running, finishing, cancelling, waiting, and the
// continuations that then() hangs on it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "background/detail/core.hpp"
#include "background/detail/testing.hpp"
#include "background/error.hpp"
#include "backoff.hpp"
#include "fork.hpp"
#include "futex.hpp"
#include "pool_impl.hpp"
#include "registry.hpp"

namespace background::detail {
namespace {

// How long wait() looks at a running task before it sleeps on it (see spin_then_yield()).
constexpr int wait_spin_pauses = 200;
constexpr int wait_spin_yields = 20;

// The mark that closes a task's continuation stack once it has finished.
task_base* closed_mark() noexcept { return reinterpret_cast<task_base*>(std::uintptr_t{1}); }

// Called by report_if_lost() between its two looks; see set_report_hook().
std::atomic<void (*)()> report_hook{nullptr};

// Reports `t`'s exception if it failed and nothing can observe the exception any more: no
// future is left and no continuation may still take it over. Three events race to make that
// true: the final phase, the last future dropped, the last taker gone. Each is a seq_cst RMW
// followed by this check's seq_cst loads, so whichever comes last in the total order sees the
// other two; the exchange on observed_ makes sure only one of them reports.
void report_if_lost(task_base* t) noexcept {
  if ((t->state_.load(std::memory_order_seq_cst) & st_phase_mask) != st_failed) return;
  // Futures before takers, not the other way round: a taker is only ever added through a
  // live future, so once no future is seen, every then() made before is already counted.
  const bool futures_left = (t->refs_.load(std::memory_order_seq_cst) >> 32) != 0;
  // The seam between the two looks (tests only). relaxed: a task submitted after the hook was
  // set reaches the thread that settles it through the queue's release and acquire.
  if (auto* hook = report_hook.load(std::memory_order_relaxed)) hook();
  if (futures_left || t->takers_.load(std::memory_order_seq_cst) != 0) return;
  // acq_rel: the acquire takes an observer's store, published by its seq_cst RMW above.
  if (!t->observed_.exchange(true, std::memory_order_acq_rel)) report_unobserved(t->error_);
}

// Takes a reference to `t`'s antecedent, or returns null if it has none (any more). The low bit
// of `antecedent_` is a lock held for the few instructions it takes to add the reference, so
// drop_antecedent() cannot release the antecedent in between.
task_base* retain_antecedent(task_base* t) noexcept {
  std::uintptr_t v = t->antecedent_.load(std::memory_order_relaxed);
  for (;;) {
    if (v == 0) return nullptr;
    if ((v & 1) != 0) {
      std::this_thread::yield();
      v = t->antecedent_.load(std::memory_order_relaxed);
      continue;
    }
    // acquire: pairs with the release that unlocked it last.
    if (t->antecedent_.compare_exchange_weak(v, v | 1, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      break;
    }
  }
  auto* a = reinterpret_cast<task_base*>(v);
  a->retain();
  t->antecedent_.store(v, std::memory_order_release);  // unlock
  return a;
}

// Hands the continuation `c` (a reference to it taken over) to the pool it must run on, now
// that its antecedent has finished in `phase` on pool `p` (null if unknown) whose id is `id`: the
// pool then() named (target_pool_), else `p`, else the pool `id`, else the default pool. A pool
// that is gone or shutting down cannot take it: it is cancelled then, as it is when its
// antecedent was cancelled (unless it runs whatever the outcome).
void schedule(task_base* c, pool_impl* p, std::uint64_t id, std::uint32_t phase) noexcept {
  if (phase == st_cancelled && !c->runs_always_) {
    // Cancelled with its antecedent, at once: running it would only forward that. The
    // recursion is as deep as a chain of then()s hanging on a task that never started. Counted
    // in the stats of the antecedent's pool, if known (it would have run there).
    if (cancel(c) && p != nullptr) p->count_finished(st_cancelled);
    c->release();
    return;
  }
  if (c->target_pool_ != 0) id = c->target_pool_;
  if (p != nullptr && p->id == id) {
    if (!p->submit(c, /*with_callbacks=*/false, /*internal=*/true)) c->release();  // cancelled
    return;
  }
  try {
    if (id == 0) {
      if (!default_pool_impl()->submit(c, /*with_callbacks=*/false, /*internal=*/true)) {
        c->release();
      }
    } else {
      submit_to_pool(id, c);
    }
  } catch (...) {
    cancel(c);
    c->release();
  }
}

// What follows a final phase: continuations are scheduled on `p`, or cancelled at once if `t`
// was cancelled (then `p` is null if `t` was a continuation not yet scheduled), callbacks are
// called, an exception nobody can observe any more is reported, the caller's reference is
// dropped if `drop_ref`, and a counted task is reported done to `p`. Doing all this before
// task_done() means that once pool::wait() returns, finished tasks have been reported and, if
// their futures are gone, freed. `is_task`: counted in `p`'s stats (not so a when_all()'s future
// or a coroutine's, which are finished by complete()).
// `id`: the pool whose id its continuations inherit when `p` is null (0: the default pool).
void settle(task_base* t, pool_impl* p, std::uint64_t id, std::uint32_t phase, bool counted,
            bool drop_ref, bool is_task = true) noexcept {
  // acq_rel: the acquire pairs with the release CAS in attach_continuation() and relink(), so
  // each pushed continuation's fields are visible; the release lets a later attach see the mark
  // after the final phase.
  task_base* list = t->continuations_.exchange(closed_mark(), std::memory_order_acq_rel);
  task_base* in_order = nullptr;  // the stack holds the newest first: reverse it
  while (list != nullptr) {
    task_base* c = list;
    list = c->next_;
    c->next_ = in_order;
    in_order = c;
  }
  while (in_order != nullptr) {
    task_base* c = in_order;
    in_order = c->next_;  // read first: c may push itself elsewhere at once
    if (!c->antecedent_done(t, phase, p)) continue;  // it took itself (and the reference) over
    schedule(c, p, p != nullptr ? p->id : id, phase);
  }
  if (p != nullptr && is_task) {
    p->run_callbacks(*t, phase);
    p->count_finished(phase);
  }
  // An exception nothing can observe any more is reported now, before the pool counts the
  // task done, so that pool::wait() returns after the report.
  if (phase == st_failed) report_if_lost(t);
  if (drop_ref) t->release();
  // The last touch of the pool for this task. Without `drop_ref`, a counted task was run by a
  // waiter or cancelled, and its queue entry is left for a worker to drop.
  if (counted) p->task_done(/*entry_left=*/!drop_ref);
}

// Whether `t` was made before this process was forked: the parent's, never to finish here.
// relaxed: see fork_generation.
bool from_parent(const task_base* t) noexcept {
  return t->generation_ != fork_generation.load(std::memory_order_relaxed);
}

// In a child process made by fork(): finishes the parent's task `t`, unless it has finished,
// with `forked`, and with it the parent's continuations hung on it (their own continuations
// too). Nothing of theirs runs or is destroyed: the parent's threads may have left a callable
// mid-call or a value half-built, and a queue of the parent's engine still holds them. They are
// kept for ever (keep_forever()). Not reported to on_error(): the exception says where the task
// went, and nobody lost it.
void finish_forked(task_base* t) noexcept {
  const std::exception_ptr error = std::make_exception_ptr(forked());
  std::vector<std::pair<task_base*, task_base*>> later;  // the child's continuations, and of what
  {
    std::lock_guard<std::mutex> lock(fork_mutex());  // one finisher at a time, per task
    std::vector<task_base*> todo{t};
    while (!todo.empty()) {
      task_base* x = todo.back();
      todo.pop_back();
      // acquire: a final phase comes with the task's result, as in wait().
      std::uint32_t phase = x->state_.load(std::memory_order_acquire) & st_phase_mask;
      if (phase < st_ready) {
        keep_forever_locked(x);
        // Whatever error_ held (a parent's thread may have been storing one) is left, not freed.
        ::new (static_cast<void*>(&x->error_)) std::exception_ptr(error);
        x->observed_.store(true, std::memory_order_relaxed);  // published by the exchange below
        // seq_cst, as every final exchange (report_if_lost()); release for error_.
        const std::uint32_t prior = x->state_.exchange(st_failed, std::memory_order_seq_cst);
        if ((prior & st_sleepers) != 0) futex_wake_all(x->state_);
        phase = st_failed;
      }
      // A task that was final at the fork may not have closed its continuation stack yet (a
      // parent's thread between the final exchange and settle(), or in a cancelled callable's
      // destructor): closed here, or what the child hangs on it would wait for ever. acq_rel:
      // as in settle(), so each pushed continuation's fields are visible.
      task_base* c = x->continuations_.exchange(closed_mark(), std::memory_order_acq_rel);
      if (c == closed_mark()) continue;  // settled before the fork
      while (c != nullptr) {
        task_base* next = c->next_;
        if (from_parent(c)) {
          todo.push_back(c);  // the parent's: finished with `forked` too
        } else {
          later.emplace_back(c, x);  // the child's: scheduled below, after the task's outcome
        }
        c = next;
      }
    }
  }
  for (auto [c, x] : later) {
    const std::uint32_t phase = x->phase();
    if (c->antecedent_done(x, phase, nullptr)) schedule(c, nullptr, x->pool_id_, phase);
  }
}

}  // namespace

bool forked_done(task_base* t) noexcept {
  if (!from_parent(t)) return false;
  finish_forked(t);
  return true;
}

namespace {

// Whether `t`, whose body this thread has just run, is a task of the parent's that this thread
// was running when it forked (from inside it): then it finishes with `forked` like the parent's
// other tasks, and nothing of the parent's pool (callbacks, counts, continuations) runs here.
// A load and a compare per task: the child's one thread that can get here is the forker.
bool finished_as_forked(task_base* t) noexcept {
  if (!from_parent(t)) [[likely]]
    return false;
  finish_forked(t);
  return true;
}

}  // namespace

// Releases `t`'s reference to its antecedent, once the antecedent is no longer needed, and
// with it `t`'s place among the antecedent's takers.
void drop_antecedent(task_base* t) noexcept {
  std::uintptr_t v = t->antecedent_.load(std::memory_order_relaxed);
  for (;;) {
    if (v == 0) return;
    if ((v & 1) != 0) {  // a helper holds the lock for a moment
      std::this_thread::yield();
      v = t->antecedent_.load(std::memory_order_relaxed);
      continue;
    }
    // acquire: pairs with the helper's unlock, so its reference is counted before ours goes.
    if (t->antecedent_.compare_exchange_weak(v, 0, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      break;
    }
  }
  auto* a = reinterpret_cast<task_base*>(v);
  // The continuation has run (and taken a failed antecedent's exception over), or never will.
  if (a->takers_.fetch_sub(1, std::memory_order_seq_cst) == 1) report_if_lost(a);
  a->release();
}

void task_base::destroy(task_base* t) noexcept {
  drop_antecedent(t);
  delete t;
}

void task_base::last_future_dropped(task_base* t, bool destroy_too) noexcept {
  report_if_lost(t);
  if (destroy_too) destroy(t);
}

bool execute(task_base* t, bool drop_ref, bool caller_counts) noexcept {
  std::uint32_t s = t->state_.load(std::memory_order_relaxed);
  do {
    if ((s & st_phase_mask) != st_queued) {
      if (drop_ref) t->release();
      return false;
    }
    // acquire: pairs with the release CAS that made a continuation queued (submit()), so its
    // callable and pool_ are visible; a task from run() was queued from birth and reaches its
    // claimer through the queue that held it (a ring cell's release, a deque's bottom_, the
    // overflow list's link) or the waiter's own hold on its future. The waiter bit is kept,
    // for the final exchange to wake them.
  } while (!t->state_.compare_exchange_weak(s, st_running | (s & ~st_phase_mask),
                                            std::memory_order_acquire, std::memory_order_relaxed));
  run_claimed(t, drop_ref, caller_counts);
  return true;
}

void run_claimed(task_base* t, bool drop_ref, bool caller_counts) noexcept {
  pool_impl* p = t->pool_;
  running_frame frame{p, running_frames()};
  running_frames() = &frame;
  const std::uint32_t phase = t->invoke();
  if (finished_as_forked(t)) [[unlikely]] {
    running_frames() = frame.outer;  // the parent's engine and reference are left as they are
    return;
  }
  drop_antecedent(t);
  // release: publishes the value or error_ written by invoke() to whoever loads a final phase
  // with acquire (done(), wait(), phase()); seq_cst for the report, see release_future().
  const std::uint32_t prior = t->state_.exchange(phase, std::memory_order_seq_cst);
  if ((prior & st_sleepers) != 0) futex_wake_all(t->state_);
  settle(t, p, p->id, phase, /*counted=*/!caller_counts, drop_ref);
  running_frames() = frame.outer;
  if (frame.holds_pool_ref) p->release();  // the pool was destroyed from inside this task
}

bool cancel(task_base* t) noexcept {
  if (forked_done(t)) return false;  // the parent's: finished with `forked`, never cancelled
  std::uint32_t s = t->state_.load(std::memory_order_relaxed);
  std::uint32_t phase = 0;
  do {
    phase = s & st_phase_mask;
    if (phase != st_queued && phase != st_pending) return false;
    // acq_rel: the acquire sees pool_ as submit() left it; the release publishes the final
    // phase, as a finished task's exchange does. Not seq_cst: a cancelled task has no
    // exception to report, so it takes no part in report_if_lost()'s ordering.
  } while (!t->state_.compare_exchange_weak(s, st_cancelled, std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  if ((s & st_sleepers) != 0) futex_wake_all(t->state_);
  if (phase == st_pending) {  // never counted by a pool: only its continuations to cancel
    t->drop_callable();
    drop_antecedent(t);
    // Not its pool_ or pool_id_: a submit() that lost the race to this cancel may be writing
    // them. Its continuations that run whatever the outcome go to the default pool.
    settle(t, nullptr, 0, st_cancelled, /*counted=*/false, /*drop_ref=*/false);
    return true;
  }
  // The rest runs in a frame of the task's pool, as on a worker: destroying the callable (or
  // the antecedent) may destroy the pool, which must then wait for the other tasks only, and
  // outlive this one; callbacks count as inside the pool (wait() from one throws).
  pool_impl* p = t->pool_;
  running_frame frame{p, running_frames()};
  running_frames() = &frame;
  t->drop_callable();
  drop_antecedent(t);
  settle(t, p, p->id, st_cancelled, /*counted=*/true, /*drop_ref=*/false);
  running_frames() = frame.outer;
  if (frame.holds_pool_ref) p->release();
  return true;
}

namespace {

// Runs the queued task `t` on this waiting worker, as wait() does: taken back from its own deque
// if it is still there (the usual case for a task waited for right after it was submitted),
// otherwise claimed where it is, leaving its queue entry behind. A task pinned to its pool
// (a coroutine's step after resume_on(p)) runs only on a worker of that pool, and
// one whose pool's shutdown(cancel_pending) has started is cancelled instead. Returns whether it
// made progress (ran or cancelled it); false also if another thread claimed it first.
bool run_inline(task_base* t) noexcept {
  // A task of the parent's (fork()) is not run in the child: it finishes with `forked`.
  if (forked_done(t)) return true;
  if (t->pinned_ && t->pool_ != pool_impl::current_worker_pool()) return false;
  if (pool_impl::cancels_pending(t)) return cancel(t);
  return pool_impl::run_if_newest_local(t) || execute(t, /*drop_ref=*/false);
}

// Whether a task in `phase` waits for its antecedent: a waiter helps along that one.
constexpr bool waits_for_antecedent(std::uint32_t phase) noexcept {
  return phase == st_pending || phase == st_suspended;
}

// For a worker waiting on the pending (or suspended) task `c`: walks up its chain of waiting
// antecedents. If the first one that does not wait is queued, runs it and returns null with
// `ran` set. Otherwise returns the last waiting link, whose next change (to queued, cancelled,
// or to waiting for another) is what the waiter must sleep on, with a reference to it unless it
// is `c` itself, and in `link_state` the link's state as it was before its antecedent was read:
// the value to sleep on, so that a change made since (a new antecedent) wakes it at once. If
// `multi` is not null, it gets the first link of the chain that waits for several inputs
// (when_all), with a reference unless it is `c`, or null.
task_base* help_antecedents(task_base* c, bool& ran, std::uint32_t& link_state,
                            task_base** multi = nullptr) noexcept {
  ran = false;
  task_base* link = c;
  if (multi != nullptr) *multi = nullptr;
  for (;;) {
    if (multi != nullptr && *multi == nullptr && link->waits_for_inputs()) {
      if (link != c) link->retain();
      *multi = link;
    }
    // acquire: pairs with set_antecedent()'s release bump, so the antecedent read next is at
    // least as new as this state.
    link_state = link->state_.load(std::memory_order_acquire);
    task_base* a = retain_antecedent(link);
    if (a == nullptr) return link;  // it just lost its antecedent: it is about to change
    // acquire: a final phase comes with the task's result; a queued one with its pool_.
    const std::uint32_t as = a->state_.load(std::memory_order_acquire);
    const std::uint32_t phase = as & st_phase_mask;
    if (phase == st_running && a->is_coroutine()) {
      // A coroutine running elsewhere may suspend next on work that only this thread can run:
      // sleep on it, as a helper, to hear of that, rather than on the link that waits for it.
      if (link != c) link->release();
      link_state = as;
      return a;
    }
    if (waits_for_antecedent(phase)) {
      if (link != c) link->release();
      link = a;
      continue;
    }
    if (phase == st_queued) ran = run_inline(a);
    a->release();
    if (ran) {
      if (link != c) link->release();
      return nullptr;
    }
    return link;
  }
}

// Sleeps until `t`'s state is no longer `s` (a `helper` wakes at any change, others when it
// finishes); sets the sleeper's bit first. Returns false if the state changed before it could
// sleep.
bool sleep_on(task_base* t, std::uint32_t s, const std::chrono::steady_clock::time_point* deadline,
              bool helper) noexcept {
  const std::uint32_t bits = helper ? st_sleepers : st_waiters;
  if ((s & bits) != bits) {
    // relaxed: only the bit itself is communicated, and every change of state_ is an RMW that
    // sees it; the transition that it asks to be woken by wakes us.
    if (!t->state_.compare_exchange_strong(s, s | bits, std::memory_order_relaxed)) {
      return false;
    }
    s |= bits;
  }
  futex_wait(t->state_, s, deadline);
  return true;
}

}  // namespace

bool wait(task_base* t, const std::chrono::steady_clock::time_point* deadline) {
  // Only untimed waits on a worker run tasks: a timed wait could not keep its bound, and a
  // thread outside the pools runs none, so n stays the bound on concurrency for them.
  const bool help = deadline == nullptr && pool_impl::current_worker_pool() != nullptr;
  bool spun = false;
  // A helping worker blocked by a task with several inputs (when_all, when_any) cannot sleep on
  // all of them: one of them may become queued, for it to run, without any change to the word it
  // sleeps on. It naps instead, from 50 us up to 5 ms, and looks again.
  auto nap = std::chrono::microseconds{50};
  std::chrono::steady_clock::time_point nap_end;
  const auto take_nap = [&nap, &nap_end] {
    nap_end = std::chrono::steady_clock::now() + nap;
    nap = std::min(nap * 2, std::chrono::microseconds{5000});
    return &nap_end;
  };
  for (;;) {
    bool napping = false;
    // acquire: pairs with the release that published a final phase (or made it queued).
    const std::uint32_t s = t->state_.load(std::memory_order_acquire);
    const std::uint32_t phase = s & st_phase_mask;
    if (phase >= st_ready) return true;
    if (forked_done(t)) continue;  // the parent's task (fork()): finished with `forked`
    // If it lost the race to claim it, the next look sees why; if it is pinned to another pool,
    // this thread sleeps until that pool has run it.
    if (help && phase == st_queued && run_inline(t)) continue;
    if (help && waits_for_antecedent(phase)) {
      // Sleep on the link of the chain that blocks it, so that this thread wakes (and helps)
      // when that link is queued, however deep it is.
      bool ran = false;
      std::uint32_t ls = 0;
      task_base* multi = nullptr;
      task_base* link = help_antecedents(t, ran, ls, &multi);
      // Nothing to run along the chain: a link that waits for several inputs (when_all) may
      // have another input that nobody has started.
      if (multi != nullptr) {
        if (!ran && multi->help_inputs()) ran = true;
        napping = true;
        if (multi != t) multi->release();
      }
      if (link != nullptr && link != t) {
        // A link that waits for its antecedent, or a running coroutine (see above).
        const std::uint32_t lp = ls & st_phase_mask;
        if (!ran && (waits_for_antecedent(lp) || lp == st_running)) {
          sleep_on(link, ls, napping ? take_nap() : nullptr, /*helper=*/true);
        }
        link->release();
        continue;
      }
      if (ran) continue;
    }
    if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) return false;
    if (!spun && deadline == nullptr && !pool_impl::submit_woke_worker()) {
      // Another thread runs it (or it waits for its antecedent): most tasks in a busy pool end
      // sooner than a futex sleep and wake-up take, so look again for a moment first. Not when
      // this thread's last submit had to wake a parked worker: that worker needs several
      // microseconds to wake, and spinning here only delays it (the kernel often wakes it on
      // this thread's core): rtt_idle in bench/ measured 13.6 us with the spin, 8 without.
      spun = true;
      // relaxed: it only decides when to look again; the loop's acquire load reads the result.
      const auto changed = [t, s] { return t->state_.load(std::memory_order_relaxed) != s; };
      if (spin_then_yield(changed, wait_spin_pauses, wait_spin_yields)) continue;
    }
    sleep_on(t, s, napping ? take_nap() : deadline, help);
  }
}

void attach_continuation(task_base* a, task_base* c) {
  forked_done(a);  // a task of the parent's (fork()) finishes first, with `forked`
  // c is one of a's takers from now until its drop_antecedent(). seq_cst: see report_if_lost().
  a->takers_.fetch_add(1, std::memory_order_seq_cst);
  // acquire: pairs with settle()'s exchange, so a closed mark comes with a's final phase and
  // pool_id_.
  task_base* head = a->continuations_.load(std::memory_order_acquire);
  for (;;) {
    if (head == closed_mark()) break;
    c->next_ = head;
    // release: pairs with settle()'s exchange, which then sees c's fields.
    if (a->continuations_.compare_exchange_weak(head, c, std::memory_order_release,
                                                std::memory_order_acquire)) {
      return;
    }
  }
  // `a` has finished.
  if (a->phase() == st_cancelled && !c->runs_always_) {
    // Cancelled with it, without a pool: `a` may never have had one (a continuation cancelled
    // before it was scheduled).
    cancel(c);
    c->release();
    return;
  }
  // Throws if the pool is gone: c is then dropped unrun. A task that never ran on a pool (a
  // continuation cancelled before it was scheduled) sends it to the default pool.
  const std::uint64_t id = c->target_pool_ != 0 ? c->target_pool_ : a->pool_id_;
  if (id == 0) {
    if (!default_pool_impl()->submit(c, /*with_callbacks=*/false, /*internal=*/false)) {
      c->release();
    }
  } else {
    submit_to_pool(id, c);
  }
}

bool relink(task_base* c, task_base* a) noexcept {
  forked_done(a);  // as in attach_continuation()
  drop_antecedent(c);
  set_antecedent(c, a);
  // acquire: pairs with settle()'s exchange, as in attach_continuation().
  task_base* head = a->continuations_.load(std::memory_order_acquire);
  for (;;) {
    if (head == closed_mark()) return false;
    c->next_ = head;
    // release: pairs with settle()'s exchange, which then sees c's fields.
    if (a->continuations_.compare_exchange_weak(head, c, std::memory_order_release,
                                                std::memory_order_acquire)) {
      return true;
    }
  }
}

void set_antecedent(task_base* t, task_base* a) noexcept {
  a->retain();
  // seq_cst: see report_if_lost(); t counts among a's takers until drop_antecedent().
  a->takers_.fetch_add(1, std::memory_order_seq_cst);
  // release: a helper that reads it (retain_antecedent(), acquire) sees a's reference counted.
  // It had none, so no helper holds its lock bit.
  t->antecedent_.store(reinterpret_cast<std::uintptr_t>(a), std::memory_order_release);
  // Wake helpers asleep on t with the old antecedent (or none), so they help along this one: the
  // count changes the word they sleep on (every other transition keeps it), so none can miss
  // it. release: pairs with the acquire loads of state_ in wait() and help_antecedents(), so a
  // helper that sees the new count then reads this antecedent, not an older one or none.
  const std::uint32_t prior = t->state_.fetch_add(st_relinked, std::memory_order_release);
  if ((prior & st_helpers) != 0) futex_wake_all(t->state_);
}

bool set_phase(task_base* t, std::uint32_t from, std::uint32_t to) noexcept {
  std::uint32_t s = t->state_.load(std::memory_order_relaxed);
  do {
    if ((s & st_phase_mask) != from) return false;
    // acq_rel: the release publishes what the thread did before (a coroutine's frame, up to its
    // suspension) to the one that moves it on next, which acquires.
    // The sleeper bits and the relink count stay: a count reset here would bring the word back
    // to a value a helper read before (ABA), and it would sleep through the change.
  } while (!t->state_.compare_exchange_weak(s, to | (s & ~st_phase_mask), std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  if ((s & st_helpers) != 0) futex_wake_all(t->state_);  // the rest wait for the final phase
  return true;
}

void complete(task_base* t, std::uint32_t phase, pool_impl* p) noexcept {
  if (finished_as_forked(t)) return;  // a coroutine of the parent's that forked (see run_claimed)
  if (p == nullptr && running_frames() != nullptr) {
    p = running_frames()->pool;  // alive while its task runs on this thread
  }
  if (p != nullptr) {
    t->pool_ = p;
    t->pool_id_ = p->id;
  }
  drop_antecedent(t);
  // As in run_claimed(): release for the value, seq_cst for the report.
  const std::uint32_t prior = t->state_.exchange(phase, std::memory_order_seq_cst);
  if ((prior & st_sleepers) != 0) futex_wake_all(t->state_);
  settle(t, p, t->pool_id_, phase, /*counted=*/false, /*drop_ref=*/false, /*is_task=*/false);
}

bool help_run(task_base* t) noexcept {
  if (pool_impl::current_worker_pool() == nullptr) return false;
  const std::uint32_t phase = t->phase();
  if (phase == st_queued) {
    return run_inline(t);
  }
  if (!waits_for_antecedent(phase)) return false;
  bool ran = false;
  std::uint32_t ls = 0;
  task_base* link = help_antecedents(t, ran, ls);
  if (link != nullptr && link != t) link->release();
  return ran;
}

std::uint64_t pool_id(const pool_impl* p) noexcept { return p->id; }

void set_report_hook(void (*hook)()) noexcept {
  report_hook.store(hook, std::memory_order_relaxed);
}

void submit(pool_impl* p, task_base* t, bool with_callbacks) {
  p->submit(t, with_callbacks, /*internal=*/false);
}

void post(pool_impl* p, post_node* n) { p->post(n); }

}  // namespace background::detail
