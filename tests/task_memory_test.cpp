// task_memory_test: the per-thread caches of task-state blocks (src/task_memory.cpp). Blocks
// freed on one thread come back to another through the depot, including those the freeing
// thread still held when it exited; blocks of every size class, and above it, keep their
// contents apart.
#include <gtest/gtest.h>

#if defined(__GLIBC__)
#include <malloc.h>  // mallinfo2
#endif

#include <cstddef>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include "background/detail/task_state.hpp"
#include "support/sanitizers.hpp"

namespace {

using background::detail::task_base;

constexpr bool cache_built = !background::testing::address_sanitizer;  // ASan keeps no block

// The pattern the cache is for: one thread allocates, another frees, the first allocates again
// and gets the freed blocks back, from the depot.
TEST(TaskMemoryTest, BlocksFreedOnAWorkerComeBackToTheSubmitter) {
  if (!cache_built) GTEST_SKIP() << "no cache under AddressSanitizer";
  constexpr std::size_t n = 512;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < n; ++i) blocks.push_back(task_base::operator new(100));
  const std::set<void*> freed(blocks.begin(), blocks.end());
  std::thread worker([&blocks] {
    for (void* p : blocks) task_base::operator delete(p, 100);
  });
  worker.join();  // its exit also hands what it still holds to the depot
  std::size_t reused = 0;
  std::vector<void*> again;
  for (std::size_t i = 0; i < n; ++i) {
    again.push_back(task_base::operator new(100));
    reused += freed.count(again.back());
  }
  EXPECT_EQ(reused, n) << "every block freed by the exited thread is in the depot";
  for (void* p : again) task_base::operator delete(p, 100);
}

TEST(TaskMemoryTest, EverySizeRoundTrips) {
  for (std::size_t size : {1u, 63u, 64u, 65u, 200u, 256u, 257u, 4096u}) {
    std::vector<unsigned char*> blocks;
    for (std::size_t i = 0; i < 200; ++i) {
      auto* p = static_cast<unsigned char*>(task_base::operator new(size));
      for (std::size_t b = 0; b < size; ++b) p[b] = static_cast<unsigned char>(i);
      blocks.push_back(p);
    }
    for (std::size_t i = 0; i < 200; ++i) {
      for (std::size_t b = 0; b < size; ++b) ASSERT_EQ(blocks[i][b], static_cast<unsigned char>(i));
    }
    for (unsigned char* p : blocks) task_base::operator delete(p, size);
  }
}

#if defined(__GLIBC__)
// The depot keeps at most 2,048 blocks of a size class (64 batches of 32): what a thread frees
// beyond that, and beyond its own cache, goes back to malloc, so that the blocks of a burst of
// tasks do not stay cached for ever. mallinfo2() counts the bytes malloc has handed out.
TEST(TaskMemoryTest, BlocksBeyondTheDepotsBoundGoBackToMalloc) {
  if (!cache_built) GTEST_SKIP() << "no cache under AddressSanitizer";
  constexpr std::size_t size = 40;  // a class (25 to 40 bytes) that no other test here uses
  constexpr std::size_t n = 8192;
  constexpr std::size_t kept = 2048 + 64 + 32;  // the depot, a thread's cache, a batch in flight
  {
    static void* volatile probe = nullptr;  // volatile: the malloc is not elided
    const auto start = static_cast<long long>(mallinfo2().uordblks);
    probe = std::malloc(65536);
    const auto grown = static_cast<long long>(mallinfo2().uordblks) - start;
    std::free(probe);
    if (grown < 65536) GTEST_SKIP() << "mallinfo2() does not count this malloc (a sanitizer's?)";
  }
  std::vector<void*> blocks;
  blocks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) blocks.push_back(task_base::operator new(size));
  const auto before = static_cast<long long>(mallinfo2().uordblks);
  std::thread worker([&blocks] {
    for (void* p : blocks) task_base::operator delete(p, size);
  });
  worker.join();  // its exit hands what it still holds to the depot, or to malloc
  const auto after = static_cast<long long>(mallinfo2().uordblks);
  EXPECT_GE(before - after, static_cast<long long>((n - kept) * size))
      << "the blocks freed beyond the depot's bound are still cached";
}
#endif

}  // namespace
