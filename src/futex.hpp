// Sleeping on a 32-bit atomic until another thread changes it: Linux futexes, private to the
// process. Futures sleep on their task's state word; the pool's workers on an event count.
#ifndef BACKGROUND_SRC_FUTEX_HPP
#define BACKGROUND_SRC_FUTEX_HPP

#include <atomic>
#include <chrono>
#include <cstdint>

namespace background::detail {

// Sleeps while `*word == expected`, until woken, or until `deadline` if not null. May return
// spuriously: callers re-check `*word` in a loop.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const std::chrono::steady_clock::time_point* deadline) noexcept;

// Wakes every thread sleeping in futex_wait() on `word`.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;
// Wakes one thread sleeping in futex_wait() on `word`, if there is one.
void futex_wake_one(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_FUTEX_HPP
