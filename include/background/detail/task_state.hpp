// The shared state behind a future: one allocation holding the callable, its arguments and the
// result, with an intrusive reference count. Users never name these types.
//
// Life of a task (the phase in the low byte of `state_`):
//
//   pending ──(antecedent done)──> queued ──(claimed)──> running ──> ready | failed
//      │                              │                   │  ↑
//      └──────────(cancel)────────────┴──> cancelled      ↓  │ (resumed)
//                                                      suspended
//
// `pending` is for tasks that wait for another (their `antecedent_`): continuations made by
// `then()`, the futures of when_all() and when_any(), and a coroutine before its body starts.
// `suspended` is only for a coroutine waiting at a `co_await` (its antecedent_ is the task that
// resumes it). A queued task is claimed by one compare-and-swap, by a worker that pops it or by
// a waiter that runs it inline; whoever loses the race leaves it alone, so a task runs at most
// once whatever queue entries remain.
#ifndef BACKGROUND_DETAIL_TASK_STATE_HPP
#define BACKGROUND_DETAIL_TASK_STATE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include "background/detail/export.hpp"

namespace background::detail {

class pool_impl;
struct callback_node;

// The token that `p`'s shutdown(cancel_pending) requests stop on (the core defines it).
BACKGROUND_API std::stop_token shutdown_token(const pool_impl* p) noexcept;

// Phases, and the waiter bit, of `task_base::state_`.
inline constexpr std::uint32_t st_pending = 0;    // a continuation waiting for its antecedent
inline constexpr std::uint32_t st_queued = 1;     // submitted, not started
inline constexpr std::uint32_t st_running = 2;    // claimed by one thread
inline constexpr std::uint32_t st_suspended = 3;  // a coroutine at a co_await
inline constexpr std::uint32_t st_ready = 4;      // finished with a value
inline constexpr std::uint32_t st_failed = 5;     // finished with an exception
inline constexpr std::uint32_t st_cancelled = 6;  // will never run
inline constexpr std::uint32_t st_phase_mask = 0xff;
// A thread sleeps on state_ (a futex) until the task finishes: woken by the final phase only.
inline constexpr std::uint32_t st_waiters = 0x100;
// A worker sleeps on state_ to help the task along (see wait() in the core): woken by every
// change, since each may give it a task to run inline (queued, a new antecedent).
inline constexpr std::uint32_t st_helpers = 0x200;
inline constexpr std::uint32_t st_sleepers = st_waiters | st_helpers;
// Added to state_ (the bits above count, and wrap) each time a pending or suspended task
// changes its antecedent, so that a helper asleep on state_ sees the change.
inline constexpr std::uint32_t st_relinked = 0x400;

constexpr bool is_final(std::uint32_t state) noexcept {
  return (state & st_phase_mask) >= st_ready;
}

// Counts the fork()s this process descends from: the child handler (src/fork.cpp) adds one,
// before the child has any other thread. relaxed: it changes only while the process has one
// thread, and threads started later see it through their creation.
BACKGROUND_API extern std::atomic<std::uint32_t> fork_generation;

class task_base {
 public:
  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;

  // Runs the body exactly once, stores its value or exception, destroys the callable and
  // returns the final phase (st_ready, st_failed, or st_cancelled for a continuation whose
  // antecedent was cancelled). Called only by the thread that claimed the task.
  virtual std::uint32_t invoke() noexcept = 0;
  // Destroys the callable without running it (cancellation).
  virtual void drop_callable() noexcept = 0;
  // Called, instead of scheduling this task, by the thread that settles the antecedent `a` it
  // was attached to (see settle() in the core), with `a`'s final phase and the pool that `a`
  // ran on (alive meanwhile; null for a task cancelled before it was queued). Returns true to
  // have it scheduled as usual (or cancelled with a cancelled `a`); false if it took care of
  // itself (attached itself to another antecedent, or finished), having taken over the
  // continuation stack's reference. Composition and coroutines override it.
  virtual bool antecedent_done(task_base* a, std::uint32_t phase, pool_impl* p) noexcept {
    (void)a;
    (void)phase;
    (void)p;
    return true;
  }
  // Asks a running task to stop, if it takes a std::stop_token; otherwise does nothing.
  virtual void request_stop() noexcept {}
  // For a task that waits for several inputs (when_all(), when_any()), called by a waiting
  // worker that found nothing to run along its antecedent: runs one input that no worker has
  // started (or what one waits for) on this thread, and says whether it did.
  virtual bool help_inputs() noexcept { return false; }
  // Whether it waits for several inputs (and so overrides help_inputs()).
  virtual bool waits_for_inputs() const noexcept { return false; }
  // Whether it is a coroutine's state: running, it may suspend on a new antecedent, which a
  // waiting worker must then help along (it sleeps on it rather than on what waits for it).
  virtual bool is_coroutine() const noexcept { return false; }

