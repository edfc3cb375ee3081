// pending: counts fire-and-forget tasks still to finish, for peers that cannot wait for all
// their tasks themselves (Asio's thread_pool::wait() joins its threads for good; rvaser's pool
// and a task_arena's enqueue() have no such call). This is what a user of those pools writes.
#ifndef BENCH_PEERS_PENDING_HPP
#define BENCH_PEERS_PENDING_HPP

#include <atomic>
#include <utility>

namespace bench {

class pending {
 public:
  // Wraps `f` so that it counts as pending from now until it has run.
  template <class F>
  auto wrap(F f) {
    count_.fetch_add(1, std::memory_order_relaxed);
    return [this, f = std::move(f)]() mutable {
      f();
      if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) count_.notify_all();
    };
  }

  // Blocks until every wrapped task has run.
  void wait() {
    for (int n = count_.load(std::memory_order_acquire); n != 0;
         n = count_.load(std::memory_order_acquire)) {
      count_.wait(n, std::memory_order_acquire);
    }
  }

 private:
  std::atomic<int> count_{0};
};

}  // namespace bench

#endif  // BENCH_PEERS_PENDING_HPP
