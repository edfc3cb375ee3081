// task_memory_test: the per-thread caches of task-state blocks (src/task_memory.cpp). Blocks
// freed on one thread come back to another through the depot, including those the freeing
// thread still held when it exited; blocks of every size class, and above it, keep their
// contents apart.
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <thread>
#include <vector>

#include "background/detail/task_state.hpp"

namespace {

using background::detail::task_base;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool cache_built = false;  // AddressSanitizer builds keep no block
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool cache_built = false;
#else
constexpr bool cache_built = true;
#endif
#else
constexpr bool cache_built = true;
#endif

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

}  // namespace
