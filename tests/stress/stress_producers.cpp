// stress_producers: many producers against one pool. Each round starts a pool (1..64 workers)
// and 2..64 producer threads, some of them tasks of a second pool, which submit bursts of up to
// 5,000 tiny tasks (enough to fill the ring and queue the rest on the overflow list) through
// post(), run() with the future dropped, and run() with the future kept, while a resizer
// grows and shrinks the pool (leaving workers move their deques' tasks to the queues). A round
// ends one of three ways: the producers finish and pool::wait() returns; the producers finish
// and the pool is destroyed; or shutdown(cancel_pending) comes while they are still submitting.
//
// Invariants checked:
// - every task body runs at most once; every accepted submission (one that did not throw)
//   runs, or was cancelled by shutdown(cancel_pending): never neither (the pool's callback
//   sees each accepted task exactly once, as run, failed or cancelled);
// - after wait(), or the pool's destructor, every accepted task has run: the count is exact;
// - a submission refused with shutdown_error ran nothing; only the cancel ending refuses;
// - each exception a task throws is reported exactly once: to its kept future, or to the
//   on_error() handler (a post, a dropped future);
// - a kept future holds its own task's value, or says cancelled when the task did not run;
// - no hang (the watchdog aborts after 120 s without progress).
//
// Usage: stress_producers [--seed N] [--seconds S=3] [--drivers K=16] (K: the most producers
// a round uses, up to 64).
#include <algorithm>
#include <atomic>
#include <background/background.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "stress_support.hpp"

namespace {

namespace bg = background;
using stress::check;
using stress::random_source;
using steady = std::chrono::steady_clock;

constexpr long max_tasks = 1 << 20;  // per round
constexpr int max_producers = 64;

struct task_error : std::runtime_error {
  explicit task_error(long id) : std::runtime_error("stress_producers"), id_(id) {}
  long id_;
};

enum class ending { wait, destroy, cancel };

class producers_test {
 public:
  producers_test() {
    bg::on_error([this](std::exception_ptr e) { reported(e); });
    ran_ = std::make_unique<std::atomic<int>[]>(max_tasks);
    hits_ = std::make_unique<std::atomic<int>[]>(max_tasks);
    throws_ = std::make_unique<std::atomic<bool>[]>(max_tasks);
  }
  producers_test(const producers_test&) = delete;
  producers_test& operator=(const producers_test&) = delete;
  ~producers_test() { bg::on_error({}); }

  // Rounds until `seconds` have passed; returns the number of tasks accepted.
  long run(std::uint64_t seed, int seconds, int most_producers) {
    const auto end = steady::now() + std::chrono::seconds(seconds);
    long total = 0;
    for (std::uint64_t round = 0; round == 0 || steady::now() < end; ++round) {
      total += run_round(stress::derive_seed(seed, round), most_producers);
    }
    return total;
  }

 private:
  long run_round(std::uint64_t seed, int most_producers) {
    random_source rng(seed);
    for (long i = 0; i < max_tasks; ++i) {
      ran_[at(i)].store(0, std::memory_order_relaxed);
      hits_[at(i)].store(0, std::memory_order_relaxed);
      throws_[at(i)].store(false, std::memory_order_relaxed);
    }
    next_id_.store(0);
    accepted_.store(0);
    refused_.store(0);
    seen_.store(0);
    seen_cancelled_.store(0);
    static constexpr std::size_t sizes[] = {1, 2, 3, 8, 64};
    const std::size_t threads = sizes[rng.below(std::size(sizes))];
    const int producers = 2 + rng.below(std::min(most_producers, max_producers) - 1);
    const auto end_kind = static_cast<ending>(rng.below(3));
    stress::enter_phase("producing");

    auto p = std::make_unique<bg::pool>(threads);
    // The callback sees every accepted task once, whatever its outcome. Runs on the pool's
    // threads (or the thread that cancels): relaxed counts, read after wait() or the joins.
    p->callback([this](const bg::outcome& o) {
      seen_.fetch_add(1, std::memory_order_relaxed);
      if (o.cancelled()) seen_cancelled_.fetch_add(1, std::memory_order_relaxed);
    });
    bg::pool outside(2);  // some producers are its tasks: submits from another pool's workers
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads_out;
    std::vector<bg::future<void>> as_tasks;
    std::mutex kept_mutex;
    std::vector<std::pair<long, bg::future<long>>> kept;
    for (int k = 0; k < producers; ++k) {
      auto body = [this, &p, &stop, &kept_mutex, &kept, s = stress::derive_seed(seed, 100 + static_cast<unsigned>(k))] {
        produce(*p, s, stop, kept_mutex, kept);
      };
      if (k % 4 == 3) {
        as_tasks.push_back(outside.run(body));
      } else {
        threads_out.emplace_back(body);
      }
    }
    std::thread resizer([&p, &stop, s = stress::derive_seed(seed, 99)] {
      random_source r(s);
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          p->resize(1 + r.below(std::size_t{64}));
        } catch (const bg::shutdown_error&) {
          return;  // the cancel ending
        }
        stress::progress();
        std::this_thread::sleep_for(std::chrono::microseconds(200 + r.below(2000)));
      }
    });

