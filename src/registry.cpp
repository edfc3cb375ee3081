#include "registry.hpp"

#include <mutex>
#include <unordered_map>

#include "background/detail/testing.hpp"
#include "background/error.hpp"
#include "fork.hpp"
#include "pool_impl.hpp"

namespace background::detail {
namespace {

// Leaked on purpose: pools destroyed during static destruction still unregister.
struct registry {
  std::mutex mutex;
  std::uint64_t last_id = 0;
  std::unordered_map<std::uint64_t, pool_impl*> pools;
};
registry& instance() {
  static auto* r = new registry;
  return *r;
}

}  // namespace

std::uint64_t register_pool(pool_impl* p) {
  install_fork_handlers();
  registry& r = instance();
  std::lock_guard<std::mutex> lock(r.mutex);
  const std::uint64_t id = ++r.last_id;
  r.pools.emplace(id, p);
  return id;
}

void unregister_pool(std::uint64_t id) noexcept {
  registry& r = instance();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.pools.erase(id);
}

std::size_t registered_pools() noexcept {
  registry& r = instance();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.pools.size();
}

void submit_to_pool(std::uint64_t id, task_base* t) {
  registry& r = instance();
  // Held across the submit, so the pool cannot start its shutdown in between; lock order is
  // always registry, then pool.
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.pools.find(id);
  if (it == r.pools.end()) throw shutdown_error();
  // A continuation cancelled meanwhile is not queued: its reference is ours to drop.
  if (!it->second->submit(t, /*with_callbacks=*/false, /*internal=*/false)) t->release();
}

std::size_t lock_pools_for_fork() noexcept {
  pool_impl::before_fork();
  registry& r = instance();
  r.mutex.lock();
  for (auto& entry : r.pools) entry.second->lock_for_fork();
  return r.pools.size();
}

void unlock_pools_after_fork() noexcept {
  registry& r = instance();
  for (auto& entry : r.pools) entry.second->unlock_after_fork();
  r.mutex.unlock();
}

void renew_pools_after_fork() noexcept {
  pool_impl::restore_mask_after_fork();
  registry& r = instance();
  // Same ids: then(p, f) and finished tasks still find their pool. A pool that was shutting
  // down gets a closed engine, which throws shutdown_error as a missing entry would; its entry
  // stays, since erasing it would free memory here (see pool_impl::lock_for_fork()).
  for (auto& entry : r.pools) entry.second = entry.second->renew_after_fork();
  r.mutex.unlock();
}

}  // namespace background::detail
