// std::async(std::launch::async): a new thread per task, no pool. Its futures block on
// destruction, so post() keeps them until wait_all().
#ifndef BENCH_PEERS_STD_ASYNC_HPP
#define BENCH_PEERS_STD_ASYNC_HPP

#include <cstddef>
#include <future>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

class std_async_peer {
 public:
  static constexpr std::string_view name = "std_async";
  // A thread per task: 1M of them would take most of a minute; ns/task needs fewer.
  static constexpr double task_factor = 0.02;
  static constexpr const char* no_grow = "no pool: a new thread per task, nothing to start";
  static constexpr const char* no_idle = "no pool: its threads end with their task";
  static constexpr const char* no_fork_join =
      "a thread per call: fib(25) would start ~121k threads; it measures thread creation";
  static constexpr const char* no_backlog =
      "no queue: a thread per task, nothing waits behind a blocked worker";

  explicit std_async_peer(std::size_t /*threads*/) {}

  template <class F>
  void post(F f) {
    auto fut = std::async(std::launch::async, std::move(f));
    std::lock_guard lock(m_);
    kept_.push_back(std::move(fut));
  }
  template <class F>
  auto submit(F f) {
    return std::async(std::launch::async, std::move(f));
  }
  void wait_all() {
    std::lock_guard lock(m_);
    for (auto& f : kept_) f.wait();
    kept_.clear();
  }

 private:
  std::mutex m_;
  std::vector<std::future<void>> kept_;
};

}  // namespace bench

#endif  // BENCH_PEERS_STD_ASYNC_HPP
