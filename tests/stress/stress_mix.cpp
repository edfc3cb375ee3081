// stress_mix: randomized stress of everything at once. Driver threads work against 4
// replaceable pools and the default pool: run() roots that submit and get nested tasks,
// then()-chains (on lvalues and rvalues, on finished and unfinished futures, with fan-out),
// cancels from drivers and from tasks, resizes (1..64) from outside and inside tasks,
// pool::wait() and background::wait(), dropped futures, std and non-std exceptions, callbacks
// that throw, and pools destroyed from outside, from one of their own tasks (with or without
// the submitter still holding the pool while run() returns), and by a cancel() whose dropped
// callable held the pool's last reference.
//
// Invariants checked:
// - every task body runs at most once; every root (a run() task) runs exactly once or its
//   cancel() succeeded; a then() continuation never both runs and is cancelled;
// - a leaf's value is its own; a cancelled leaf did not run; a leaf that fails with another
//   node's exception is a continuation that did not run;
// - each task exception is seen exactly once (by get()/exception() on a leaf or by the
//   on_error() handler); at most once on a chain where a cancel() succeeded, at least once on a
//   chain with fan-out; each exception a callback throws is reported exactly once;
// - callbacks run once per run() submission; pool::wait() from its own task throws logic_error;
// - no future is pending after its pool's wait() (roots and chains a driver submitted to one
//   pool just before waiting for it);
// - once idle, each pool's worker threads are exactly the size last set (after a final resize);
// - no thread is left behind by a destroyed pool: the process ends each round with its own
//   threads and the default pool's, no more;
// - once every pool is destroyed and every future dropped, no object a task captured or
//   returned is alive (exactly 0, after waiting without sleeps for the pools and their threads);
// - no hang (the watchdog aborts after 120 s without progress).
//
// Usage: stress_mix [--seed N] [--seconds S=3] [--drivers K=6]; above 60 s, a soak run in
// rounds (see main()).
#include <algorithm>
#include <array>
#include <atomic>
#include <background/background.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "stress_support.hpp"

namespace {

namespace bg = background;
using stress::check;
using stress::live_object;
using stress::random_source;
using steady = std::chrono::steady_clock;

constexpr long max_nodes = 1 << 21;
constexpr long callback_error_base = max_nodes;  // ids of exceptions that callbacks throw
constexpr long max_callback_errors = 1 << 16;
constexpr int slot_count = 4;
constexpr std::size_t bag_capacity = 3000;
constexpr std::size_t max_size = 64;  // resizes pick a size in 1..max_size

struct result {
  live_object live_;
  long value_;
};

struct std_error : std::runtime_error {
  explicit std_error(long id) : std::runtime_error("stress"), id_(id) {}
  long id_;
};
struct odd_error {
  long id_;
};

// What happened to one task (a root or a then() link), indexed by node id.
struct node_record {
  std::atomic<int> ran_{0};
  std::atomic<int> hits_{0};  // leaf observations + on_error reports of this node's exception
  std::atomic<bool> threw_{false};
  std::atomic<bool> cancel_ok_{false};
  std::atomic<bool> root_{false};  // a run() task, not a then()
  std::atomic<bool> submitted_{false};
  std::atomic<long> chain_{-1};  // the root's id
};

// A kept leaf future. `deleter_` marks the future of a task that destroys its own pool: only
// drivers cancel those, since a cancel() that destroys a pool blocks until the pool's other
// tasks finish, which must not be a task itself (two pools could wait for each other).
struct bag_entry {
  bg::future<result> future_;
  long node_ = 0;
  bool deleter_ = false;
};

struct pool_slot {
  std::mutex mutex_;
  std::shared_ptr<bg::pool> pool_;
};

class mix_test {
 public:
  // Routes every reported exception to this test, and counts the default pool's callbacks.
  mix_test() {
    bg::on_error([this](std::exception_ptr e) { hit(exception_id(e)); });
    install_callbacks(bg::default_pool());  // once: callbacks cannot be removed
  }
  mix_test(const mix_test&) = delete;
  mix_test& operator=(const mix_test&) = delete;
  ~mix_test() { bg::on_error({}); }

