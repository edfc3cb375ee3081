/// @file
/// map() and for_each(): call a function on every element of a range, on a pool, in chunks.
///
/// The range is split into chunks of consecutive elements, one task each; the returned future is
/// ready once every chunk is done. As with every argument, `inputs` is decay-copied into the call
/// (a container is copied, or moved if passed as an rvalue): pass a view (std::span,
/// std::views::all(v), std::views::iota) to avoid the copy, and keep what it refers to alive
/// until the future is done.
///
/// **Example**:
///
/// ```
///   std::vector<int> xs = load();
///   background::future<std::vector<int>> ys =
///       background::map([](int x) { return x * x + 1; }, std::span(xs));
/// ```
#ifndef BACKGROUND_MAP_HPP
#define BACKGROUND_MAP_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "background/compose.hpp"
#include "background/detail/core.hpp"
#include "background/detail/task_function.hpp"
#include "background/error.hpp"
#include "background/future.hpp"
#include "background/pool.hpp"

namespace background {

namespace detail {

// The number of workers of `p` (the size last set).
BACKGROUND_API std::size_t pool_size(pool_impl* p);

// How map() holds its inputs: a decay-copy of a forward range, or the elements of any other
// range (a single-pass one, a C array) in a vector.
template <class R>
auto hold_inputs(R&& r) {
  using D = std::remove_cvref_t<R>;
  if constexpr (std::ranges::forward_range<D> && !std::is_array_v<D> &&
                std::is_constructible_v<D, R>) {
    return D(std::forward<R>(r));
  } else {
    std::vector<std::ranges::range_value_t<R>> v;
    if constexpr (std::ranges::sized_range<R>) v.reserve(std::ranges::size(r));
    for (auto&& x : r) v.push_back(std::forward<decltype(x)>(x));
    return v;
  }
}

// How map() stores results while the chunks run: in place when that is safe from several
// threads (not vector<bool>'s packed bits) and cheap, else as optionals moved out at the end.
// clang-format off
template <class R>
inline constexpr bool store_in_place =
    std::is_default_constructible_v<R> && std::is_move_assignable_v<R> && !std::is_same_v<R, bool>;
// clang-format on

template <class R>
using map_storage =
    std::conditional_t<store_in_place<R>, std::vector<R>, std::vector<std::optional<R>>>;

// Shared by the chunks of one map() or for_each() (R = void): the inputs, the function, the
// results and the first exception. Calls check `failed` before each element, so that calls
// not yet started are skipped after a failure.
template <class Fn, class In, class R>
struct map_block {
  using iterator = std::ranges::iterator_t<In>;

  map_block(Fn f, In in) : fn(std::move(f)), inputs(std::move(in)) {}
  map_block(const map_block&) = delete;
  map_block& operator=(const map_block&) = delete;
  // The first exception, if take() never ran (the result's future was cancelled, or a chunk
  // was, by shutdown(cancel_pending)), goes to the handler: nothing else will see it.
  ~map_block() {
    if (error && !taken) report_unobserved(error);
  }

  Fn fn;
  In inputs;
  std::conditional_t<std::is_void_v<R>, char, map_storage<R>> out{};
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // the first exception; read after every chunk is done
  bool taken = false;        // take() has run: `error`, if any, went to the result

  // Runs the calls of one chunk: elements [index, index + count), from `it`.
  void run(iterator it, std::size_t index, std::size_t count) noexcept {
    for (std::size_t k = 0; k < count; ++k, ++it) {
      // relaxed: skipping is a best effort; the exception itself travels through `error`.
      if (failed.load(std::memory_order_relaxed)) return;
      try {
        if constexpr (std::is_void_v<R>) {
          std::invoke(std::as_const(fn), *it);
        } else {
          out[index + k] = std::invoke(std::as_const(fn), *it);
        }
      } catch (...) {
        // acq_rel: the winner's write of `error` is published by its task's completion to
        // the continuation that reads it; the others report theirs.
        if (!failed.exchange(true, std::memory_order_acq_rel)) {
          error = std::current_exception();
        } else {
          report_unobserved(std::current_exception());
        }
        return;
      }
    }
  }

