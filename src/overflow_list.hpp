// overflow_list: the unbounded FIFO a pool queues tasks on when its ring is full. Producers
// push without a lock, with one atomic exchange (an intrusive list in the style of Dmitry
// Vyukov's multi-producer queue, without the stub node); one consumer at a time pops, under a
// lock that the caller holds (pool_impl's mutex).
//
// Many producers that outrun the workers (a server's request threads) queue almost everything
// here: the ring fills within a thousand tasks. Under the mutex that this replaces, 8
// producers on 2 vCPUs spent more time in the kernel (futex waits and wakes on the contended
// lock) than in user code.
#ifndef BACKGROUND_SRC_OVERFLOW_LIST_HPP
#define BACKGROUND_SRC_OVERFLOW_LIST_HPP

#include <atomic>

#include "queue_entry.hpp"

namespace background::detail {

class overflow_list {
 public:
  overflow_list() = default;
  overflow_list(const overflow_list&) = delete;
  overflow_list& operator=(const overflow_list&) = delete;

  // Appends the queue entry `t` (see queue_entry.hpp; no other list holds it: its link is
  // free). Any thread, no lock.
  void push(task_base* t) noexcept {
    link(t).store(nullptr, std::memory_order_relaxed);
    // seq_cst: the pool pairs this write with its reads of who is searching or parked, as it
    // does a ring push (a Dekker pattern; see pool_impl::push()). acq_rel within it: release
    // so that the consumer that follows the chain to `t` sees it whole (with the link store
    // below), acquire so that `prev`'s link field is ours to write.
    task_base* prev = tail_.exchange(t, std::memory_order_seq_cst);
    // Between the exchange and this store the list is broken at `prev`: the consumer sees a
    // tail it cannot reach yet, and waits or comes back (see try_pop()). `prev` cannot be freed
    // meanwhile: the consumer pops a node only once its link is set, or once it has taken the
    // tail back from it (then no producer got it as its `prev`).
    if (prev == nullptr) {
      head_.store(t, std::memory_order_release);  // pairs with the acquire in try_pop()
    } else {
      link(prev).store(t, std::memory_order_release);  // pairs with the acquire in try_pop()
    }
  }

  // Removes and returns the oldest task; null if the list is empty, or if its oldest task is
  // being linked by a push that has not finished (then maybe_nonempty() stays true: come back).
  // Only under the caller's lock: one consumer at a time.
  task_base* try_pop() noexcept {
    // acquire: pairs with the release of the push that made it the head.
    task_base* h = head_.load(std::memory_order_acquire);
    if (h == nullptr) return nullptr;  // empty, or the first push has not stored the head yet
    // acquire: pairs with the release of the push that linked `next`.
    task_base* next = link(h).load(std::memory_order_acquire);
    if (next != nullptr) {
      head_.store(next, std::memory_order_relaxed);  // only this consumer reads it now
      return h;
    }
    // `h` looks like the last. The head is cleared first: once the tail is null, the next push
    // stores its task there, and must not find ours overwrite it.
    head_.store(nullptr, std::memory_order_relaxed);
    task_base* expected = h;
    // seq_cst: a parker that then reads the tail null also sees what this consumer pushed to
    // the ring before (pool_impl::pop_locked()); see pool_impl::maybe_queued().
    if (tail_.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return h;
    }
    // A push has taken the tail from `h` and is about to link it: wait the moment it takes.
    // (Only that push writes `h`'s link; no push writes the head, since the tail was not null.)
    for (int spins = 0; spins < 64; ++spins) {
      next = link(h).load(std::memory_order_acquire);
      if (next != nullptr) {
        head_.store(next, std::memory_order_relaxed);
        return h;
      }
    }
    head_.store(h, std::memory_order_relaxed);  // still first: the pusher was preempted
    return nullptr;
  }

  // With the oldest task linked to a next one (so not the last: see try_pop()), calls
  // `take(oldest)`, and removes it if that returns true; says whether it did. `take` may hand
  // the task to other threads: the link is read before. Only under the caller's lock.
  template <class F>
  bool pop_front_if(F&& take) {
    task_base* h = head_.load(std::memory_order_acquire);  // as in try_pop()
    if (h == nullptr) return false;
    task_base* next = link(h).load(std::memory_order_acquire);
    if (next == nullptr || !take(h)) return false;
    head_.store(next, std::memory_order_relaxed);
    return true;
  }

  // Whether the list may hold a task. seq_cst: the other half of the Dekker pattern described
  // at push(), and see try_pop().
  bool maybe_nonempty() const noexcept { return tail_.load(std::memory_order_seq_cst) != nullptr; }

 private:
  static std::atomic_ref<task_base*> link(task_base* entry) noexcept {
    return std::atomic_ref<task_base*>(link_of(entry));
  }

  alignas(64) std::atomic<task_base*> tail_{nullptr};  // producers
  alignas(64) std::atomic<task_base*> head_{nullptr};  // the consumer; a push to an empty list
};

}  // namespace background::detail

#endif  // BACKGROUND_SRC_OVERFLOW_LIST_HPP
