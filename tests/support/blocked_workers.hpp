// blocked_workers: holds some workers of a pool in tasks until release(), so that what a test
// submits next stays queued behind them (to cancel it, resize under it, or watch it wait).
#ifndef BACKGROUND_TESTS_SUPPORT_BLOCKED_WORKERS_HPP
#define BACKGROUND_TESTS_SUPPORT_BLOCKED_WORKERS_HPP

#include <atomic>
#include <cstddef>
#include <latch>
#include <vector>

#include "background/background.hpp"

namespace background::testing {

// The constructor returns once `count` tasks of `pool` are running (the pool needs that many
// workers free, or it waits for ever); the destructor releases them and waits until they have
// left the latches alone.
class blocked_workers {
 public:
  blocked_workers(background::pool& pool, std::size_t count)
      : started_(static_cast<std::ptrdiff_t>(count)) {
    for (std::size_t i = 0; i < count; ++i) {
      blockers_.push_back(pool.run([this] {
        started_.count_down();
        release_.wait();
      }));
    }
    started_.wait();
  }
  blocked_workers(const blocked_workers&) = delete;
  blocked_workers& operator=(const blocked_workers&) = delete;
  ~blocked_workers() {
    release();
    for (auto& f : blockers_) f.wait();
  }
  void release() {
    if (!released_.exchange(true)) release_.count_down();
  }
  // The blocking tasks' futures, in the order they were submitted.
  const std::vector<future<void>>& futures() const { return blockers_; }

 private:
  std::latch started_;
  std::latch release_{1};
  std::atomic<bool> released_{false};
  std::vector<future<void>> blockers_;
};

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_BLOCKED_WORKERS_HPP
