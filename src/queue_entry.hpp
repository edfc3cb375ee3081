// queue_entry: what a pool's queues hold. A task_base* for a task with a state (run(), then(),
// and the rest); for a task from post(), its post_node*, tagged in the low bit. Both kinds are
// at least 8-byte aligned, so the bit is free; only the pool's workers look inside an entry.
#ifndef BACKGROUND_SRC_QUEUE_ENTRY_HPP
#define BACKGROUND_SRC_QUEUE_ENTRY_HPP

#include <cstdint>

#include "background/detail/post_node.hpp"
#include "background/detail/task_state.hpp"

namespace background::detail {

inline task_base* entry_of(post_node* n) noexcept {
  return reinterpret_cast<task_base*>(reinterpret_cast<std::uintptr_t>(n) | 1U);
}

inline bool is_post(const task_base* entry) noexcept {
  return (reinterpret_cast<std::uintptr_t>(entry) & 1U) != 0;
}

inline post_node* post_of(task_base* entry) noexcept {
  return reinterpret_cast<post_node*>(reinterpret_cast<std::uintptr_t>(entry) & ~std::uintptr_t{1});
}

// The entry's link field, for the overflow list.
inline task_base*& link_of(task_base* entry) noexcept {
  return is_post(entry) ? post_of(entry)->next_ : entry->next_;
}

}  // namespace background::detail

#endif  // BACKGROUND_SRC_QUEUE_ENTRY_HPP
