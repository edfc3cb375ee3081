// The parts of when_any() and as_completed() that do not depend on the value type: a node per
// input that tells its target when the input finishes, the state of when_any(), and the queue
// that as_completed() reads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "background/detail/core.hpp"
#include "background/detail/join_state.hpp"
#include "background/error.hpp"
#include "pool_impl.hpp"

namespace background::detail {
namespace {

// Hangs on one input's continuation stack and tells its target when the input finishes. It has
// no future and never runs: one reference, the stack's.
class notify_node final : public task_base {
 public:
  notify_node(notify_target* target, std::size_t index) noexcept
      : task_base(st_pending, 1), target_(target), index_(index) {
    target_->retain_target();
  }
  ~notify_node() override { target_->release_target(); }

  bool antecedent_done(task_base* /*a*/, std::uint32_t /*phase*/, pool_impl* p) noexcept override {
    target_->notify(index_, p);
    release();  // the stack's reference: the last
    return false;
  }
  std::uint32_t invoke() noexcept override { return st_cancelled; }
  void drop_callable() noexcept override {}

 private:
  notify_target* const target_;
  const std::size_t index_;
};

class any_state final : public result_state<std::size_t>, public notify_target {
 public:
  explicit any_state(std::vector<task_base*> inputs) noexcept
      : result_state<std::size_t>(st_pending), inputs_(std::move(inputs)) {
    for (task_base* t : inputs_) t->retain_future();
  }
  ~any_state() override {
    for (task_base* t : inputs_) t->release_future();
  }

  void notify(std::size_t index, pool_impl* p) noexcept override {
    // relaxed: only which caller wins matters; complete() publishes the value.
    if (won_.exchange(true, std::memory_order_relaxed)) return;
    if (!set_phase(this, st_pending, st_running)) return;  // its future cancelled it
    // Done at the call: the winner's pool, unless it was cancelled (see join_state::advance()).
    if (p == nullptr && inputs_[index]->phase() != st_cancelled) {
      pool_id_ = inputs_[index]->pool_id_;
    }
    const std::uint32_t phase = store([index] { return index; });
    complete(this, phase, p);
  }
  void retain_target() noexcept override { retain(); }
  void release_target() noexcept override { release(); }

  // A waiting worker runs an input that nobody has started: whichever finishes first wins, and
  // the one this state's antecedent names may be running elsewhere, or wait for another input.
  bool waits_for_inputs() const noexcept override { return true; }
  bool help_inputs() noexcept override {
    return help_some(inputs_.data(), inputs_.size(), 0, help_);
  }

  std::uint32_t invoke() noexcept override { return st_cancelled; }
  void drop_callable() noexcept override {}

  const std::vector<task_base*>& inputs() const noexcept { return inputs_; }

 private:
  const std::vector<task_base*> inputs_;  // each with a future reference, until destroyed
  std::atomic<bool> won_{false};
  help_cursors help_;
};

class queue_impl final : public completion_queue, public notify_target {
 public:
  queue_impl(task_base* const* inputs, std::size_t n) : inputs_(inputs, inputs + n) {
    done_.reserve(n);  // so that notify() never allocates
  }

  void notify(std::size_t index, pool_impl* /*p*/) noexcept override {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.push_back(index);  // within the capacity reserved: never throws
      wake = waiting_;
    }
    if (wake) cv_.notify_one();
  }
  void retain_target() noexcept override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release_target() noexcept override {
    // acq_rel: as task_base::release().
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void release() noexcept override { release_target(); }

  std::size_t next(const std::chrono::steady_clock::time_point* deadline) override {
    // Timed waits never run tasks, and threads outside the pools run none (as wait()).
    const bool helps = deadline == nullptr && pool_impl::current_worker_pool() != nullptr;
    // A helping worker cannot sleep on every input at once: what it may have to run next can
    // become queued (an input's antecedent finishing on another pool) without any notify().
    // So it sleeps for a while only, from 50 us up to 5 ms, and looks again.
    std::chrono::microseconds nap{50};
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (taken_ < done_.size()) return done_[taken_++];
      if (from_parent()) {
        take_forked();
        continue;
      }
      if (helps) {
        if (help(lock)) continue;
        // help() let the lock go: a notify() may have come meanwhile, with nobody waiting.
        if (taken_ < done_.size()) continue;
      }
      waiting_ = true;
      if (helps) {
        cv_.wait_for(lock, nap);
        nap = std::min(nap * 2, std::chrono::microseconds{5000});
      } else if (deadline == nullptr) {
        cv_.wait(lock);
      } else if (cv_.wait_until(lock, *deadline) == std::cv_status::timeout &&
                 taken_ == done_.size()) {
        waiting_ = false;
        throw timeout_error();
      }
      waiting_ = false;
    }
  }

