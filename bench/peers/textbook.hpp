// The textbook mutex + condition_variable pool (textbook_pool.hpp) as a peer.
#ifndef BENCH_PEERS_TEXTBOOK_HPP
#define BENCH_PEERS_TEXTBOOK_HPP

#include <cstddef>
#include <string_view>
#include <utility>

#include "peers/textbook_pool.hpp"

namespace bench {

class textbook_peer {
 public:
  static constexpr std::string_view name = "textbook";
  static constexpr const char* no_fork_join =
      "a worker blocked in get() never runs queued tasks: fib would deadlock";

  explicit textbook_peer(std::size_t threads) : pool_(threads) {}

  template <class F>
  void post(F f) {
    pool_.post(std::move(f));
  }
  template <class F>
  auto submit(F f) {
    return pool_.submit(std::move(f));
  }
  void wait_all() { pool_.wait_all(); }

 private:
  textbook_pool pool_;
};

}  // namespace bench

#endif  // BENCH_PEERS_TEXTBOOK_HPP
