// The public pool, the default pool and the free functions on it.
#include "background/pool.hpp"

#include <atomic>
#include <mutex>

#include "background/background.hpp"
#include "cpu_count.hpp"
#include "fork.hpp"
#include "pool_impl.hpp"

namespace background {

pool::pool(std::size_t threads) : pool(threads, pool_options{}) {}

pool::pool(std::size_t threads, pool_options options) : impl_(nullptr) {
  detail::pool_impl::create(threads, std::move(options), this, impl_);
}

pool::pool() : pool(detail::available_cpus()) {}

pool::~pool() { impl_->shut_down(); }

void pool::shutdown() { impl_->shutdown(/*cancel_pending=*/false); }

void pool::shutdown(cancel_pending_t) { impl_->shutdown(/*cancel_pending=*/true); }

pool_stats pool::stats() const { return impl_->stats(); }

pool* this_pool() noexcept {
  detail::pool_impl* p = detail::pool_impl::current_worker_pool();
  return p != nullptr ? p->owner() : nullptr;
}

pool_stats stats() { return default_pool().stats(); }

void pool::resize(std::size_t threads) { impl_->resize(threads); }

std::size_t pool::size() const noexcept { return impl_->size(); }

void pool::wait() { impl_->wait(); }

bool pool::wait_until(std::chrono::steady_clock::time_point deadline) {
  return impl_->wait_until(deadline);
}

void pool::callback(std::function<void(const outcome&)> f) { impl_->add_callback(std::move(f)); }

namespace {
// Set once the default pool's destructor has finished; a trivially destructible static, so it
// can still be read during the rest of static destruction.
bool default_pool_gone = false;
// The default pool, once constructed. release/acquire: its construction is visible to whoever
// loads the pointer.
std::atomic<pool*> default_instance{nullptr};
// Held while the default pool is constructed, and by fork()'s prepare handler: a fork() in the
// middle of the construction would leave the function-local static's guard taken for ever in
// the child. Constant-initialised.
std::mutex default_construction;

pool& construct_default_pool() {
  // Constructed before the pool, so destroyed after it has drained.
  static struct gone_marker {
    ~gone_marker() { default_pool_gone = true; }
  } marker;
  // Constructed on first use and destroyed at exit like any function-local static: its
  // destructor runs every task still queued, before the statics constructed earlier are gone.
  static pool instance;
  default_instance.store(&instance, std::memory_order_release);
  return instance;
}
}  // namespace

pool& default_pool() {
  if (default_pool_gone) throw shutdown_error();
  if (pool* p = default_instance.load(std::memory_order_acquire)) return *p;
  std::lock_guard<std::mutex> lock(default_construction);
  return construct_default_pool();
}

void wait() { default_pool().wait(); }

void callback(std::function<void(const outcome&)> f) { default_pool().callback(std::move(f)); }

namespace detail {
void lock_default_pool_for_fork() noexcept { default_construction.lock(); }
void unlock_default_pool_after_fork() noexcept { default_construction.unlock(); }
pool_impl* default_pool_impl() { return default_pool().impl_; }
std::uint64_t target_pool_id(const pool& p) {
  pool_impl* impl = pool_access::impl(p);
  if (!impl->takes_tasks()) throw shutdown_error();
  return impl->id;
}
}  // namespace detail

}  // namespace background