  // Task states come from per-thread caches of blocks (src/task_memory.cpp): a state is
  // usually allocated by the thread that submits and freed by a worker, which plain malloc
  // serves from its slow path every time. Throws std::bad_alloc as operator new does.
  BACKGROUND_API static void* operator new(std::size_t size);
  BACKGROUND_API static void operator delete(void* p, std::size_t size) noexcept;
  // A state whose callable or value asks for more than malloc's alignment (alignas(64)) comes
  // from the global aligned operator new instead: the caches serve malloc's alignment only.
  static void* operator new(std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
  }
  // Unsized: clang declares the global sized forms only with -fsized-deallocation.
  static void operator delete(void* p, std::align_val_t align) noexcept {
    ::operator delete(p, align);
  }

  // References come in two kinds, counted in one word: futures (the high half) and the
  // library's own (the low half: a queue entry, a continuation's link to its antecedent).
  static constexpr std::uint64_t future_ref = std::uint64_t{1} << 32;

  // relaxed: a new reference is always made from an existing one, which keeps the state alive.
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void retain_future() noexcept { refs_.fetch_add(future_ref, std::memory_order_relaxed); }
  // acq_rel: the release publishes this owner's writes to whoever destroys the state; the
  // acquire, in the thread that sees the count reach zero, takes them all.
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
  }
  // Drops a future's reference. The last future left turns into a library reference for the
  // moment it takes to check whether an unobserved exception must be reported, so the state
  // cannot be freed under that check. seq_cst: one of the three RMWs that report_if_lost() in
  // the core orders (the final phase, the last future, the last continuation).
  void release_future() noexcept {
    std::uint64_t old = refs_.load(std::memory_order_relaxed);
    std::uint64_t next = 0;
    do {
      const bool last_future = (old >> 32) == 1;
      next = last_future && old != future_ref ? old - future_ref + 1 : old - future_ref;
    } while (!refs_.compare_exchange_weak(old, next, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
    if ((old >> 32) != 1) return;  // other futures remain
    last_future_dropped(this, /*destroy_too=*/old == future_ref);
    if (old != future_ref) release();
  }
  // acquire: pairs with the release exchange that published the final phase, so the value or
  // exception stored by the task is visible once a final phase is seen.
  std::uint32_t phase() const noexcept {
    return state_.load(std::memory_order_acquire) & st_phase_mask;
  }

  std::atomic<std::uint32_t> state_;
  // The process generation it was made in (fork_generation): a task of an older one belongs to
  // the parent of a fork() and never finishes in this process (src/fork.cpp). In what would
  // otherwise be padding after state_.
  const std::uint32_t generation_ = fork_generation.load(std::memory_order_relaxed);
  std::atomic<std::uint64_t> refs_{future_ref};  // a new task has one future
  // Set by get() and exception(), by a continuation that takes the exception over, and by the
  // one report of an exception nobody observed (an exchange, so that there is only one).
  std::atomic<bool> observed_{false};
  // Continuations made by then() that may still take this task's exception over: until they
  // have run or been cancelled, an exception is not reported. seq_cst RMWs, see report_if_lost().
  std::atomic<std::uint32_t> takers_{0};
  std::exception_ptr error_;                        // written before a release of st_failed
  pool_impl* pool_ = nullptr;                       // the pool it runs on; valid until it finishes
  std::uint64_t pool_id_ = 0;                       // finds that pool later, if it still exists
  std::atomic<std::uintptr_t> antecedent_{0};       // then(): task_base* it waits for | lock bit
  std::atomic<task_base*> continuations_{nullptr};  // stack of then() tasks, or a closed mark
  task_base* next_ = nullptr;                 // link in a continuation stack or a pool's queue
  const callback_node* callbacks_ = nullptr;  // last pool callback to call, or none
  // A continuation that runs whatever its antecedent's outcome, cancellation included (then()
  // with a callable that takes the future). Set before it is attached.
  bool runs_always_ = false;
  // Runs only on a worker of its own pool, never inline on another pool's waiting worker (a
  // coroutine's step after resume_on(p)). Set before it is queued.
  bool pinned_ = false;
  // For a continuation: the id of the pool it must run on (then(p, f)), or 0 for its
  // antecedent's. Set before it is attached.
  std::uint64_t target_pool_ = 0;

 protected:
  explicit task_base(std::uint32_t phase) noexcept : state_(phase) {}
  // A task that starts with no future, only the library's `refs` references.
  task_base(std::uint32_t phase, std::uint64_t refs) noexcept : state_(phase), refs_(refs) {}
  virtual ~task_base() = default;

 private:
  // Drops the antecedent and deletes. Defined in the core.
  BACKGROUND_API static void destroy(task_base* t) noexcept;
  // Reports the exception if `t` failed and nothing can observe it any more; then, if
  // `destroy_too`, destroys it.
  BACKGROUND_API static void last_future_dropped(task_base* t, bool destroy_too) noexcept;
};

// The task's result: a value of T that is constructed in place once the body returns.
template <class T>
class result_state : public task_base {
 public:
  T& value() noexcept { return value_; }

 protected:
  explicit result_state(std::uint32_t phase) noexcept : task_base(phase) {}
  ~result_state() override {
    if ((state_.load(std::memory_order_relaxed) & st_phase_mask) == st_ready) value_.~T();
  }
  // Runs `body`, storing what it returns or throws. Returns the final phase.
  template <class Body>
  std::uint32_t store(Body&& body) noexcept {
    try {
      ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<Body>(body)());
      return st_ready;
    } catch (...) {
      error_ = std::current_exception();
      return st_failed;
    }
  }

 private:
  union {
    T value_;
  };
};

template <>
class result_state<void> : public task_base {
 protected:
  explicit result_state(std::uint32_t phase) noexcept : task_base(phase) {}
  template <class Body>
  std::uint32_t store(Body&& body) noexcept {
    try {
      std::forward<Body>(body)();
      return st_ready;
    } catch (...) {
      error_ = std::current_exception();
      return st_failed;
    }
  }
};

// Whether a task calling `Fn` with `Args` gets a std::stop_token first, as std::jthread decides:
// whenever `Fn` can be called that way.
template <class Fn, class... Args>
inline constexpr bool takes_stop_token = std::is_invocable_v<Fn, std::stop_token, Args...>;

// A submitted call: `Fn` invoked with `Args`, all decay-copied as std::thread does; with a
// std::stop_token first if `Fn` takes one (see takes_stop_token).
template <class R, class Fn, class... Args>
class call_state final : public result_state<R> {
  static constexpr bool stoppable = takes_stop_token<Fn, Args...>;

