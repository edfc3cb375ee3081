// oneTBB: a task_arena of `threads` slots (none reserved for outside threads, so `threads`
// workers run tasks, as in the other pools) and a task_group to wait on. Tasks come in from
// outside the arena through task_arena::enqueue(task_group::defer(f)), the documented way for
// a thread that is not a TBB worker; wait_all() joins the arena to wait (and helps run tasks).
#ifndef BENCH_PEERS_TBB_HPP
#define BENCH_PEERS_TBB_HPP

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <cstddef>
#include <future>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

namespace bench {

class tbb_peer {
 public:
  static constexpr std::string_view name = "tbb";
  static constexpr const char* no_grow =
      "workers belong to TBB's process-wide market, started lazily and kept after the arena";
  static constexpr const char* own_allocator =
      "its tasks come from libtbbmalloc, which glibc's mallinfo2 does not count";

  // TBB caps its workers at the CPU count unless told otherwise: allow `threads` of them.
  explicit tbb_peer(std::size_t threads)
      : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1),
        arena_(static_cast<int>(threads), 0) {
    arena_.initialize();
  }

  ~tbb_peer() { wait_all(); }

  template <class F>
  void post(F f) {
    arena_.enqueue(group_.defer(std::move(f)));
  }
  template <class F>
  auto submit(F f) {
    auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(f));
    auto result = task->get_future();
    post([task] { (*task)(); });
    return result;
  }
  void wait_all() {
    arena_.execute([this] { group_.wait(); });
  }

  // Inside the arena, a task_group per call: the waiting thread runs other tasks meanwhile.
  template <class A, class B>
  void fork_join(A a, B b) {
    oneapi::tbb::task_group g;
    g.run(std::move(a));
    b();
    g.wait();
  }
  // fib25 enters the arena once, from the benchmark's thread.
  template <class F>
  auto enter(F f) {
    return arena_.execute(std::move(f));
  }

 private:
  oneapi::tbb::global_control limit_;
  oneapi::tbb::task_arena arena_;
  oneapi::tbb::task_group group_;
};

}  // namespace bench

#endif  // BENCH_PEERS_TBB_HPP