    if (end_kind == ending::cancel) {
      // While they are still submitting (or soon after): what has not started is cancelled.
      std::this_thread::sleep_for(std::chrono::microseconds(rng.below(20000)));
      stress::enter_phase("shutdown(cancel_pending)");
      p->shutdown(bg::cancel_pending);
    }
    for (std::thread& t : threads_out) t.join();
    for (bg::future<void>& f : as_tasks) f.get();
    stop.store(true, std::memory_order_relaxed);
    resizer.join();
    const long accepted = accepted_.load();
    if (end_kind == ending::wait) {
      stress::enter_phase("wait()");
      p->wait();
      check_all_ran("after wait()", accepted);
    }
    stress::enter_phase("destroying the pool");
    p.reset();
    if (end_kind != ending::cancel) check_all_ran("after the destructor", accepted);
    check(refused_.load() == 0 || end_kind == ending::cancel, "only a shut-down pool refuses",
          "%ld refused, ending %d", refused_.load(), static_cast<int>(end_kind));

    stress::enter_phase("checking");
    for (auto& [id, f] : kept) {
      const bool did_run = ran_[at(id)].load() != 0;
      try {
        const long value = f.get();
        check(did_run && value == id, "a kept future holds its own task's value", "task %ld",
              id);
      } catch (const task_error& e) {
        check(did_run && e.id_ == id, "a kept future holds its own task's exception",
              "task %ld", id);
        hits_[at(id)].fetch_add(1);
      } catch (const bg::cancelled&) {
        check(!did_run, "a kept future says cancelled only if its task did not run", "task %ld",
              id);
      }
    }
    kept.clear();
    long ran = 0;
    const long ids = std::min(next_id_.load(), max_tasks);
    for (long i = 0; i < ids; ++i) {
      const int r = ran_[at(i)].load();
      check(r <= 1, "a task body runs at most once", "task %ld ran %d times", i, r);
      ran += r;
      if (r == 1 && throws_[at(i)].load()) {
        check(hits_[at(i)].load() == 1, "each exception is reported exactly once",
              "task %ld: %d times", i, hits_[at(i)].load());
      }
    }
    // Cancelled and run are the two ways out, for every accepted task, and the callback saw
    // each of them once.
    check(seen_.load() == accepted, "the callback sees each accepted task once",
          "accepted %ld, seen %ld", accepted, seen_.load());
    check(ran + seen_cancelled_.load() == accepted, "each accepted task ran or was cancelled",
          "accepted %ld, ran %ld, cancelled %ld", accepted, ran, seen_cancelled_.load());
    return accepted;
  }

  // One producer: bursts of submissions until its share is spent or the pool refuses.
  void produce(bg::pool& p, std::uint64_t seed, const std::atomic<bool>& stop,
               std::mutex& kept_mutex, std::vector<std::pair<long, bg::future<long>>>& kept) {
    random_source rng(seed);
    const int bursts = 1 + rng.below(8);
    for (int b = 0; b < bursts && !stop.load(std::memory_order_relaxed); ++b) {
      const int burst = 1 + rng.below(5000);
      for (int i = 0; i < burst; ++i) {
        const long id = next_id_.fetch_add(1, std::memory_order_relaxed);
        if (id >= max_tasks) return;
        const bool throws = rng.one_in(64);
        throws_[at(id)].store(throws, std::memory_order_relaxed);
        auto body = [this, id, throws] {
          ran_[at(id)].fetch_add(1, std::memory_order_relaxed);
          if (throws) throw task_error(id);
          return id;
        };
        const int how = rng.below(8);
        try {
          if (how < 6) {
            p.post(body);
          } else if (how == 6) {
            (void)p.run(body);
          } else {
            auto f = p.run(body);
            std::lock_guard<std::mutex> lock(kept_mutex);
            kept.emplace_back(id, std::move(f));
          }
        } catch (const bg::shutdown_error&) {
          refused_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        accepted_.fetch_add(1, std::memory_order_relaxed);
      }
      stress::progress();
      if (rng.coin()) std::this_thread::yield();
    }
  }

  void check_all_ran(const char* when, long accepted) {
    long ran = 0;
    const long ids = std::min(next_id_.load(), max_tasks);
    for (long i = 0; i < ids; ++i) ran += ran_[at(i)].load(std::memory_order_relaxed);
    check(ran == accepted, "every accepted task has run", "%s: accepted %ld, ran %ld", when,
          accepted, ran);
  }

  void reported(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const task_error& error) {
      if (error.id_ >= 0 && error.id_ < max_tasks) hits_[at(error.id_)].fetch_add(1);
    } catch (...) {
      check(false, "only task errors are reported", "something else reached on_error()");
    }
  }

  static std::size_t at(long id) { return static_cast<std::size_t>(id); }

  std::unique_ptr<std::atomic<int>[]> ran_, hits_;
  std::unique_ptr<std::atomic<bool>[]> throws_;
  std::atomic<long> next_id_{0}, accepted_{0}, refused_{0}, seen_{0}, seen_cancelled_{0};
};

}  // namespace

int main(int argc, char** argv) {
  const stress::options o = stress::parse_options(argc, argv, 16);
  stress::watchdog dog;
  auto test = std::make_unique<producers_test>();
  const long tasks = test->run(o.seed_, o.seconds_, o.drivers_);
  std::printf("stress_producers: %ld tasks accepted\n", tasks);
  return stress::finish("stress_producers");
}
