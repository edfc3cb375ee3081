// textbook_pool: the thread pool of every C++ concurrency tutorial, made as fast as such a pool
// gets in ~80 lines, so that it is an honest baseline for a hand-rolled pool. One mutex guards a
// std::deque of std::function and the counts; workers sleep on a condition_variable, woken
// (after the unlock) only if one sleeps; a worker takes its share of the queue at once (up to
// 64 tasks), and finishing them and taking the next share is one lock; wait_all() sleeps on a
// second condition_variable, notified only when someone waits. submit() wraps the call in a
// std::packaged_task for its future. Every task runs exactly once; the destructor drains.
#ifndef BENCH_PEERS_TEXTBOOK_POOL_HPP
#define BENCH_PEERS_TEXTBOOK_POOL_HPP

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace bench {

class textbook_pool {
 public:
  explicit textbook_pool(std::size_t threads) : threads_(threads) {
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
    bool wake = false;
    {
      std::lock_guard lock(m_);
      queue_.push_back(std::move(f));
      ++unfinished_;
      wake = sleeping_ > 0;
    }
    if (wake) has_work_.notify_one();
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
    ++waiting_;
    all_done_.wait(lock, [this] { return unfinished_ == 0; });
    --waiting_;
  }

 private:
  void work() {
    std::vector<std::function<void()>> batch;
    std::unique_lock lock(m_);
    for (;;) {
      while (queue_.empty() && !stopping_) {
        ++sleeping_;
        has_work_.wait(lock);
        --sleeping_;
      }
      if (queue_.empty()) return;  // stopping, and nothing left
      const std::size_t share = std::clamp<std::size_t>(queue_.size() / threads_, 1, 64);
      for (std::size_t i = 0; i < share; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      for (auto& f : batch) f();
      batch.clear();
      lock.lock();
      unfinished_ -= share;
      if (unfinished_ == 0 && waiting_ > 0) all_done_.notify_all();
    }
  }

  const std::size_t threads_;
  std::mutex m_;
  std::condition_variable has_work_;
  std::condition_variable all_done_;
  std::deque<std::function<void()>> queue_;
  std::size_t unfinished_ = 0;  // queued or running
  std::size_t sleeping_ = 0;    // workers in has_work_.wait()
  std::size_t waiting_ = 0;     // threads in wait_all()
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace bench

#endif  // BENCH_PEERS_TEXTBOOK_POOL_HPP
