// counted: a value that counts its live instances and its destructions, for the tests that prove
// the library destroys what it holds (what tasks capture and return, map()'s inputs, the
// composed futures' values, coroutine frames) exactly once.
#ifndef BACKGROUND_TESTS_SUPPORT_COUNTED_HPP
#define BACKGROUND_TESTS_SUPPORT_COUNTED_HPP

#include <atomic>

namespace background::testing {

// Each construction (copies and moves too) adds one to `live`; each destruction takes one off
// and adds one to `destroyed`. Assignment makes no instance. A test resets the counters it reads.
// Not default-constructible, on purpose: map() keeps such results in optionals, the path its
// lifetime test covers (map_test derives a default-constructible one for the other path).
struct counted {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> destroyed{0};
  int value = 0;
  explicit counted(int v) noexcept : value(v) { ++live; }
  counted(const counted& o) noexcept : value(o.value) { ++live; }
  counted(counted&& o) noexcept : value(o.value) { ++live; }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) noexcept = default;
  ~counted() {
    --live;
    ++destroyed;
  }
};

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_COUNTED_HPP
