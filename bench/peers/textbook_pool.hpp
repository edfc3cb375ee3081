// textbook_pool: the thread pool of every C++ concurrency tutorial, as the baseline a
// hand-rolled pool gives. One mutex guards a std::queue of std::function; workers sleep on a
// condition_variable; submit() wraps the call in a std::packaged_task for its future.
#ifndef BENCH_PEERS_TEXTBOOK_POOL_HPP
#define BENCH_PEERS_TEXTBOOK_POOL_HPP

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace bench {

class textbook_pool {
 public:
  explicit textbook_pool(std::size_t threads) {
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  // Runs what is queued, then joins.
  ~textbook_pool() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    has_work_.notify_all();
    for (auto& t : workers_) t.join();
  }

  textbook_pool(const textbook_pool&) = delete;
  textbook_pool& operator=(const textbook_pool&) = delete;

  void post(std::function<void()> f) {
    {
      std::lock_guard lock(m_);
      queue_.push(std::move(f));
      ++unfinished_;
    }
    has_work_.notify_one();
  }

  // std::function needs a copyable callable, hence the shared packaged_task.
  template <class F>
  auto submit(F f) -> std::future<std::invoke_result_t<F>> {
    auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(f));
    auto result = task->get_future();
    post([task] { (*task)(); });
    return result;
  }

  // Blocks until every task posted so far has finished.
  void wait_all() {
    std::unique_lock lock(m_);
    all_done_.wait(lock, [this] { return unfinished_ == 0; });
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lock(m_);
        has_work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left
        f = std::move(queue_.front());
        queue_.pop();
      }
      f();
      std::lock_guard lock(m_);
      if (--unfinished_ == 0) all_done_.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable has_work_;
  std::condition_variable all_done_;
  std::queue<std::function<void()>> queue_;
  std::size_t unfinished_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace bench

#endif  // BENCH_PEERS_TEXTBOOK_POOL_HPP