  // One round: runs `drivers` driver threads for `seconds` (or until node ids run out), then
  // observes every kept leaf, checks each pool's idle thread count, destroys the pools and checks
  // the invariants. Rounds run one after another on the same object (a soak run).
  // `base_threads` is the process's thread count without any pool's.
  void run(std::uint64_t seed, int seconds, int drivers, long base_threads) {
    reset();
    bg::n = 2;
    random_source rng(stress::derive_seed(seed, 1000));
    for (pool_slot& s : slots_) s.pool_ = make_pool(rng);
    stress::enter_phase("drivers");
    const auto end = steady::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (int i = 0; i < drivers; ++i) {
      threads.emplace_back(
          [this, end, s = stress::derive_seed(seed, static_cast<unsigned>(i))] { driver(s, end); });
    }
    for (std::thread& t : threads) t.join();
    stress::enter_phase("observing kept leaves");
    std::vector<bag_entry> bag;
    {
      std::lock_guard<std::mutex> lock(bag_mutex_);
      bag.swap(bag_);
    }
    for (bag_entry& e : bag) {
      observe_leaf(e.future_, e.node_, false, false);
      stress::progress();
    }
    bag.clear();
    stress::enter_phase("idle thread counts");
    for (pool_slot& s : slots_) {
      stress::check_idle_threads(*s.pool_);  // the size the drivers left it at
      s.pool_->resize(1 + rng.below(max_size));
      stress::check_idle_threads(*s.pool_);
    }
    stress::check_idle_threads(bg::default_pool());
    bg::n = 1 + rng.below(max_size);
    resizes_ += 1 + slot_count;
    stress::check_idle_threads(bg::default_pool());
    stress::enter_phase("destroying pools");
    for (pool_slot& s : slots_) s.pool_.reset();
    bg::wait();
    stress::check_nothing_left();
    stress::check_process_threads(
        base_threads + static_cast<long>(bg::detail::worker_threads(bg::default_pool())));
    check_records();
  }

  // Tasks (run() roots and then() links) submitted and resizes made in the last round.
  long tasks() const { return std::min(next_node_.load(), max_nodes) - 1; }
  long resizes() const { return resizes_.load(); }

 private:
  node_record& record(long id) { return nodes_[static_cast<std::size_t>(id)]; }
  std::atomic<bool>& chain_cancelled(long chain) {
    return chain_cancelled_[static_cast<std::size_t>(chain)];
  }
  std::atomic<bool>& chain_fanout(long chain) {
    return chain_fanout_[static_cast<std::size_t>(chain)];
  }
  std::atomic<int>& callback_error_hits(long i) {
    return callback_error_hits_[static_cast<std::size_t>(i)];
  }

  // The id of the exception in `e`: > 0 a node's or a callback's, 0 cancelled, -1 unknown,
  // -2 shutdown_error.
  static long exception_id(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std_error& x) {
      return x.id_;
    } catch (const odd_error& x) {
      return x.id_;
    } catch (const bg::cancelled&) {
      return 0;
    } catch (const bg::shutdown_error&) {
      return -2;
    } catch (...) {
      return -1;
    }
  }

  // Counts one observation or report of the exception with id `id`.
  void hit(long id) {
    if (id >= callback_error_base && id < callback_error_base + max_callback_errors) {
      callback_error_hits(id - callback_error_base).fetch_add(1);
    } else if (id > 0 && id < max_nodes) {
      record(id).hits_.fetch_add(1);
    } else {
      check(false, "only exceptions thrown by tasks or callbacks are reported",
            "unexpected exception (id %ld)", id);
    }
  }

  // A fresh node id, or nullopt once they are exhausted (the drivers then stop).
  std::optional<long> new_node(long chain) {
    const long id = next_node_.fetch_add(1);
    if (id >= max_nodes) {
      stop_ = true;
      return std::nullopt;
    }
    record(id).chain_ = chain < 0 ? id : chain;
    return id;
  }

  [[noreturn]] void throw_for(long node, random_source& rng) {
    record(node).threw_ = true;
    if (rng.coin()) throw std_error(node);
    throw odd_error{node};
  }

  void check_value(const result& r, long node) {
    check(r.value_ == node, "a leaf's value is its own", "value %ld for node %ld", r.value_, node);
    const int ran = record(node).ran_.load();
    check(ran == 1, "a task with a value ran once", "node %ld has a value but ran %d", node, ran);
  }

