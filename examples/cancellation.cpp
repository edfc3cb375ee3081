// cancellation: a task that takes a std::stop_token is asked to stop while it runs; a queued task
// is taken off the queue; and pool::shutdown(background::cancel_pending) cancels what has not
// started, asks what runs to stop, and waits for it. The counts it prints are exact: the pool has
// one thread, held by a task until shutdown asks it to stop, so nothing queued can start.
#include <background/background.hpp>
#include <chrono>
#include <cstdio>
#include <latch>
#include <stop_token>
#include <thread>
#include <vector>

int main() {
  // A task whose first parameter is a std::stop_token gets one; the other arguments follow it.
  std::latch started{1};
  auto poller = background::run(
      [&started](std::stop_token stop, std::chrono::milliseconds period) {
        started.count_down();
        int rounds = 0;
        while (!stop.stop_requested()) {
          std::this_thread::sleep_for(period);  // One round of work, then look again.
          ++rounds;
        }
        return rounds;
      },
      std::chrono::milliseconds(1));
  started.wait();
  // Too late to take it off the queue, so cancel() returns false, and asks it to stop instead.
  const bool removed = poller.cancel();
  poller.wait();
  std::printf("cancel() on a running task: %s, so it was asked to stop, and it did\n",
              removed ? "true" : "false");

  // One worker, held by a task that waits for a stop request; then five more tasks queue up.
  background::pool p{1};
  std::latch holding{1};
  auto holder = p.run([&holding](std::stop_token stop) {
    std::latch stopped{1};
    std::stop_callback on_stop(stop, [&stopped] { stopped.count_down(); });
    holding.count_down();
    stopped.wait();
  });
  holding.wait();
  std::vector<background::future<void>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(p.run([] { std::printf("never printed\n"); }));

  std::printf("cancel() on a queued task: %s\n", queued.front().cancel() ? "true" : "false");
  p.shutdown(background::cancel_pending);  // cancels the other four, stops `holder`, waits

  int ran = 0;
  int cancelled = 0;
  queued.push_back(holder);
  for (const auto& f : queued) {
    try {
      f.get();
      ++ran;
    } catch (const background::cancelled&) {
      ++cancelled;
    }
  }
  std::printf("shutdown(cancel_pending): %d ran, %d cancelled\n", ran, cancelled);

  try {
    p.run([] {});
  } catch (const background::shutdown_error&) {
    std::printf("run() after shutdown: shutdown_error\n");
  }
}
