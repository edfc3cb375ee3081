// Memory for task states. The usual pattern, one thread submitting and the workers finishing,
// allocates on one thread and frees on another, so malloc's per-thread cache is always empty
// where it is needed (on this project's 2-core benchmark machine the submitting thread spent
// 38% of its time in glibc's _int_malloc). Here each thread keeps the blocks it frees, up to a
// bound, in a cache per size class; beyond the bound, a batch moves to a depot shared by all
// threads, where a thread whose cache is empty takes a whole batch at once: one lock per batch
// instead of malloc's slow path per task.
//
// Blocks come in sixteen classes of 24, 40, 56, ... 264 bytes: sizes that malloc serves with no
// waste (its chunks are 8 bytes of header and a multiple of 16), so a post() of a small
// callable (post_node.hpp: 24 bytes) takes a 32-byte chunk and a task state from run() (112)
// takes 128. Larger states use operator new directly. Under AddressSanitizer, and when a test turns
// it off (detail::use_task_cache), no block is kept, so every state is a real allocation and a real
// free.
#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>
#include <utility>

#if defined(__GLIBC__)  // defined by the headers above
#include <malloc.h>     // malloc_trim
#endif

#include "background/detail/post_node.hpp"
#include "background/detail/task_state.hpp"
#include "background/detail/testing.hpp"
#include "fork.hpp"
#include "task_memory.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BACKGROUND_TASK_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BACKGROUND_TASK_CACHE 0
#endif
#endif
#ifndef BACKGROUND_TASK_CACHE
#define BACKGROUND_TASK_CACHE 1
#endif