  // Checks a leaf's outcome once it is final, and counts the observation of its exception.
  void observe_leaf(bg::future<result>& f, long node, bool use_get, bool rvalue) {
    std::exception_ptr e;
    if (use_get) {
      try {
        if (rvalue) {
          const result r = std::move(f).get();
          check_value(r, node);
        } else {
          check_value(f.get(), node);
        }
        return;
      } catch (...) {
        e = std::current_exception();
      }
    } else {
      e = f.exception();
      if (!e) {
        check_value(f.get(), node);
        return;
      }
    }
    const long id = exception_id(e);
    const node_record& n = record(node);
    if (id == 0) {
      check(n.ran_ == 0, "a cancelled task did not run", "node %ld cancelled but ran", node);
      return;
    }
    hit(id);
    if (id == node) {
      check(n.ran_ == 1, "a task that threw ran once", "node %ld threw but ran %d", node,
            n.ran_.load());
    } else {
      check(!n.root_, "a root fails only with its own exception",
            "root %ld reports node %ld's exception", node, id);
      check(n.ran_ == 0, "a continuation that forwards an exception did not run",
            "then-node %ld forwarded %ld but ran", node, id);
    }
  }

  void install_callbacks(bg::pool& p) {
    p.callback([this](const bg::outcome&) { callback_calls_.fetch_add(1); });
    p.callback([this](const bg::outcome& o) {
      if (o.failed() && failed_outcomes_.fetch_add(1) % 7 == 0) {
        const long c = next_callback_error_.fetch_add(1);
        if (c < max_callback_errors) {
          if (c % 2 != 0) throw std_error(callback_error_base + c);
          throw odd_error{callback_error_base + c};
        }
      }
    });
  }

  std::shared_ptr<bg::pool> make_pool(random_source& rng) {
    auto p = stress::make_tracked_pool(1 + rng.below(std::size_t{4}));
    install_callbacks(*p);
    return p;
  }

  std::shared_ptr<bg::pool> slot_pool(int i) {
    std::lock_guard<std::mutex> lock(slots_[static_cast<std::size_t>(i)].mutex_);
    return slots_[static_cast<std::size_t>(i)].pool_;
  }

  // Keeps a leaf; when the bag is full, a random kept future is dropped instead.
  void bag_put(bag_entry entry, random_source& rng) {
    bag_entry dropped;  // destroyed after the unlock
    std::lock_guard<std::mutex> lock(bag_mutex_);
    if (bag_.size() >= bag_capacity) {
      bag_entry& victim = bag_[rng.below(bag_.size())];
      dropped = std::exchange(victim, std::move(entry));
      return;
    }
    bag_.push_back(std::move(entry));
  }

  bool bag_take(bag_entry& out, random_source& rng) {
    std::lock_guard<std::mutex> lock(bag_mutex_);
    if (bag_.empty()) return false;
    const std::size_t i = rng.below(bag_.size());
    out = std::move(bag_[i]);
    bag_[i] = std::move(bag_.back());
    bag_.pop_back();
    return true;
  }

  // Cancels a random kept leaf, outside the bag's lock (a cancel may destroy a pool and wait).
  // From a task (`from_task`), deleters are left alone.
  void cancel_random(random_source& rng, bool from_task) {
    bag_entry e;
    {
      std::lock_guard<std::mutex> lock(bag_mutex_);
      if (bag_.empty()) return;
      const bag_entry& chosen = bag_[rng.below(bag_.size())];
      if (from_task && chosen.deleter_) return;
      e.future_ = chosen.future_;
      e.node_ = chosen.node_;
      e.deleter_ = chosen.deleter_;
    }
    try_cancel(e.future_, e.node_, e.deleter_);
  }

  void try_cancel(bg::future<result>& f, long node, bool deleter) {
    if (f.cancel()) {
      record(node).cancel_ok_ = true;
      chain_cancelled(record(node).chain_).store(true);
      if (deleter) deleter_cancels_.fetch_add(1);
    }
  }

