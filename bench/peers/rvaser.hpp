// rvaser/thread_pool (libthread-pool-dev): one mutex-guarded queue per worker, tried in turn
// with try_lock, and Submit() returning a std::future from a std::packaged_task.
#ifndef BENCH_PEERS_RVASER_HPP
#define BENCH_PEERS_RVASER_HPP

#include <cstddef>
#include <string_view>
#include <thread_pool/thread_pool.hpp>
#include <utility>

#include "peers/pending.hpp"

namespace bench {

class rvaser_peer {
 public:
  static constexpr std::string_view name = "rvaser";
  static constexpr const char* no_fork_join =
      "a worker blocked in get() never runs queued tasks: fib would deadlock";

  explicit rvaser_peer(std::size_t threads) : pool_(threads) {}

  // Its futures do not block on destruction, so they may be dropped; pending_ counts.
  template <class F>
  void post(F f) {
    (void)pool_.Submit(pending_.wrap(std::move(f)));
  }
  template <class F>
  auto submit(F f) {
    return pool_.Submit(std::move(f));
  }
  void wait_all() { pending_.wait(); }

 private:
  pending pending_;  // declared first: destroyed after the pool's threads are joined
  thread_pool::ThreadPool pool_;
};

}  // namespace bench

#endif  // BENCH_PEERS_RVASER_HPP
