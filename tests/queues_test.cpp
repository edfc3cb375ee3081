// queues_test: the engine's lock-free queues on their own (src/injection_queue.hpp,
// src/work_deque.hpp, src/overflow_list.hpp), under more contention than a pool gives them:
// every item comes out exactly once, the owner's end of the deque is LIFO and the ring and the
// overflow list are FIFO per producer. Run
// under ThreadSanitizer too (the tsan preset), which checks their memory orderings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "injection_queue.hpp"
#include "overflow_list.hpp"
#include "work_deque.hpp"

namespace {

using background::detail::injection_queue;
using background::detail::overflow_list;
using background::detail::task_base;
using background::detail::work_deque;

// The queues only store and return pointers; these stand for tasks and are never dereferenced.
struct items {
  explicit items(std::size_t n) : storage(n), seen(n) {}
  task_base* at(std::size_t i) { return reinterpret_cast<task_base*>(&storage[i]); }
  std::size_t index_of(task_base* t) const {
    return static_cast<std::size_t>(reinterpret_cast<const char*>(t) -
                                    reinterpret_cast<const char*>(storage.data()));
  }
  std::vector<char> storage;
  std::vector<std::atomic<int>> seen;
};

TEST(WorkDequeTest, OwnerEndIsLastInFirstOutAndThievesTakeTheOldest) {
  items it(3);
  work_deque d;
  EXPECT_EQ(d.take(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(d.push(it.at(i)));
  EXPECT_EQ(d.peek_newest(), it.at(2));
  EXPECT_EQ(d.steal(), it.at(0));
  EXPECT_EQ(d.take(), it.at(2));
  EXPECT_EQ(d.take(), it.at(1));
  EXPECT_EQ(d.take(), nullptr);
  EXPECT_FALSE(d.maybe_nonempty());
}

TEST(WorkDequeTest, FullDequeRefusesAPush) {
  items it(work_deque::capacity + 1);
  work_deque d;
  for (std::int64_t i = 0; i < work_deque::capacity; ++i) {
    ASSERT_TRUE(d.push(it.at(static_cast<std::size_t>(i))));
  }
  EXPECT_FALSE(d.push(it.at(work_deque::capacity)));
  EXPECT_EQ(d.steal(), it.at(0));  // room for one more now
  EXPECT_TRUE(d.push(it.at(work_deque::capacity)));
}

// The owner pushes in bursts and takes some back while three thieves steal: every item is
// taken exactly once, including the last-item races between take() and steal().
TEST(WorkDequeTest, OwnerAndThievesTakeEveryItemExactlyOnce) {
  constexpr std::size_t n = 300000;
  items it(n);
  work_deque d;
  std::atomic<bool> done{false};
  const auto record = [&it](task_base* t) { it.seen[it.index_of(t)].fetch_add(1); };
  std::vector<std::thread> thieves;
  for (int k = 0; k < 3; ++k) {
    thieves.emplace_back([&] {
      while (!done.load()) {
        if (task_base* t = d.steal()) record(t);
      }
      while (task_base* t = d.steal()) record(t);
    });
  }
  std::size_t next = 0;
  while (next < n) {
    const std::size_t burst = 1 + next % 7;  // 1..7: often the deque's last item
    for (std::size_t i = 0; i < burst && next < n; ++i) {
      if (d.push(it.at(next))) {
        ++next;
      } else if (task_base* t = d.take()) {
        record(t);
      }
    }
    if (next % 3 == 0) {
      if (task_base* t = d.take()) record(t);
    }
  }
  while (task_base* t = d.take()) record(t);
  done = true;
  for (auto& t : thieves) t.join();
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(it.seen[i].load(), 1) << "item " << i;
}

TEST(InjectionQueueTest, FirstInFirstOutAndBounded) {
  items it(injection_queue::capacity + 1);
  auto q = std::make_unique<injection_queue>();
  EXPECT_EQ(q->try_pop(), nullptr);
  for (std::size_t i = 0; i < injection_queue::capacity; ++i) ASSERT_TRUE(q->try_push(it.at(i)));
  EXPECT_FALSE(q->try_push(it.at(injection_queue::capacity)));
  for (std::size_t i = 0; i < injection_queue::capacity; ++i) ASSERT_EQ(q->try_pop(), it.at(i));
  EXPECT_EQ(q->try_pop(), nullptr);
  EXPECT_FALSE(q->maybe_nonempty());
}

// Four producers and four consumers through a ring that is often full and often empty: every
// item comes out exactly once, and one consumer sees each producer's items in order.
TEST(InjectionQueueTest, ManyProducersAndConsumersLoseAndDuplicateNothing) {
  constexpr std::size_t producers = 4;
  constexpr std::size_t per_producer = 100000;
  items it(producers * per_producer);
  auto q = std::make_unique<injection_queue>();
  std::atomic<std::size_t> consumed{0};
  std::atomic<bool> out_of_order{false};
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::size_t i = 0; i < per_producer; ++i) {
        while (!q->try_push(it.at(p * per_producer + i))) std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < 4; ++c) {
    threads.emplace_back([&] {
      std::vector<std::size_t> last(producers, SIZE_MAX);
      while (consumed.load() < producers * per_producer) {
        task_base* t = q->try_pop();
        if (t == nullptr) continue;
        const std::size_t index = it.index_of(t);
        it.seen[index].fetch_add(1);
        const std::size_t p = index / per_producer;
        const std::size_t i = index % per_producer;
        if (last[p] != SIZE_MAX && i <= last[p]) out_of_order = true;
        last[p] = i;
        consumed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(out_of_order.load());
  for (std::size_t i = 0; i < it.seen.size(); ++i) ASSERT_EQ(it.seen[i].load(), 1) << "item " << i;
}

// The overflow list links its items through task_base::next_: these are real (empty) tasks.
struct linked_task final : task_base {
  linked_task() noexcept : task_base(0) {}
  std::uint32_t invoke() noexcept override { return 0; }
  void drop_callable() noexcept override {}
};

struct linked_items {
  explicit linked_items(std::size_t n) : storage(new linked_task[n]), seen(n) {}
  task_base* at(std::size_t i) { return &storage[i]; }
  std::size_t index_of(task_base* t) const {
    return static_cast<std::size_t>(static_cast<linked_task*>(t) - storage.get());
  }
  std::unique_ptr<linked_task[]> storage;
  std::vector<std::atomic<int>> seen;
};

TEST(OverflowListTest, FirstInFirstOutAndTheLastItemStaysForTryPop) {
  linked_items it(3);
  overflow_list list;
  EXPECT_FALSE(list.maybe_nonempty());
  EXPECT_EQ(list.try_pop(), nullptr);
  for (std::size_t i = 0; i < 3; ++i) list.push(it.at(i));
  std::vector<task_base*> moved;
  const auto take = [&moved](task_base* t) {
    moved.push_back(t);
    return true;
  };
  EXPECT_TRUE(list.pop_front_if(take));
  EXPECT_FALSE(list.pop_front_if([](task_base*) { return false; }));  // refused: stays
  EXPECT_TRUE(list.pop_front_if(take));
  EXPECT_FALSE(list.pop_front_if(take));  // the last: only try_pop() takes it
  ASSERT_EQ(moved.size(), 2U);
  EXPECT_EQ(moved[0], it.at(0));
  EXPECT_EQ(moved[1], it.at(1));
  EXPECT_TRUE(list.maybe_nonempty());
  EXPECT_EQ(list.try_pop(), it.at(2));
  EXPECT_FALSE(list.maybe_nonempty());
  EXPECT_EQ(list.try_pop(), nullptr);
  list.push(it.at(0));  // usable again once empty
  EXPECT_EQ(list.try_pop(), it.at(0));
}

// Four producers push while two consumers take turns (one at a time, under a mutex, as a
// pool's workers do) and keep the list short, so that a consumer often takes the last item
// while a producer is linking a new one behind it: every item comes out exactly once, each
// producer's in order, and none is stranded behind a broken link.
TEST(OverflowListTest, ManyProducersAndOneConsumerAtATimeLoseAndDuplicateNothing) {
  constexpr std::size_t producers = 4;
  constexpr std::size_t per_producer = 100000;
  constexpr std::size_t total = producers * per_producer;
  linked_items it(total);
  overflow_list list;
  std::mutex consumer;
  std::atomic<std::size_t> consumed{0};
  std::atomic<bool> out_of_order{false};
  std::vector<std::size_t> last(producers, SIZE_MAX);  // under `consumer`
  const auto seen = [&](task_base* t) {
    const std::size_t index = it.index_of(t);
    it.seen[index].fetch_add(1);
    const std::size_t p = index / per_producer;
    if (last[p] != SIZE_MAX && index % per_producer <= last[p]) out_of_order = true;
    last[p] = index % per_producer;
    consumed.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::size_t i = 0; i < per_producer; ++i) {
        list.push(it.at(p * per_producer + i));
        if (i % 64 == 0) std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      // A consumer that finds nothing while the list says it is not empty is waiting for a
      // link; one that sees no progress at all for 30 s has lost one (a hang, not a timing).
      auto progress_at = std::chrono::steady_clock::now();
      std::size_t progress = 0;
      while (consumed.load() < total) {
        std::lock_guard<std::mutex> lock(consumer);
        if (c == 1) {
          while (list.pop_front_if([&](task_base* t) {
            seen(t);
            return true;
          })) {
          }
        }
        if (task_base* t = list.try_pop()) seen(t);
        if (consumed.load() != progress) {
          progress = consumed.load();
          progress_at = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - progress_at > std::chrono::seconds(30)) {
          ADD_FAILURE() << "stranded: " << consumed.load() << " of " << total << " came out";
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(out_of_order.load());
  EXPECT_FALSE(list.maybe_nonempty());
  for (std::size_t i = 0; i < it.seen.size(); ++i) ASSERT_EQ(it.seen[i].load(), 1) << "item " << i;
}

}  // namespace
