// work_deque: a worker's own queue for the tasks it submits. Its owner pushes and takes at the
// bottom (newest first, so a task waited for right after it was submitted is usually still
// there, and is taken back instead of left behind as a stale entry); other workers steal from
// the top (oldest first). The Chase-Lev work-stealing deque, with a fixed capacity: a full
// deque makes push() fail and the pool queues the task on its shared ring instead.
//
// Memory orderings follow Le, Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing
// for Weak Memory Models" (PPoPP 2013), with their two seq_cst fences replaced by seq_cst
// accesses to top_ and bottom_ (ThreadSanitizer does not model fences): take()'s store of
// bottom_ and its load of top_, and steal()'s loads of top_ and bottom_, are all seq_cst, so
// an owner taking the last task and a thief stealing it cannot both miss each other; the CAS
// on top_ then lets only one of them have it.
#ifndef BACKGROUND_SRC_WORK_DEQUE_HPP
#define BACKGROUND_SRC_WORK_DEQUE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "background/detail/task_state.hpp"

namespace background::detail {

class work_deque {
 public:
  static constexpr std::int64_t capacity = 256;  // a power of two

  // Owner only. Appends `t` at the bottom; false if the deque is full.
  bool push(task_base* t) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // acquire: pairs with a thief's CAS on top_, so its read of the cell we may now reuse
    // happened before our write.
    const std::int64_t t0 = top_.load(std::memory_order_acquire);
    if (b - t0 >= capacity) return false;
    cell(b).store(t, std::memory_order_relaxed);
    // release: publishes the cell (and the task's fields) to the thief that loads bottom_.
    // seq_cst, for the pool's Dekker pairs with parking workers (see pool_impl::submit()).
    bottom_.store(b + 1, std::memory_order_seq_cst);
    return true;
  }

  // Owner only. Removes and returns the newest task; null if empty (or a thief won the last).
  task_base* take() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t0 = top_.load(std::memory_order_seq_cst);
    if (t0 > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    task_base* t = cell(b).load(std::memory_order_relaxed);
    if (t0 == b) {  // the last one: race the thieves for it
      if (!top_.compare_exchange_strong(t0, t0 + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        t = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return t;
  }

  // Owner only. The newest task, without removing it; null if empty. relaxed: bottom_ is the
  // owner's own; a stale top_ can only make it answer a task that a thief has just taken, and
  // take(), which the caller uses next, settles that race.
  task_base* peek_newest() const noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    if (b <= top_.load(std::memory_order_relaxed)) return nullptr;
    return cell(b - 1).load(std::memory_order_relaxed);
  }

  // Any thread. Removes and returns the oldest task; null if empty or if it lost a race (the
  // caller may look again).
  task_base* steal() noexcept {
    std::int64_t t0 = top_.load(std::memory_order_seq_cst);
    // seq_cst also acquires: pairs with push()'s store, so the cell and the task are visible.
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t0 >= b) return nullptr;
    task_base* t = cell(t0).load(std::memory_order_relaxed);
    if (!top_.compare_exchange_strong(t0, t0 + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return nullptr;
    }
    return t;
  }

  // Any thread. Whether it may hold a task (seq_cst loads, for the pool's Dekker pairs).
  bool maybe_nonempty() const noexcept {
    return bottom_.load(std::memory_order_seq_cst) > top_.load(std::memory_order_seq_cst);
  }

 private:
  std::atomic<task_base*>& cell(std::int64_t i) noexcept {
    return cells_[static_cast<std::size_t>(i & (capacity - 1))];
  }
  const std::atomic<task_base*>& cell(std::int64_t i) const noexcept {
    return cells_[static_cast<std::size_t>(i & (capacity - 1))];
  }

  alignas(64) std::atomic<std::int64_t> top_{0};     // thieves take from here
  alignas(64) std::atomic<std::int64_t> bottom_{0};  // the owner pushes and takes here
  alignas(64) std::atomic<task_base*> cells_[capacity]{};
};

}  // namespace background::detail

#endif  // BACKGROUND_SRC_WORK_DEQUE_HPP
