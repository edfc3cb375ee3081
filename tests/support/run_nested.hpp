// run_nested(): runs a test's body as a task of a new pool and bounds the wait for it, for the
// tests that wait inside pools (at n = 1 too) and must fail, not hang, on a deadlock.
#ifndef BACKGROUND_TESTS_SUPPORT_RUN_NESTED_HPP
#define BACKGROUND_TESTS_SUPPORT_RUN_NESTED_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "background/background.hpp"

namespace background::testing {

// Runs `body(p)` as a task of a new pool `p` of `threads` workers and waits up to 30 s for it
// (a hang detector, not a timing assertion): the result is empty then, and the stuck pool is
// leaked (its worker never comes back).
template <class F>
auto run_nested(std::size_t threads, F body)
    -> std::optional<std::invoke_result_t<F&, background::pool&>> {
  auto* p = new background::pool(threads);
  auto outer = p->run([p, body = std::move(body)]() mutable { return body(*p); });
  if (!outer.wait_for(std::chrono::seconds(30))) return std::nullopt;
  auto value = std::move(outer).get();
  delete p;
  return value;
}

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_RUN_NESTED_HPP
