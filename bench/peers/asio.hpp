// Boost.Asio: a boost::asio::thread_pool, tasks sent with boost::asio::post; values come back
// through use_future, which wraps the call in a std::promise.
#ifndef BENCH_PEERS_ASIO_HPP
#define BENCH_PEERS_ASIO_HPP

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <cstddef>
#include <string_view>
#include <utility>

#include "peers/pending.hpp"

namespace bench {

class asio_peer {
 public:
  static constexpr std::string_view name = "asio";
  static constexpr const char* no_fork_join =
      "a handler blocked on a future never runs queued handlers: fib would deadlock";

  explicit asio_peer(std::size_t threads) : pool_(threads) {}

  // thread_pool's destructor stops it, dropping queued handlers: finish them first.
  ~asio_peer() { wait_all(); }

  template <class F>
  void post(F f) {
    boost::asio::post(pool_, pending_.wrap(std::move(f)));
  }
  template <class F>
  auto submit(F f) {
    return boost::asio::post(pool_, boost::asio::use_future(std::move(f)));
  }
  void wait_all() { pending_.wait(); }

 private:
  pending pending_;  // declared first: destroyed after the pool's threads are joined
  boost::asio::thread_pool pool_;
};

}  // namespace bench

#endif  // BENCH_PEERS_ASIO_HPP
