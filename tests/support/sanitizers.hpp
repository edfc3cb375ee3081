// sanitizers: whether this test program is built with AddressSanitizer or ThreadSanitizer, for
// the tests that skip or change a part that a sanitizer's runtime cannot follow (a child of a
// multi-threaded fork() that starts threads) or that it changes (no cached blocks under ASan).
// GCC says so with __SANITIZE_*__ macros, clang with __has_feature(); both are read here. (The
// library's own block cache reads the same for ASan in src/task_memory.cpp, which tests mirror.)
#ifndef BACKGROUND_TESTS_SUPPORT_SANITIZERS_HPP
#define BACKGROUND_TESTS_SUPPORT_SANITIZERS_HPP

#if defined(__has_feature)
#define BACKGROUND_TESTS_HAS_FEATURE(x) __has_feature(x)
#else
#define BACKGROUND_TESTS_HAS_FEATURE(x) 0
#endif

namespace background::testing {

#if defined(__SANITIZE_ADDRESS__) || BACKGROUND_TESTS_HAS_FEATURE(address_sanitizer)
inline constexpr bool address_sanitizer = true;
#else
inline constexpr bool address_sanitizer = false;
#endif

#if defined(__SANITIZE_THREAD__) || BACKGROUND_TESTS_HAS_FEATURE(thread_sanitizer)
inline constexpr bool thread_sanitizer = true;
#else
inline constexpr bool thread_sanitizer = false;
#endif

}  // namespace background::testing

#undef BACKGROUND_TESTS_HAS_FEATURE

#endif  // BACKGROUND_TESTS_SUPPORT_SANITIZERS_HPP