 private:
  // Whether this queue was made before a fork() of this process: then it is the child's copy,
  // and the parent's notify nodes on its inputs never notify here. relaxed: see fork_generation.
  bool from_parent() const noexcept {
    return generation_ != fork_generation.load(std::memory_order_relaxed);
  }
  // In the child, with the lock: lists every input not yet listed, in input order, each one
  // finished first if it is a parent's task that has not (forked_done(): with `forked`).
  void take_forked() {
    std::vector<bool> listed(inputs_.size());
    for (const std::size_t i : done_) listed[i] = true;
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      if (listed[i]) continue;
      forked_done(inputs_[i]);
      done_.push_back(i);  // within the capacity reserved
    }
  }

  // On a pool worker: runs, without the lock, an input that nobody has started (or what one
  // waits for); says whether it did. The inputs are alive: the range that reads this queue
  // holds their futures.
  bool help(std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    const bool ran = help_some(inputs_.data(), inputs_.size(), 0, help_);
    lock.lock();
    return ran;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::size_t> done_;  // indices in the order they finished
  std::size_t taken_ = 0;          // how many next() has returned
  bool waiting_ = false;           // next() is asleep on cv_
  const std::vector<task_base*> inputs_;
  help_cursors help_;
  std::atomic<std::uint32_t> refs_{1};  // the range's, and one per node
  const std::uint32_t generation_ = fork_generation.load(std::memory_order_relaxed);
};

}  // namespace

bool help_some(task_base* const* inputs, std::size_t n, std::size_t from,
               help_cursors& cursors) noexcept {
  constexpr std::size_t window = 64;
  // relaxed: hints; every position is safe, and two waiters that race only redo some looks.
  std::size_t i = std::max(from, cursors.skip.load(std::memory_order_relaxed));
  // Running (a coroutine excepted: it may suspend on work to run here) or done: for good.
  const auto settled = [](const task_base* t) {
    const std::uint32_t phase = t->phase();
    return is_final(phase) || (phase == st_running && !t->is_coroutine());
  };
  const std::size_t first = i;
  while (i < n && settled(inputs[i])) ++i;
  if (i != first) cursors.skip.store(i, std::memory_order_relaxed);
  const std::size_t start = i;
  for (const std::size_t end = std::min(n, start + window); i < end; ++i) {
    if (help_run(inputs[i])) return true;
  }
  // Then one more window further on, a different one each time, round the rest: an input far
  // behind others that wait (continuations whose antecedents run elsewhere) is reached too,
  // after a bounded number of looks.
  if (n - start <= window) return false;
  std::size_t probe = cursors.probe.fetch_add(window, std::memory_order_relaxed);
  probe = start + window + probe % (n - start - window);
  for (const std::size_t end = std::min(n, probe + window); probe < end; ++probe) {
    if (help_run(inputs[probe])) return true;
  }
  return false;
}

void notify_each(task_base* const* inputs, std::size_t n, notify_target* target) {
  for (std::size_t i = 0; i < n; ++i) {
    task_base* a = inputs[i];
    // acquire: a done input's outcome is read by whoever the target tells.
    if (is_final(a->state_.load(std::memory_order_acquire))) {
      target->notify(i, nullptr);
      continue;
    }
    auto* node = new notify_node(target, i);  // may throw: the nodes before stay
    // The node's one reference goes to the stack; if `a` has finished meanwhile, it is ours.
    if (!relink(node, a)) {
      target->notify(i, nullptr);
      node->release();
    }
  }
}

result_state<std::size_t>* make_any(task_base* const* inputs, std::size_t n) {
  auto* state = new any_state(std::vector<task_base*>(inputs, inputs + n));
  // The state's own reference while it attaches; its future is made by the caller from the
  // future reference it was born with.
  state->retain();
  try {
    // Workers that wait for it at n = 1 help along the first input not yet done.
    for (std::size_t i = 0; i < n; ++i) {
      if (!is_final(inputs[i]->state_.load(std::memory_order_relaxed))) {
        set_antecedent(state, inputs[i]);
        break;
      }
    }
    notify_each(inputs, n, state);
  } catch (...) {
    // Nodes already attached keep it alive until their inputs finish; the future goes.
    state->release();
    state->release_future();
    throw;
  }
  state->release();
  return state;
}

completion_queue* completion_queue::make(task_base* const* inputs, std::size_t n) {
  auto* q = new queue_impl(inputs, n);
  try {
    notify_each(inputs, n, q);
  } catch (...) {
    q->release_target();
    throw;
  }
  return q;
}

}  // namespace background::detail
