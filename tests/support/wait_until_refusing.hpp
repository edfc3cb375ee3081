// wait_until_refusing: waits until another thread's shutdown() of a pool has started, which the
// process tests need before they fork (a pool that is shutting down at the fork).
#ifndef BACKGROUND_TESTS_SUPPORT_WAIT_UNTIL_REFUSING_HPP
#define BACKGROUND_TESTS_SUPPORT_WAIT_UNTIL_REFUSING_HPP

#include <background/background.hpp>
#include <chrono>
#include <thread>

namespace background::testing {

// Returns once a submit to `p` is refused (shutdown_error): its shutdown() has started. Posts
// no-op tasks until then, which the shutdown's drain runs.
inline void wait_until_refusing(pool& p) {
  for (;;) {
    try {
      p.post([] {});
    } catch (const shutdown_error&) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_WAIT_UNTIL_REFUSING_HPP