  // Work done inside a task: nested submits and gets, then-chains, resizes, cancels, waits.
  // `self` is the pool the task was submitted to, or null if the task must not use it.
  void nested_work(bg::pool* self, int depth, random_source& rng) {
    if (depth >= 2) return;
    const int k = rng.below(3);
    for (int i = 0; i < k; ++i) {
      bg::pool* target = (self != nullptr && !rng.one_in(3)) ? self : &bg::default_pool();
      const std::optional<long> node = new_node(-1);
      if (!node) return;
      record(*node).root_ = true;
      if (rng.one_in(5)) {
        post_root(target, *node, depth + 1, rng.next());
        continue;
      }
      bg::future<result> f = submit_root(target, *node, depth + 1, rng.next());
      long leaf = *node;
      if (rng.coin())
        f = then_chain(std::move(f), leaf, target, rng.below(5), depth + 1, rng, false);
      observe_leaf(f, leaf, rng.coin(), rng.coin());
    }
    switch (rng.below(12)) {
      case 0:
        if (self != nullptr) self->resize(1 + rng.below(max_size));
        resizes_.fetch_add(1);
        break;
      case 1:
        bg::n = 1 + rng.below(max_size);
        resizes_.fetch_add(1);
        break;
      case 2:
        cancel_random(rng, true);
        break;
      case 3:
        if (self != nullptr) {
          bool threw = false;
          try {
            self->wait();
          } catch (const std::logic_error&) {
            threw = true;
          }
          check(threw, "pool::wait() from the pool's own task throws logic_error", "it did not");
        }
        break;
      case 4:  // jitter
        std::this_thread::sleep_for(std::chrono::microseconds(rng.below(500)));
        break;
      default:
        break;
    }
  }

  result body(bg::pool* self, long node, int depth, std::uint64_t seed) {
    const int ran = record(node).ran_.fetch_add(1);
    check(ran == 0, "a task body runs at most once", "node %ld ran twice", node);
    random_source rng(seed);
    nested_work(self, depth, rng);
    if (rng.one_in(6)) throw_for(node, rng);
    return result{live_object{}, node};
  }

  bg::future<result> submit_root(bg::pool* target, long node, int depth, std::uint64_t seed) {
    auto f = target->run([this, target, node, depth, seed, l = live_object{}] {
      return body(target, node, depth, seed);
    });
    record(node).submitted_ = true;
    submissions_with_callbacks_.fetch_add(1);
    return f;
  }

  // A root with no future at all (pool::post()): it must run exactly once, and its exception
  // reach the on_error() handler, once, like a root whose future was dropped at once.
  void post_root(bg::pool* target, long node, int depth, std::uint64_t seed) {
    target->post([this, target, node, depth, seed, l = live_object{}] {
      (void)body(target, node, depth, seed);
    });
    record(node).submitted_ = true;
    submissions_with_callbacks_.fetch_add(1);
    posts_.fetch_add(1);
  }

  // Appends `len` then()s to `f`; `leaf` follows the last node attached. `self` is the pool the
  // continuations run on (the root's), or null when the bodies must not use it.
  bg::future<result> then_chain(bg::future<result> f, long& leaf, bg::pool* self, int len,
                                int depth, random_source& rng, bool may_wait_first) {
    const long chain = record(leaf).chain_;
    for (int i = 0; i < len; ++i) {
      if (may_wait_first && rng.one_in(4)) f.wait_for(std::chrono::microseconds(rng.below(300)));
      const std::optional<long> node = new_node(chain);
      if (!node) return f;
      const long id = *node;
      const std::uint64_t seed = rng.next();
      try {
        if (rng.coin()) {
          f = std::move(f).then([this, self, id, depth, seed, l = live_object{}](result&& r) {
            const result keep = std::move(r);
            return body(self, id, depth, seed);
          });
        } else {
          bg::future<result> next =
              f.then([this, self, id, depth, seed, l = live_object{}](const result&) {
                return body(self, id, depth, seed);
              });
          if (rng.one_in(4)) {
            // Fan-out: a second continuation on the same intermediate future.
            const std::optional<long> other_node = new_node(chain);
            if (other_node) {
              const long n2 = *other_node;
              chain_fanout(chain) = true;
              auto other = f.then([this, n2, l = live_object{}](const result&) {
                record(n2).ran_.fetch_add(1);
                return result{live_object{}, n2};
              });
              if (rng.coin()) observe_leaf(other, n2, true, false);
            }
          }
          f = std::move(next);
        }
        record(id).submitted_ = true;
      } catch (const bg::shutdown_error&) {
        shutdown_errors_.fetch_add(1);
        return f;  // f stays the leaf
      }
      leaf = id;
    }
    return f;
  }