 public:
  template <class F, class... A>
  explicit call_state(F&& f, A&&... args)
      : result_state<R>(st_queued),
        call_(std::in_place, std::forward<F>(f), std::forward<A>(args)...) {}

  std::uint32_t invoke() noexcept override {
    std::uint32_t phase = st_ready;
    if constexpr (stoppable) {
      // The pool's shutdown(cancel_pending) asks this task to stop too, while it runs. The
      // callback's constructor may throw (std::bad_alloc, with some libraries): then the task
      // fails with it, unrun.
      try {
        const std::stop_callback on_shutdown(shutdown_token(this->pool_), stop_requester{this});
        phase = run();
      } catch (...) {
        this->error_ = std::current_exception();
        phase = st_failed;
      }
    } else {
      phase = run();
    }
    call_.reset();
    return phase;
  }
  void drop_callable() noexcept override { call_.reset(); }
  void request_stop() noexcept override {
    if constexpr (stoppable) stop_.request_stop();
  }

 private:
  struct stop_requester {
    call_state* self;
    void operator()() const noexcept { self->stop_.request_stop(); }
  };
  struct no_stop {};

  std::uint32_t run() noexcept {
    return this->store([this]() -> R {
      return std::apply(
          [this](Fn& f, Args&... args) -> R {
            if constexpr (stoppable) {
              return std::invoke(std::move(f), stop_.get_token(), std::move(args)...);
            } else {
              (void)this;
              return std::invoke(std::move(f), std::move(args)...);
            }
          },
          *call_);
    });
  }

  std::optional<std::tuple<Fn, Args...>> call_;
  // Made with the task, so that cancel() can request stop at any time without a race.
  [[no_unique_address]] std::conditional_t<stoppable, std::stop_source, no_stop> stop_;
};

// A continuation made by then(): runs `Fn` on the antecedent's value once it is ready;
// forwards its exception or cancellation without calling `Fn`. `MoveValue` is set when then()
// was called on an rvalue future, which hands the value over.
template <class U, class T, class Fn, bool MoveValue>
class then_state final : public result_state<U> {
 public:
  template <class F>
  explicit then_state(F&& f)
      : result_state<U>(st_pending), fn_(std::in_place, std::forward<F>(f)) {}

  std::uint32_t invoke() noexcept override {
    // relaxed: the antecedent was set before this task was published, and it is cleared only
    // after this call (or instead of it, by cancel() and destroy()); a helper may have set the
    // lock bit, which is masked off.
    auto* a = reinterpret_cast<result_state<T>*>(this->antecedent_.load(std::memory_order_relaxed) &
                                                 ~std::uintptr_t{1});
    std::uint32_t phase = a->phase();
    if (phase == st_cancelled) {
      // forwarded below
    } else if (phase == st_failed) {
      this->error_ = a->error_;
      // This future carries it on now. relaxed: published by the seq_cst decrement of
      // a->takers_ that follows (drop_antecedent() in the core).
      a->observed_.store(true, std::memory_order_relaxed);
    } else {
      phase = this->store([this, a]() -> U {
        if constexpr (std::is_void_v<T>) {
          (void)a;
          return std::invoke(std::move(*fn_));
        } else if constexpr (MoveValue) {
          return std::invoke(std::move(*fn_), std::move(a->value()));
        } else {
          return std::invoke(std::move(*fn_), std::as_const(a->value()));
        }
      });
    }
    fn_.reset();
    return phase;
  }
  void drop_callable() noexcept override { fn_.reset(); }

 private:
  std::optional<Fn> fn_;
};

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_TASK_STATE_HPP
