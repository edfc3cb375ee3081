// injection_queue: a pool's queue of submitted tasks. A bounded ring that any number of threads
// push to and pop from without a lock, FIFO: the bounded MPMC queue design described by Dmitry
// Vyukov, where each cell carries a sequence number saying whose turn it is. A full ring makes
// try_push() fail; the pool then queues the task on its overflow list (overflow_list.hpp).
#ifndef BACKGROUND_SRC_INJECTION_QUEUE_HPP
#define BACKGROUND_SRC_INJECTION_QUEUE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "background/detail/task_state.hpp"

namespace background::detail {

class injection_queue {
 public:
  static constexpr std::size_t capacity = 1024;  // a power of two

  injection_queue() noexcept {
    for (std::size_t i = 0; i < capacity; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  injection_queue(const injection_queue&) = delete;
  injection_queue& operator=(const injection_queue&) = delete;

  // Appends `t`; false if the ring is full.
  bool try_push(task_base* t) noexcept {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask];
      // acquire: pairs with the release in try_pop() that freed the cell, so the consumer's
      // read of the previous item happens before our write.
      const std::size_t seq = c.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
      if (diff == 0) {
        // seq_cst on success: the cell's sequence number, not tail_, carries the data, but the
        // pool pairs this write with its reads of who is searching or parked (a Dekker
        // pattern; see pool_impl::push()). Free on x86, where any CAS is a full barrier.
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          c.item = t;
          // release: publishes the item, and everything written to the task before the push,
          // to the consumer that acquires this sequence number.
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // the cell still holds the item from one lap ago: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another producer took this cell
      }
    }
  }

  // Removes and returns the oldest task; null if the ring is empty.
  task_base* try_pop() noexcept {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask];
      // acquire: pairs with the release in try_push() that published the item.
      const std::size_t seq = c.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          task_base* t = c.item;
          // release: the cell is free for the producer one lap ahead (see try_push()).
          c.seq.store(pos + capacity, std::memory_order_release);
          return t;
        }
      } else if (diff < 0) {
        return nullptr;  // not yet published: empty
      } else {
        pos = head_.load(std::memory_order_relaxed);  // another consumer took this cell
      }
    }
  }

  // Whether the ring may hold a task: true from the moment a push has taken its cell, which
  // may be a moment before try_pop() can see the task. seq_cst loads: the other half of the
  // Dekker pattern described at try_push().
  bool maybe_nonempty() const noexcept {
    return tail_.load(std::memory_order_seq_cst) != head_.load(std::memory_order_seq_cst);
  }

 private:
  static constexpr std::size_t mask = capacity - 1;

  struct alignas(16) cell {
    std::atomic<std::size_t> seq;
    task_base* item = nullptr;
  };

  // Producers and consumers each on their own cache line, away from the cells.
  alignas(64) std::atomic<std::size_t> tail_{0};  // the next position to push to
  alignas(64) std::atomic<std::size_t> head_{0};  // the next position to pop from
  alignas(64) cell cells_[capacity];
};

}  // namespace background::detail

#endif  // BACKGROUND_SRC_INJECTION_QUEUE_HPP