  // A task that destroys its own pool, taken out of slot `s` (a fresh pool replaces it).
  void submit_deleter(int s, random_source& rng) {
    auto fresh = make_pool(rng);
    std::shared_ptr<bg::pool> old;
    {
      std::lock_guard<std::mutex> lock(slots_[static_cast<std::size_t>(s)].mutex_);
      old = std::exchange(slots_[static_cast<std::size_t>(s)].pool_, std::move(fresh));
    }
    bg::pool* raw = old.get();
    // Half the time this thread keeps a reference until run() has returned; otherwise the
    // task may destroy the pool while run() is still returning from it.
    std::shared_ptr<bg::pool> during_run = rng.coin() ? old : nullptr;
    const std::optional<long> node = new_node(-1);
    if (!node) return;
    const long id = *node;
    record(id).root_ = true;
    const std::uint64_t seed = rng.next();
    auto f = raw->run([this, keep = std::move(old), raw, id, seed, l = live_object{}]() mutable {
      const int ran = record(id).ran_.fetch_add(1);
      check(ran == 0, "a task body runs at most once", "deleter %ld ran twice", id);
      stress::track_thread_exit();  // this worker may be detached by the pool's destructor
      random_source task_rng(seed);
      nested_work(raw, 1, task_rng);  // nested tasks on its pool, then destroy it
      if (task_rng.coin()) {
        std::this_thread::sleep_for(std::chrono::microseconds(task_rng.below(2000)));  // jitter
      }
      keep.reset();  // ~pool here, unless a driver still holds a reference for a moment
      deletes_inside_.fetch_add(1);
      if (task_rng.one_in(5)) throw_for(id, task_rng);
      return result{live_object{}, id};
    });
    during_run.reset();
    record(id).submitted_ = true;
    submissions_with_callbacks_.fetch_add(1);
    // Cancelled while still queued, it destroys the pool inside cancel(), from this thread.
    if (rng.one_in(4)) try_cancel(f, id, true);
    long leaf = id;
    if (rng.coin()) f = then_chain(std::move(f), leaf, nullptr, 1 + rng.below(4), 0, rng, false);
    switch (rng.below(3)) {
      case 0:  // kept: a driver's random cancel() may drop the callable, and with it the pool
        bag_put(bag_entry{std::move(f), leaf, leaf == id}, rng);
        break;
      case 1:
        observe_leaf(f, leaf, rng.coin(), rng.coin());
        break;
      default:  // dropped
        break;
    }
  }

  void driver(std::uint64_t seed, steady::time_point end) {
    random_source rng(seed);
    while (steady::now() < end && !stop_) {
      stress::progress();
      try {
        driver_step(rng);
      } catch (const bg::shutdown_error&) {
        shutdown_errors_.fetch_add(1);
      }
    }
  }

