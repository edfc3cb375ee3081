/// @file
/// background: run a function in the background with one call, and get a future back.
///
/// This header is the whole API: the seed's `task`, `run`, `n`, `callback` and `wait` on the
/// default pool, plus `future`, `pool`, the error types, composition (compose.hpp), map() and
/// for_each() (map.hpp) and coroutines (coroutine.hpp), which it includes.
///
/// **Example**:
///
/// ```
///   auto send_email = background::task([](std::string to, std::string subject) { ... });
///   send_email("alice@example.com", "Hello");  // returns a background::future<void> at once
///   background::n = 8;                         // resize the default pool, at run time
/// ```
#ifndef BACKGROUND_BACKGROUND_HPP
#define BACKGROUND_BACKGROUND_HPP

#include <concepts>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "background/compose.hpp"
#include "background/coroutine.hpp"
#include "background/detail/export.hpp"
#include "background/detail/task_function.hpp"
#include "background/error.hpp"
#include "background/future.hpp"
#include "background/map.hpp"
#include "background/pool.hpp"
#include "background/version.hpp"

/// The library's public names. Those in background::detail are its internals: not API, and
/// they may change in any release.
namespace background {

// task()
//
/// The seed's `@background.task`: wraps `f` in a callable object; each call submits
/// `f(args...)` to the default pool and returns its future at once. See pool::task() for how
/// `f` and the arguments are held.
///
/// **Example**:
///
/// ```
///   auto square = background::task([](int x) { return x * x; });
///   background::future<int> f = square(7);
/// ```
template <class F>
auto task(F&& f) {
  return detail::task_function<std::decay_t<F>>(nullptr, std::forward<F>(f));
}

// run()
//
/// Submits one call `f(args...)` to the default pool and returns its future at once; see
/// pool::run().
template <class F, class... Args>
auto run(F&& f, Args&&... args) {
  return detail::submit_call(nullptr, std::forward<F>(f), std::forward<Args>(args)...);
}

// post()
//
/// Submits one call `f(args...)` to the default pool, with no future: the cheapest way to hand
/// work to it. See pool::post().
///
/// **Example**:
///
/// ```
///   background::post([](std::string to) { send_email(to); }, "alice@example.com");
/// ```
template <class F, class... Args>
void post(F&& f, Args&&... args) {
  detail::post_call(nullptr, std::forward<F>(f), std::forward<Args>(args)...);
}

// wait()
//
/// Blocks until the default pool has no queued and no running task; see pool::wait().
BACKGROUND_API void wait();

// callback()
//
/// The seed's `@background.callback`: registers `f`, called with the outcome of every task that
/// task() or run() submits from now on, once it finishes; see pool::callback().
BACKGROUND_API void callback(std::function<void(const outcome&)> f);

/// The type of `n`: reads and sets the default pool's size.
class pool_size {
 public:
  /// Resizes the default pool at once; see pool::resize(). Throws std::invalid_argument for 0,
  /// a negative number, or above pool::max_size, and changes nothing then.
  // clang-format off
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  pool_size& operator=(I threads) {
    // clang-format on
    if constexpr (std::is_signed_v<I>) {
      if (threads < 0) throw std::invalid_argument("background::n: size must be positive");
    }
    default_pool().resize(static_cast<std::size_t>(threads));
    return *this;
  }
  /// The default pool's size: the last size set, or the number of CPUs this process may use.
  operator std::size_t() const { return default_pool().size(); }
};

// n
//
/// The default pool's thread count, used like the seed's module variable.
///
/// **Example**:
///
/// ```
///   background::n = 110;            // grows at once: queued tasks start now
///   std::size_t k = background::n;  // 110
/// ```
inline pool_size n;

}  // namespace background

#endif  // BACKGROUND_BACKGROUND_HPP
