// Bounded waiting before sleeping: a short spin, then yields. Sleeping on a futex or a
// condition variable costs a wake-up syscall on the other side and several microseconds here;
// most waits in a busy pool are shorter than that.
#ifndef BACKGROUND_SRC_BACKOFF_HPP
#define BACKGROUND_SRC_BACKOFF_HPP

#include <thread>

namespace background::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Calls `ready()` until it returns true, `pauses` times with a pause in between (10 to 40 ns
// each on current x86 cores), then `yields` times with a yield in between; returns its last
// answer. The yields matter when threads outnumber cores: the waiter then hands its core to the
// thread it waits for instead of spinning against it.
template <class Ready>
bool spin_then_yield(Ready ready, int pauses, int yields) {
  for (int i = 0; i < pauses; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  for (int i = 0; i < yields; ++i) {
    if (ready()) return true;
    std::this_thread::yield();
  }
  return ready();
}

}  // namespace background::detail

#endif  // BACKGROUND_SRC_BACKOFF_HPP
