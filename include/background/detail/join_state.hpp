// The shared states behind when_all(), when_any() and as_completed(). Users never name these.
//
// when_all()'s state waits for its inputs one at a time: it is attached (as a continuation,
// through the core's relink()) to the first input not yet done; when that one finishes, it moves
// on to the next one not done, and so on, so that it costs one look per input and one attachment
// per input that was not yet done when its turn came: O(N), and no task per input. Its
// antecedent is always the input it waits for, so a worker that waits for it at n = 1 runs that
// input inline, then the next, as it would for a chain of then()s.
#ifndef BACKGROUND_DETAIL_JOIN_STATE_HPP
#define BACKGROUND_DETAIL_JOIN_STATE_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>

#include "background/detail/core.hpp"
#include "background/detail/export.hpp"
#include "background/detail/task_state.hpp"
#include "background/error.hpp"

namespace background::detail {

// Where waiting workers look for inputs to run (help_some()), shared by the waiters of a state.
struct help_cursors {
  std::atomic<std::size_t> skip{0};   // inputs before it are running or done, for good
  std::atomic<std::size_t> probe{0};  // the next window to look at further on
};

// For a waiting worker: runs one of `inputs` (n of them, from `from` on) that nobody has started,
// or the queued task that one waits for; says whether it did. Inputs that are running (but for
// coroutines, which may suspend) or done never need it again: cursors.skip moves past a prefix of them for good. From there it looks
// at 64 inputs, and at 64 more further on, a different window each call: O(N) in all for the
// prefix, a bounded look each time, and every input reached after at most N / 64 calls.
BACKGROUND_API bool help_some(task_base* const* inputs, std::size_t n, std::size_t from,
                              help_cursors& cursors) noexcept;

// The state of when_all(): ready once every input is done. `R` is what it delivers.
template <class R>
class join_state : public result_state<R> {
 public:
  using value_type = R;

  // Follows the inputs from the first; finishes at once if all are done. Called once, by the
  // thread that made it, which holds a future of it.
  void start() noexcept { advance(nullptr); }

  bool antecedent_done(task_base* /*a*/, std::uint32_t /*phase*/, pool_impl* p) noexcept override {
    ++cursor_;
    help_from_.store(cursor_, std::memory_order_relaxed);
    advance(p);
    this->release();  // the continuation stack's reference
    return false;
  }
  // Never queued: complete() finishes it.
  std::uint32_t invoke() noexcept override { return st_cancelled; }
  void drop_callable() noexcept override {}

  // A waiting worker that found the input this state waits for running elsewhere runs a later
  // input nobody has started: that one may be what the first is waiting for. The inputs live
  // as long as this state.
  bool waits_for_inputs() const noexcept override { return true; }
  bool help_inputs() noexcept override {
    // relaxed: a hint of where to start; any position is safe, since every input is alive.
    const std::size_t from = help_from_.load(std::memory_order_relaxed);
    return help_some(inputs(), count(), from, help_);
  }

 protected:
  join_state() noexcept : result_state<R>(st_pending) {}

  virtual std::size_t count() const noexcept = 0;
  // The inputs' states, count() of them.
  virtual task_base* const* inputs() const noexcept = 0;
  task_base* input(std::size_t i) const noexcept { return inputs()[i]; }
  // With every input done: stores the value, or error_, and returns the final phase.
  virtual std::uint32_t assemble() noexcept = 0;

  // The first input, in input order, that failed or was cancelled: copies its exception to
  // error_ (it is observed: this state carries it on) and returns st_failed, or st_cancelled;
  // st_ready if none did.
  std::uint32_t first_failure() noexcept {
    for (std::size_t i = 0; i < count(); ++i) {
      task_base* a = input(i);
      const std::uint32_t phase = a->phase();
      if (phase == st_cancelled) return st_cancelled;
      if (phase == st_failed) {
        this->error_ = a->error_;
        // relaxed: published by the acq_rel releases of this state, the last of which drops
        // its future of `a` (and any report of it) after this.
        a->observed_.store(true, std::memory_order_relaxed);
        return st_failed;
      }
    }
    return st_ready;
  }

 private:
  // Attaches to the first input not done from cursor_ on, or finishes. `p`: the pool of the input
  // being settled on this thread, alive meanwhile, or null (at the call).
  void advance(pool_impl* p) noexcept {
    const std::size_t n = count();
    while (cursor_ < n) {
      if (this->phase() == st_cancelled) return;  // cancelled by its future: stop following
      task_base* a = input(cursor_);
      // acquire: a done input's value is read by assemble().
      if (!is_final(a->state_.load(std::memory_order_acquire))) {
        this->retain();  // the continuation stack's, taken over by relink()
        // Once pushed, `a` may finish and move this on at once, on another thread: nothing of
        // this object may be touched after a successful relink().
        if (relink(this, a)) return;
        this->release();  // never the last: the caller holds one
      }
      ++cursor_;
      help_from_.store(cursor_, std::memory_order_relaxed);
    }
    if (!set_phase(this, st_pending, st_running)) return;  // cancelled meanwhile
    // All were done at the call: its continuations go to the pool of the last input that ran
    // (a cancelled one may never have had a pool, or be having it written by a submit() that
    // lost to the cancel). acquire: pairs with the release that finished each input (above).
    for (std::size_t i = n; p == nullptr && i-- > 0;) {
      if (input(i)->phase() != st_cancelled) {
        this->pool_id_ = input(i)->pool_id_;
        break;
      }
    }
    const std::uint32_t phase = assemble();
    complete(this, phase, p);
  }

  std::size_t cursor_ = 0;  // the input it waits for; moved on only by the thread that settles it
  std::atomic<std::size_t> help_from_{0};  // cursor_, for help_inputs() on other threads
  help_cursors help_;
};

// What a notify_node tells when its input finishes (when_any(), as_completed()).
class notify_target {
 public:
  // `p`: the pool of the input that finished, alive meanwhile, or null (done at the call).
  virtual void notify(std::size_t index, pool_impl* p) noexcept = 0;
  virtual void retain_target() noexcept = 0;
  virtual void release_target() noexcept = 0;

 protected:
  ~notify_target() = default;
};

// Attaches a node to each input of `inputs` (n of them) that is not yet done, which tells
// `target` notify(index) when that input finishes; calls notify() at once, in input order, for
// those already done. Each node holds a reference to `target`. Throws std::bad_alloc (nodes
// attached before stay, and notify as usual).
BACKGROUND_API void notify_each(task_base* const* inputs, std::size_t n, notify_target* target);

// when_any(): a future that is ready with the index of the first of `inputs` to finish. The
// state holds a future of each input. Throws std::bad_alloc.
BACKGROUND_API result_state<std::size_t>* make_any(task_base* const* inputs, std::size_t n);

// as_completed(): the indices of `inputs` in the order they finish. Holds no future of them:
// the range that uses it does.
class BACKGROUND_API completion_queue {
 public:
  // Throws std::bad_alloc.
  static completion_queue* make(task_base* const* inputs, std::size_t n);
  // The index of the next input to finish, blocking until there is one; with a deadline, throws
  // timeout_error once it has passed. Untimed, on a pool worker, it runs inputs that nobody has
  // started while it waits, as future::wait() does. Call at most n times, from one thread.
  virtual std::size_t next(const std::chrono::steady_clock::time_point* deadline) = 0;
  virtual void release() noexcept = 0;

 protected:
  ~completion_queue() = default;
};

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_JOIN_STATE_HPP
