// stats: a pool you can see into. Its workers are named "resizer-<k>" (as top -H, gdb and perf
// show them), hooks run on each worker as it starts and before it exits, p.stats() counts what
// finished and how, and background::this_pool() tells a task which pool runs it.
#include <pthread.h>

#include <atomic>
#include <background/background.hpp>
#include <cstddef>
#include <cstdio>
#include <latch>
#include <stdexcept>
#include <string>
#include <vector>

int main() {
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  {
    background::pool p{4, background::pool_options{
                              .name = "resizer",
                              .on_thread_start = [&started](std::size_t) { ++started; },
                              .on_thread_stop = [&stopped](std::size_t) { ++stopped; },
                          }};

    auto where = p.run([&p] {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      return std::string(background::this_pool() == &p ? "true" : "false") + ", thread " + name;
    });
    std::printf("inside a task: this_pool() == &p is %s\n", where.get().c_str());
    std::printf("outside any pool: this_pool() == nullptr is %s\n",
                background::this_pool() == nullptr ? "true" : "false");

    // Hold all four workers, so that three queued tasks can be cancelled before they start.
    std::latch holding{4};
    std::latch release{1};
    for (int i = 0; i < 4; ++i) {
      p.run([&holding, &release] {
        holding.count_down();
        release.wait();
      });
    }
    holding.wait();
    for (int i = 0; i < 3; ++i) p.run([] {}).cancel();
    release.count_down();

    // Five tasks that succeed and two that fail; their futures are kept, and read below.
    std::vector<background::future<int>> results;
    for (int i = 0; i < 7; ++i) {
      results.push_back(p.run(
          [](int x) {
            if (x >= 5) throw std::runtime_error("bad input");
            return x;
          },
          i));
    }
    p.wait();

    const background::pool_stats s = p.stats();
    std::printf("p.stats(): threads %zu, completed %llu, failed %llu, cancelled %llu\n", s.threads,
                static_cast<unsigned long long>(s.completed),
                static_cast<unsigned long long>(s.failed),
                static_cast<unsigned long long>(s.cancelled));
    for (const auto& f : results) static_cast<void>(f.exception());  // observe the two failures
  }
  // The pool is gone: every worker ran both hooks.
  std::printf("hooks: %d workers started, %d stopped\n", started.load(), stopped.load());
}
