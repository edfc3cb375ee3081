// held_pool: a pool of one thread whose worker is held until release(), so that what a test
// submits after it stays queued (to cancel it, or to see what waits for it).
#ifndef BACKGROUND_TESTS_SUPPORT_HELD_POOL_HPP
#define BACKGROUND_TESTS_SUPPORT_HELD_POOL_HPP

#include <atomic>
#include <latch>

#include "background/background.hpp"

namespace background::testing {

// The worker is taken by a task that waits for release() (which the destructor calls, once).
// The destructor then waits for that task, so that the worker has left gate_ before it goes
// (members go in reverse order: gate_ before pool_, whose destructor joins the worker).
class held_pool {
 public:
  held_pool() : blocker_(pool_.run([this] { gate_.wait(); })) {}
  held_pool(const held_pool&) = delete;
  held_pool& operator=(const held_pool&) = delete;
  ~held_pool() {
    release();
    blocker_.wait();
  }
  void release() {
    if (!released_.exchange(true)) gate_.count_down();
  }
  background::pool& pool() { return pool_; }

 private:
  background::pool pool_{1};
  std::latch gate_{1};
  std::atomic<bool> released_{false};
  future<void> blocker_;
};

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_HELD_POOL_HPP
