// The live pools, by id, so that then() on a finished task can find the pool the task ran on,
// or learn that it is gone, without the task keeping the pool alive.
#ifndef BACKGROUND_SRC_REGISTRY_HPP
#define BACKGROUND_SRC_REGISTRY_HPP

#include <cstdint>

#include "background/detail/task_state.hpp"

namespace background::detail {

class pool_impl;

// Adds `p` and returns its id, never 0 and never reused.
std::uint64_t register_pool(pool_impl* p);
// Removes the pool `id`: from then on submit_to_pool() no longer finds it. Blocks while a
// submit_to_pool() to it is under way.
void unregister_pool(std::uint64_t id) noexcept;
// Submits `t` (st_queued, or a pending continuation) to the pool `id` as detail::submit does,
// taking over one reference (dropped at once if the continuation was cancelled meanwhile);
// throws shutdown_error if that pool is gone, and the reference stays with the caller.
void submit_to_pool(std::uint64_t id, task_base* t);

}  // namespace background::detail

#endif  // BACKGROUND_SRC_REGISTRY_HPP