  void driver_step(random_source& rng) {
    const int op = rng.below(100);
    if (op < 50) {  // a root (and maybe a chain) on a slot pool or the default pool
      std::shared_ptr<bg::pool> hold;
      bg::pool* target = nullptr;
      const int s = rng.below(slot_count + 1);
      if (s == slot_count) {
        target = &bg::default_pool();
      } else {
        hold = slot_pool(s);
        target = hold.get();
      }
      const std::optional<long> node = new_node(-1);
      if (!node) return;
      record(*node).root_ = true;
      if (rng.one_in(5)) {
        post_root(target, *node, 0, rng.next());
        return;  // `hold` lets the pool go
      }
      bg::future<result> f = submit_root(target, *node, 0, rng.next());
      long leaf = *node;
      if (rng.coin()) f = then_chain(std::move(f), leaf, target, 1 + rng.below(8), 0, rng, true);
      hold.reset();  // the pool may be destroyed from now on: only its tasks use `target`
      switch (rng.below(5)) {
        case 0:
          break;  // dropped
        case 1:
          observe_leaf(f, leaf, rng.coin(), rng.coin());
          break;
        default:
          bag_put(bag_entry{std::move(f), leaf, false}, rng);
      }
    } else if (op < 62) {
      cancel_random(rng, false);
    } else if (op < 70) {
      bag_entry e;
      if (!bag_take(e, rng)) return;
      if (rng.coin()) {
        observe_leaf(e.future_, e.node_, rng.coin(), rng.coin());
      } else {  // extend a chain: then() on a finished or unfinished future, maybe a gone pool
        long leaf = e.node_;
        e.future_ =
            then_chain(std::move(e.future_), leaf, nullptr, 1 + rng.below(3), 0, rng, false);
        if (leaf != e.node_) e.deleter_ = false;
        e.node_ = leaf;
        bag_put(std::move(e), rng);
      }
    } else if (op < 80) {
      const int s = rng.below(slot_count + 1);
      const std::size_t k = 1 + rng.below(max_size);
      if (s == slot_count) {
        bg::n = k;
      } else if (auto p = slot_pool(s)) {
        p->resize(k);
      }
      resizes_.fetch_add(1);
    } else if (op < 83) {  // a few roots and chains on one pool, then that pool's wait()
      std::shared_ptr<bg::pool> hold;
      const int s = rng.below(slot_count + 1);
      if (s != slot_count && !(hold = slot_pool(s))) return;
      bg::pool& target = hold ? *hold : bg::default_pool();
      std::vector<bag_entry> mine;
      for (int i = 1 + rng.below(4); i > 0; --i) {
        const std::optional<long> node = new_node(-1);
        if (!node) break;
        record(*node).root_ = true;
        bg::future<result> f = submit_root(&target, *node, 0, rng.next());
        long leaf = *node;
        if (rng.coin()) f = then_chain(std::move(f), leaf, &target, rng.below(4), 0, rng, false);
        mine.push_back(bag_entry{std::move(f), leaf, false});
      }
      if (hold) {
        hold->wait();
      } else {
        bg::wait();
      }
      waits_.fetch_add(1);
      for (bag_entry& e : mine) {
        // then() runs a continuation on its antecedent's pool: the whole chain is `target`'s.
        check(e.future_.done(), "no future of a pool is pending after its wait()", "node %ld",
              e.node_);
        bag_put(std::move(e), rng);
      }
    } else if (op < 89) {  // destroy a pool from outside (whoever drops the last reference)
      const int s = rng.below(slot_count);
      auto fresh = make_pool(rng);
      std::shared_ptr<bg::pool> old;
      {
        std::lock_guard<std::mutex> lock(slots_[static_cast<std::size_t>(s)].mutex_);
        old = std::exchange(slots_[static_cast<std::size_t>(s)].pool_, std::move(fresh));
      }
      old.reset();
      deletes_outside_.fetch_add(1);
    } else if (op < 95) {
      submit_deleter(rng.below(slot_count), rng);
    } else {  // jitter
      std::this_thread::sleep_for(std::chrono::microseconds(rng.below(200)));
    }
  }

  // The invariants over all records, once every task is finished and freed.
  void check_records() {
    const long nodes = std::min(next_node_.load(), max_nodes);
    long roots = 0;
    long thrown = 0;
    for (long i = 1; i < nodes; ++i) {
      const node_record& n = record(i);
      if (!n.submitted_) continue;
      const int ran = n.ran_.load();
      check(ran <= 1, "a task body runs at most once", "node %ld ran %d times", i, ran);
      if (n.root_) {
        ++roots;
        check(ran + (n.cancel_ok_ ? 1 : 0) == 1, "a root runs exactly once or is cancelled",
              "root %ld ran %d times, cancelled %d", i, ran, n.cancel_ok_ ? 1 : 0);
      } else {
        check(!(ran == 1 && n.cancel_ok_), "a continuation does not both run and get cancelled",
              "then-node %ld", i);
      }
      const int hits = n.hits_.load();
      if (n.threw_) {
        ++thrown;
        const long c = n.chain_;
        if (!chain_fanout(c)) {
          check(hits <= 1, "an exception is seen at most once", "node %ld's seen %d times", i,
                hits);
        }
        if (!chain_cancelled(c)) {
          check(hits >= 1, "an exception is never lost", "node %ld's seen %d times", i, hits);
        }
      } else {
        check(hits == 0, "only thrown exceptions are seen", "node %ld did not throw, seen %d", i,
              hits);
      }
    }
    const long callback_errors = std::min(next_callback_error_.load(), max_callback_errors);
    for (long i = 0; i < callback_errors; ++i) {
      const int hits = callback_error_hits(i).load();
      check(hits == 1, "a callback's exception is reported exactly once",
            "callback exception %ld reported %d times", i, hits);
    }
    check(callback_calls_ == submissions_with_callbacks_,
          "callbacks run once for each run() and post() submission",
          "%ld callbacks for %ld submissions", callback_calls_.load(),
          submissions_with_callbacks_.load());
    std::printf(
        "nodes=%ld roots=%ld (posted %ld) thrown=%ld callback-throws=%ld shutdown_errors=%ld "
        "deleters run/cancelled=%ld/%ld pools destroyed from outside=%ld resizes=%ld "
        "checked waits=%ld\n",
        nodes - 1, roots, posts_.load(), thrown, callback_errors, shutdown_errors_.load(),
        deletes_inside_.load(), deleter_cancels_.load(), deletes_outside_.load(), resizes_.load(),
        waits_.load());
  }

