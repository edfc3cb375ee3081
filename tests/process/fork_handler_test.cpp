// The library's child fork handler allocates and frees nothing: a child of a multi-threaded
// process may find the allocator's locks held by threads that no longer exist there (glibc's
// malloc takes them across fork(), AddressSanitizer's allocator and others do not), and a child
// that only calls exec() must not depend on them. This program replaces the global operator
// new and delete with counting ones, and registers its own child handler before the library
// registers its own (when the first pool is made): POSIX calls child handlers in the order they
// were registered, so the counts it takes are those just before the library's handler runs, and
// the child compares them with the counts when fork() returns. The child starts no thread and
// _exit()s, so this runs under every sanitizer.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <background/background.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/wait_until_refusing.hpp"
#include "wait_for_child.hpp"

namespace {

// Relaxed: the child reads them as the process's only thread, and the parent never does.
std::atomic<long> allocations{0};
std::atomic<long> deallocations{0};

void* counted_alloc(std::size_t size, std::size_t align) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  deallocations.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}

// The counts as the first child handler saw them.
long allocations_before_handlers = -1;
long deallocations_before_handlers = -1;

// Runs before main(), so before any pool (and so the library's handlers) exists.
const bool handler_registered = [] {
  return pthread_atfork(nullptr, nullptr, [] {
           allocations_before_handlers = allocations.load(std::memory_order_relaxed);
           deallocations_before_handlers = deallocations.load(std::memory_order_relaxed);
         }) == 0;
}();

}  // namespace

// The replaceable global allocation functions, counting. (The nothrow forms call these.)
void* operator new(std::size_t size) { return counted_alloc(size, 0); }
void* operator new[](std::size_t size) { return counted_alloc(size, 0); }
void* operator new(std::size_t size, std::align_val_t align) {
  return counted_alloc(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted_alloc(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }

namespace {

namespace bg = background;
using namespace std::chrono_literals;

// Forks; the child exits with 0 if the handlers allocated and freed nothing, 1 if they did, 2 if
// this program's handler did not run first. Returns the child's status, or -1 if it did not end
// within a minute (then it is killed).
int fork_and_count() {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -2;
  if (pid == 0) {
    const long news = allocations.load(std::memory_order_relaxed);
    const long deletes = deallocations.load(std::memory_order_relaxed);
    if (allocations_before_handlers < 0) _exit(2);
    _exit(news == allocations_before_handlers && deletes == deallocations_before_handlers ? 0 : 1);
  }
  return background::testing::wait_for_child(pid);
}

TEST(ForkHandlerTest, TheChildHandlerNeitherAllocatesNorFrees) {
  ASSERT_TRUE(handler_registered);
  // Pools in every state the handler meets: the default pool, idle after a task; a pool with a
  // name, a hook, a callback, busy workers and tasks queued behind it; and a pool that another
  // thread is shutting down (its drain waits for a task), which the child gets closed.
  EXPECT_EQ(bg::run([] { return 1; }).get(), 1);
  std::atomic<bool> open{false};
  std::atomic<int> entered{0};
  const auto hold = [&open, &entered] {
    entered.fetch_add(1);
    while (!open.load()) std::this_thread::sleep_for(1ms);
  };
  bg::pool_options options;  // a name and a hook: the child's engine gets copies
  options.name = "busy";
  options.on_thread_start = [](std::size_t) {};
  bg::pool busy(2, options);
  busy.callback([](const bg::outcome&) {});
  std::vector<bg::future<void>> fs;
  for (int i = 0; i < 2; ++i) fs.push_back(busy.run(hold));
  for (int i = 0; i < 100; ++i) fs.push_back(busy.run([] {}));
  bg::pool closing(1);
  closing.post(hold);
  while (entered.load() < 3) std::this_thread::sleep_for(1ms);
  std::thread shutter([&closing] { closing.shutdown(); });
  background::testing::wait_until_refusing(closing);  // shutdown() has started
  for (int round = 0; round < 3; ++round) EXPECT_EQ(fork_and_count(), 0) << "round " << round;
  open = true;
  shutter.join();
  for (auto& f : fs) f.get();
}

}  // namespace