  // The results, once every chunk is done.
  auto take() {
    taken = true;
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<R>) {
      return;
    } else if constexpr (store_in_place<R>) {
      return std::move(out);
    } else {
      std::vector<R> values;
      values.reserve(out.size());
      for (std::optional<R>& v : out) values.push_back(std::move(*v));
      return values;
    }
  }
};

template <class F, class In>
using map_result_t = std::remove_cvref_t<
    std::invoke_result_t<const std::decay_t<F>&, std::ranges::range_reference_t<In>>>;

// map() and for_each() on `p`: `Void` for for_each().
template <bool Void, class F, class Inputs>
auto parallel_map(pool_impl* p, F&& f, Inputs&& inputs, std::size_t chunk) {
  using Fn = std::decay_t<F>;
  using In = decltype(hold_inputs(std::forward<Inputs>(inputs)));
  static_assert(std::is_invocable_v<const Fn&, std::ranges::range_reference_t<In>>,
                "background::map/for_each: f cannot be called with an element of the range. "
                "Calls may run at the same time, so f is called as const.");
  using R = std::conditional_t<Void, void, map_result_t<F, In>>;
  static_assert(Void || !std::is_void_v<R>,
                "background::map: f returns nothing; use background::for_each");
  using block_t = map_block<Fn, In, R>;

  if (p == nullptr) p = default_pool_impl();
  auto block =
      std::make_shared<block_t>(Fn(std::forward<F>(f)), hold_inputs(std::forward<Inputs>(inputs)));
  const auto first = std::ranges::begin(block->inputs);
  const auto n = static_cast<std::size_t>(std::ranges::distance(block->inputs));
  if constexpr (!std::is_void_v<R>) block->out.resize(n);
  if (chunk == 0) {
    // Four chunks a worker: enough to even out uneven calls, few enough that a tiny function
    // costs a few tasks in all, not one per element.
    const std::size_t chunks = 4 * pool_size(p);
    chunk = std::max<std::size_t>(1, (n + chunks - 1) / chunks);
  }
  std::vector<future<void>> parts;
  parts.reserve((n + chunk - 1) / chunk);
  auto it = first;
  try {
    for (std::size_t index = 0; index < n; index += chunk) {
      const std::size_t count = std::min(chunk, n - index);
      parts.push_back(submit_call(p, [block, it, index, count] { block->run(it, index, count); }));
      if (index + count < n) std::ranges::advance(it, static_cast<std::ptrdiff_t>(count));
    }
  } catch (...) {
    block->failed.store(true, std::memory_order_relaxed);  // what was submitted does nothing
    throw;
  }
  return when_all(parts).then([block] { return block->take(); });
}

}  // namespace detail

// map()
//
/// Calls `f(x)` for each element `x` of `inputs` on the default pool and returns a future of the
/// results, in input order (`future<std::vector<R>>`). `chunk` elements are called per task; the
/// default (0) makes four chunks per worker, so that a tiny `f` costs a few tasks in all. Calls
/// may run at the same time, so `f` is called as const. If calls throw, the future fails with the
/// first exception caught; calls not yet started are skipped, and the exceptions of calls that
/// were running meanwhile go to the on_error() handler. Never blocks; throws as run() does if the
/// chunks cannot be submitted (those already submitted then do nothing).
///
/// **Example**:
///
/// ```
///   auto squares = background::map([](int x) { return x * x; }, std::views::iota(0, 1000));
/// ```
template <class F, class R>
auto map(F&& f, R&& inputs, std::size_t chunk = 0) {
  return detail::parallel_map<false>(nullptr, std::forward<F>(f), std::forward<R>(inputs), chunk);
}

// for_each()
//
/// As map(), for a function whose results are not needed: the future is ready once `f` has been
/// called on every element of `inputs`, or fails as map()'s does.
template <class R, class F>
future<void> for_each(R&& inputs, F&& f, std::size_t chunk = 0) {
  return detail::parallel_map<true>(nullptr, std::forward<F>(f), std::forward<R>(inputs), chunk);
}

template <class F, class R>
auto pool::map(F&& f, R&& inputs, std::size_t chunk) {
  return detail::parallel_map<false>(impl_, std::forward<F>(f), std::forward<R>(inputs), chunk);
}

template <class R, class F>
future<void> pool::for_each(R&& inputs, F&& f, std::size_t chunk) {
  return detail::parallel_map<true>(impl_, std::forward<F>(f), std::forward<R>(inputs), chunk);
}

}  // namespace background

#endif  // BACKGROUND_MAP_HPP