  // Fresh records and counters for a round; called with no task of the test's running.
  void reset() {
    nodes_.reset(new node_record[max_nodes]);
    chain_cancelled_.reset(new std::atomic<bool>[max_nodes]());
    chain_fanout_.reset(new std::atomic<bool>[max_nodes]());
    callback_error_hits_.reset(new std::atomic<int>[max_callback_errors]());
    for (std::atomic<long>* c : {&next_callback_error_, &failed_outcomes_, &callback_calls_,
                                 &submissions_with_callbacks_, &shutdown_errors_, &deletes_inside_,
                                 &deletes_outside_, &deleter_cancels_, &resizes_, &waits_}) {
      c->store(0);
    }
    next_node_ = 1;
    stop_ = false;
  }

  std::unique_ptr<node_record[]> nodes_;
  std::unique_ptr<std::atomic<bool>[]> chain_cancelled_;  // indexed by chain (root) id
  std::unique_ptr<std::atomic<bool>[]> chain_fanout_;
  std::unique_ptr<std::atomic<int>[]> callback_error_hits_;
  std::atomic<long> next_node_{1};
  std::atomic<long> next_callback_error_{0};
  std::atomic<long> failed_outcomes_{0};
  std::atomic<long> callback_calls_{0};
  std::atomic<long> submissions_with_callbacks_{0};
  std::atomic<long> shutdown_errors_{0};
  std::atomic<long> deletes_inside_{0};
  std::atomic<long> deletes_outside_{0};
  std::atomic<long> deleter_cancels_{0};
  std::atomic<long> resizes_{0};
  std::atomic<long> posts_{0};  // roots submitted with post()
  std::atomic<long> waits_{0};
  std::atomic<bool> stop_{false};  // node ids exhausted
  std::mutex bag_mutex_;
  std::vector<bag_entry> bag_;
  std::array<pool_slot, slot_count> slots_;
};

}  // namespace

// Usage as for every stress program; with --seconds above `round_seconds`, a soak run: rounds
// of `round_seconds` one after another, each with its own seed (printed, so that a failing round
// can be rerun alone with --seed and --seconds), each checking every invariant, and a line of
// figures per round: tasks, resizes and the resident set size once the round's pools are gone.
int main(int argc, char** argv) {
  constexpr int round_seconds = 60;
  const stress::options o = stress::parse_options(argc, argv, 6);
  stress::watchdog dog;
  const long base_threads = stress::process_threads();  // main and the watchdog's, before pools
  auto test = std::make_unique<mix_test>();
  if (o.seconds_ <= round_seconds) {
    test->run(o.seed_, o.seconds_, o.drivers_, base_threads);
    return stress::finish("stress_mix");
  }
  const auto start = steady::now();
  const auto end = start + std::chrono::seconds(o.seconds_);
  long tasks = 0;
  long resizes = 0;
  long first_rss = -1;
  for (std::uint64_t round = 0; steady::now() < end && stress::stats.violations_ == 0; ++round) {
    const std::uint64_t seed = stress::derive_seed(o.seed_, 1000000 + round);
    stress::stats.seed_ = seed;
    const auto left = std::chrono::ceil<std::chrono::seconds>(end - steady::now()).count();
    const int seconds = static_cast<int>(std::min<long long>(round_seconds, left));
    std::printf("round %llu: seed %llu, %d s\n", static_cast<unsigned long long>(round),
                static_cast<unsigned long long>(seed), seconds);
    std::fflush(stdout);
    test->run(seed, seconds, o.drivers_, base_threads);
    tasks += test->tasks();
    resizes += test->resizes();
    const long rss = stress::resident_kib();
    if (first_rss < 0) first_rss = rss;
    const auto minutes = std::chrono::duration<double>(steady::now() - start).count() / 60;
    std::printf(
        "round %llu done at %.1f min: tasks %ld (total %ld), resizes %ld (total %ld), "
        "rss %ld KiB (after round 0: %ld KiB)\n",
        static_cast<unsigned long long>(round), minutes, test->tasks(), tasks, test->resizes(),
        resizes, rss, first_rss);
    std::fflush(stdout);
  }
  if (stress::stats.violations_ == 0) stress::stats.seed_ = o.seed_;  // else: the round's
  return stress::finish("stress_mix");
}
