// The library under test: a background::pool of its own, driven through its public API only.
#ifndef BENCH_PEERS_BACKGROUND_HPP
#define BENCH_PEERS_BACKGROUND_HPP

#include <background/background.hpp>
#include <cstddef>
#include <string_view>
#include <utility>

namespace bench {

class background_peer {
 public:
  static constexpr std::string_view name = "background";

  explicit background_peer(std::size_t threads) : pool_(threads) {}

  template <class F>
  void post(F f) {
    pool_.post(std::move(f));  // no future at all
  }
  // run() with its future dropped at once: fire-and-forget as a user of run() writes it.
  template <class F>
  void run_dropped(F f) {
    (void)pool_.run(std::move(f));
  }
  template <class F>
  auto submit(F f) {
    return pool_.run(std::move(f));
  }
  void wait_all() { pool_.wait(); }

  // The pool itself, for the workloads that use background's own verbs (workloads/compose.hpp).
  background::pool& pool() { return pool_; }

  // A nested get() runs the awaited task inline if no worker has started it.
  template <class A, class B>
  void fork_join(A a, B b) {
    auto f = pool_.run(std::move(a));
    b();
    f.get();
  }

 private:
  background::pool pool_;
};

}  // namespace bench

#endif  // BENCH_PEERS_BACKGROUND_HPP