namespace background::detail {
namespace {

constexpr std::size_t classes = 16;
constexpr std::size_t class_size(std::size_t c) noexcept { return 24 + 16 * c; }
constexpr std::size_t largest = class_size(classes - 1);
constexpr int batch_size = 32;  // blocks moved to or from the depot at once
constexpr int max_cached = 64;  // per class and thread; a free beyond it moves a batch out
// Per class: 2,048 blocks. A batch beyond it goes back to malloc, so that the blocks of a burst
// of tasks do not stay cached forever.
constexpr int max_depot_batches = 64;

// relaxed: a test switches it between scenarios, on the thread that then runs them; a block
// is valid in or out of the cache whichever way it was allocated.
std::atomic<bool> cache_on{true};

struct block {
  block* next;        // in a thread's cache, or within a batch
  block* next_batch;  // the first block of each batch in the depot, to the next batch
  int length;         // the first block of each batch in the depot: the batch's length
};

// Batches shared by all threads. Leaked on purpose: threads may free states during static
// destruction.
struct depot_t {
  std::mutex mutex;
  block* batches[classes] = {};
  int count[classes] = {};  // batches held, up to max_depot_batches
};
depot_t& depot() {
  static auto* d = new depot_t;
  return *d;
}

// A thread's cache. Trivially destructible, so that it can still be read (as `dead`) by frees
// that happen after its flush at thread exit.
struct cache_t {
  block* head[classes];
  int count[classes];  // exactly the blocks in head[c]'s list
  bool dead;           // the thread is exiting and has flushed: no more caching
  bool flusher;        // the flush at thread exit is registered
};
constinit thread_local cache_t cache{};

// Bytes of blocks given back to malloc since the last trim_task_memory() that trimmed.
// relaxed: a heuristic, read and reset by whichever worker goes idle first.
std::atomic<std::size_t> freed_bytes{0};
constexpr std::size_t trim_threshold = std::size_t{8} << 20;

// Adds the list of `length` blocks starting at `first` (ended by a null `next`) to the depot
// as one batch, or, if the depot holds enough of this class, frees it.
void move_to_depot(std::size_t c, block* first, int length) noexcept {
  depot_t& d = depot();
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.count[c] < max_depot_batches) {
      first->next_batch = d.batches[c];
      first->length = length;
      d.batches[c] = first;
      ++d.count[c];
      return;
    }
  }
  const std::size_t bytes = static_cast<std::size_t>(length) * class_size(c);
  while (first != nullptr) ::operator delete(std::exchange(first, first->next));
  freed_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace

void lock_task_memory_for_fork() noexcept { depot().mutex.lock(); }
void unlock_task_memory_after_fork() noexcept { depot().mutex.unlock(); }

namespace {

// Returns everything cached to the depot at thread exit.
struct flush_at_exit {
  ~flush_at_exit() {
    for (std::size_t c = 0; c < classes; ++c) {
      if (cache.head[c] != nullptr) move_to_depot(c, cache.head[c], cache.count[c]);
      cache.head[c] = nullptr;
      cache.count[c] = 0;
    }
    cache.dead = true;
  }
};

// The smallest class that holds `size` (1..largest) bytes.
std::size_t class_of(std::size_t size) noexcept { return size <= 24 ? 0 : (size - 24 + 15) / 16; }
static_assert(sizeof(block) <= class_size(0));

// Makes sure this thread's cache goes back to the depot when it exits: called before the cache
// first holds a block, whether freed here or taken from the depot (a thread that only
// allocates would otherwise take its batch with it).
void register_flush() {
  if (cache.flusher) return;
  cache.flusher = true;
  static thread_local flush_at_exit flush;  // constructed once per thread: registers it
  (void)flush;
}

}  // namespace

void trim_task_memory() noexcept {
#if defined(__GLIBC__)
  if (freed_bytes.load(std::memory_order_relaxed) < trim_threshold) return;
  if (freed_bytes.exchange(0, std::memory_order_relaxed) < trim_threshold) return;
  // glibc keeps freed memory in its arenas (a million 48-byte chunks stay resident after the
  // tasks that used them are done); this hands the free pages back to the system.
  malloc_trim(0);
#endif
}

void use_task_cache(bool on) noexcept { cache_on.store(on, std::memory_order_relaxed); }

// Both kinds of task (task_base, post_node) take their memory from here.
static void* allocate(std::size_t size) {
  if (size == 0 || size > largest) return ::operator new(size);
  const std::size_t c = class_of(size);
  if (BACKGROUND_TASK_CACHE && !cache.dead && cache_on.load(std::memory_order_relaxed)) {
    if (cache.head[c] == nullptr) {
      register_flush();  // blocks taken from the depot go back when this thread exits
      depot_t& d = depot();
      std::lock_guard<std::mutex> lock(d.mutex);
      if (block* b = d.batches[c]) {
        d.batches[c] = b->next_batch;
        --d.count[c];
        cache.head[c] = b;
        cache.count[c] = b->length;
      }
    }
    if (block* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
  }
  return ::operator new(class_size(c));
}

static void deallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (size == 0 || size > largest) {
    ::operator delete(p);
    return;
  }
  if (!BACKGROUND_TASK_CACHE || cache.dead || !cache_on.load(std::memory_order_relaxed)) {
    ::operator delete(p);
    return;
  }
  register_flush();
  const std::size_t c = class_of(size);
  auto* b = static_cast<block*>(p);
  b->next = cache.head[c];
  cache.head[c] = b;
  if (++cache.count[c] <= max_cached) return;
  // Too many: the newest batch_size blocks move to the depot as one batch.
  block* last = b;
  for (int i = 1; i < batch_size; ++i) last = last->next;
  cache.head[c] = last->next;
  last->next = nullptr;
  cache.count[c] -= batch_size;
  move_to_depot(c, b, batch_size);
}

void* task_base::operator new(std::size_t size) { return allocate(size); }
void task_base::operator delete(void* p, std::size_t size) noexcept { deallocate(p, size); }
void* post_node::operator new(std::size_t size) { return allocate(size); }
void post_node::operator delete(void* p, std::size_t size) noexcept { deallocate(p, size); }

}  // namespace background::detail
