// stress_chains: randomized stress of then()-chains on small pools. Each driver iteration makes
// a fresh pool P (n = 1..2) whose workers are held at a gate, so that tasks waiting for chains
// start before the chains' roots: chains of up to 25 links are then waited on from P's own
// tasks (a waiting worker runs the links itself), from a shared n = 1 pool G, and from the
// driver, with roots on P, G or the default pool (n = 1). Links are cancelled at random
// moments, then() is called on finished and unfinished futures, on lvalues and rvalues. Then P
// is waited on, and destroyed from outside or from one of its own tasks, possibly before run()
// has returned to the driver, with more chains in flight and a continuation of the deleter.
//
// Invariants checked:
// - without a successful cancel, the links of a chain run exactly once up to the first one that
//   throws, and never after it; no link ever runs twice;
// - a leaf's value is the chain's length - 1, or it fails with the first thrower's exception,
//   or it is cancelled only if a cancel() of the chain succeeded; each waited leaf is checked
//   once;
// - the first thrower's exception is seen exactly once (get() on the leaf or the on_error()
//   handler), at most once if a cancel() succeeded; nothing else is reported;
// - after P.wait() returns, every link of the chains rooted on P is done and P's callback ran
//   once per run() submission to P; chains submitted before P's destruction all complete;
// - the deleting task finishes, and its continuation runs or then() throws shutdown_error;
// - once every pool is destroyed and every future dropped, no object a task captured is alive
//   (exactly 0, after waiting without sleeps for the pools' threads);
// - no hang (the watchdog aborts after 120 s without progress).
//
// Usage: stress_chains [--seed N] [--seconds S=3] [--drivers K=4]
#include <background/background.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "stress_support.hpp"

namespace {

namespace bg = background;
using stress::check;
using stress::live_object;
using stress::random_source;
using steady = std::chrono::steady_clock;

constexpr long max_links = 1 << 22;

struct link_error {
  long id_;
};

// Who waits for a chain's leaf.
enum class waiter_kind { driver, task_on_p, task_on_g, none };

struct chain_record {
  std::vector<long> ids_;                // ids_[0] is the root's
  std::vector<bg::future<long>> links_;  // kept for cancel(), unless the chain is dropped
  bg::future<long> leaf_;
  long first_thrower_ = -1;
  std::atomic<bool> cancel_hit_{false};
  std::atomic<bool> leaf_published_{false};
  bool on_p_ = false;
  waiter_kind waiter_ = waiter_kind::driver;
  std::atomic<int> outcome_checked_{0};
};

class chains_test {
 public:
  chains_test()
      : ran_(new std::atomic<int>[max_links]()), hits_(new std::atomic<int>[max_links]()) {}

  void run(std::uint64_t seed, int seconds, int drivers) {
    bg::on_error([this](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const link_error& x) {
        hits(x.id_).fetch_add(1);
      } catch (...) {
        check(false, "only the links' exceptions are reported", "an unexpected report");
      }
    });
    bg::n = 1;  // chains rooted on the default pool are waited on from G and P
    shared_ = std::make_unique<bg::pool>(1);
    stress::enter_phase("drivers");
    const auto end = steady::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (int i = 0; i < drivers; ++i) {
      threads.emplace_back([this, end, s = stress::derive_seed(seed, static_cast<unsigned>(i))] {
        random_source rng(s);
        while (steady::now() < end) iteration(rng);
      });
    }
    for (std::thread& t : threads) t.join();
    stress::enter_phase("destroying pools");
    shared_.reset();
    bg::wait();
    stress::check_nothing_left();
    std::printf("iterations=%ld links=%ld\n", iterations_.load(), next_id_.load() - 1);
    bg::on_error({});
  }

 private:
  std::atomic<int>& ran(long id) { return ran_[static_cast<std::size_t>(id)]; }
  std::atomic<int>& hits(long id) { return hits_[static_cast<std::size_t>(id)]; }

  void check_leaf(chain_record& c, const bg::future<long>& leaf) {
    const long n = static_cast<long>(c.ids_.size());
    try {
      const long v = leaf.get();
      check(c.first_thrower_ < 0 && v == n - 1, "a leaf's value counts the links",
            "leaf value %ld (length %ld, first thrower %ld)", v, n, c.first_thrower_);
    } catch (const link_error& e) {
      hits(e.id_).fetch_add(1);
      check(e.id_ == c.first_thrower_, "a leaf fails with the first thrower's exception",
            "leaf threw %ld, first thrower %ld", e.id_, c.first_thrower_);
    } catch (const bg::cancelled&) {
      check(c.cancel_hit_, "a leaf is cancelled only after a successful cancel()",
            "leaf cancelled but no cancel() succeeded");
    }
    c.outcome_checked_.fetch_add(1);
  }

  // Appends `len` links to `c`, the root on `root_pool`; returns the leaf.
  bg::future<long> build_chain(chain_record& c, bg::pool* root_pool, int len,
                               random_source& rng) {
    for (int j = 0; j < len; ++j) {
      const long id = next_id_.fetch_add(1);
      if (id >= max_links) {
        std::fprintf(stderr, "stress_chains: out of link ids (seed %llu)\n",
                     static_cast<unsigned long long>(stress::stats.seed_));
        std::abort();
      }
      c.ids_.push_back(id);
    }
    std::vector<bool> throws;
    for (long id : c.ids_) {
      throws.push_back(rng.one_in(12));
      if (throws.back() && c.first_thrower_ < 0) c.first_thrower_ = id;
    }
    const long id0 = c.ids_[0];
    const bool t0 = throws[0];
    bg::future<long> f = root_pool->run([this, id0, t0, l = live_object{}]() -> long {
      ran(id0).fetch_add(1);
      if (t0) throw link_error{id0};
      return 0;
    });
    c.links_.push_back(f);
    for (std::size_t j = 1; j < c.ids_.size(); ++j) {
      const long id = c.ids_[j];
      const bool t = throws[j];
      if (rng.one_in(8)) f.wait_for(std::chrono::microseconds(rng.below(200)));
      auto body = [this, id, t, l = live_object{}](long v) -> long {
        ran(id).fetch_add(1);
        if (t) throw link_error{id};
        return v + 1;
      };
      if (rng.coin()) {
        f = std::move(f).then(body);  // an rvalue: `links_` holds another copy
      } else {
        f = f.then([body](const long& v) { return body(v); });
      }
      c.links_.push_back(f);
    }
    return f;
  }

  void iteration(random_source& rng) {
    iterations_.fetch_add(1);
    stress::progress();
    auto* p = new bg::pool(1 + rng.below(std::size_t{2}));
    auto p_callbacks = std::make_shared<std::atomic<long>>(0);  // may outlive this iteration
    p->callback([p_callbacks](const bg::outcome&) { p_callbacks->fetch_add(1); });
    long p_runs = 0;
    // Hold P's workers, so that the tasks waiting for chains start before the chains' roots.
    std::latch gate{1};
    for (std::size_t i = 0; i < p->size(); ++i, ++p_runs) p->run([&gate] { gate.wait(); });
    const int m = 1 + rng.below(5);
    std::vector<std::unique_ptr<chain_record>> chains;
    std::vector<bg::future<long>> waiters;
    for (int k = 0; k < m; ++k) {
      auto c = std::make_unique<chain_record>();
      c->waiter_ = static_cast<waiter_kind>(rng.below(4));
      if (c->waiter_ == waiter_kind::task_on_p || c->waiter_ == waiter_kind::task_on_g) {
        bg::pool* w = c->waiter_ == waiter_kind::task_on_p ? p : shared_.get();
        waiters.push_back(w->run([this, cp = c.get(), l = live_object{}] {
          cp->leaf_published_.wait(false);
          check_leaf(*cp, cp->leaf_);
          return 0L;
        }));
        if (w == p) ++p_runs;
      }
      chains.push_back(std::move(c));
    }
    // The chains: roots on P mostly (behind the waiters), else on G or the default pool.
    for (auto& cu : chains) {
      chain_record& c = *cu;
      const int where = c.waiter_ == waiter_kind::none ? 0 : rng.below(6);  // dropped: on P
      bg::pool* root_pool = where < 4 ? p : where == 4 ? shared_.get() : &bg::default_pool();
      c.on_p_ = root_pool == p;
      if (c.on_p_) ++p_runs;
      c.leaf_ = build_chain(c, root_pool, 1 + rng.below(25), rng);
      c.leaf_published_ = true;
      c.leaf_published_.notify_all();
      if (c.waiter_ == waiter_kind::none) {  // dropped: no future of the chain is kept
        c.links_.clear();
        c.leaf_ = {};
      }
    }
    gate.count_down();
    // Cancel random links at random moments while the chains run.
    for (int k = 0; k < 3; ++k) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));  // jitter
      chain_record& c = *chains[rng.below(chains.size())];
      if (c.links_.empty() || !rng.one_in(3)) continue;
      const std::size_t j = rng.below(c.links_.size());
      const bool was = c.cancel_hit_.exchange(true);  // first: the cascade wakes waiters at once
      if (!c.links_[j].cancel() && !was) c.cancel_hit_ = false;
    }
    if (rng.one_in(4)) p->resize(1 + rng.below(std::size_t{3}));
    for (auto& w : waiters) w.get();
    for (auto& c : chains) {
      if (c->waiter_ == waiter_kind::driver) check_leaf(*c, c->leaf_);
    }
    stress::progress();
    // pool::wait(): every task of P, continuations included, is done and its callbacks ran.
    p->wait();
    for (auto& c : chains) {
      for (std::size_t j = 0; c->on_p_ && j < c->links_.size(); ++j) {
        check(c->links_[j].done(), "after pool::wait(), every task of the pool is done",
              "link %zu of a chain rooted on P is not done", j);
      }
    }
    check(p_callbacks->load() == p_runs, "after pool::wait(), callbacks ran once per run()",
          "%ld callbacks for %ld run() tasks", p_callbacks->load(), p_runs);
    destroy(p, rng);
    stress::progress();
    for (auto& c : chains) check_chain(*c);
    // Drop everything: a dropped chain's exception is reported now at the latest.
    for (auto& c : chains) {
      c->links_.clear();
      c->leaf_ = {};
    }
    for (auto& c : chains) {
      if (c->first_thrower_ < 0) continue;
      const int h = hits(c->first_thrower_).load();
      if (c->cancel_hit_) {
        check(h <= 1, "an exception is seen at most once", "exception %ld seen %d times",
              c->first_thrower_, h);
      } else {
        check(h == 1, "an exception is seen exactly once", "exception %ld seen %d times",
              c->first_thrower_, h);
      }
    }
  }

  // Destroys P, from outside or from one of its own tasks, with new chains in flight.
  void destroy(bg::pool* p, random_source& rng) {
    std::vector<bg::future<long>> tail;
    for (int k = 0; k < 3; ++k) {
      auto f = p->run([l = live_object{}] {
        std::this_thread::sleep_for(std::chrono::microseconds(50));  // jitter
        return 1L;
      });
      for (int j = 0; j < 5; ++j) f = f.then([l = live_object{}](long v) { return v + 1; });
      tail.push_back(f);
    }
    if (rng.coin()) {
      delete p;
    } else {
      std::atomic<bool> deleted{false};
      // It may run, and delete P, before run() has returned here.
      auto d = p->run([p, &deleted] {
        stress::track_thread_exit();  // the destructor detaches this worker
        delete p;
        deleted = true;
        return 0L;
      });
      try {
        auto after = d.then([](long v) { return v + 1; });  // may run after P is gone
        check(after.get() == 1, "the deleter's continuation runs", "wrong value");
      } catch (const bg::shutdown_error&) {
        d.wait();  // d had finished and P was being destroyed or gone: documented
      }
      check(deleted.load(), "a task that destroys its own pool finishes", "it did not");
    }
    for (auto& f : tail) {
      check(f.get() == 6, "chains submitted before the destruction complete", "wrong value");
    }
  }

  void check_chain(chain_record& c) {
    for (long id : c.ids_) {
      const int r = ran(id).load();
      check(r <= 1, "a link runs at most once", "link %ld ran %d times", id, r);
    }
    for (auto& f : c.links_) f.wait();  // chains rooted on G or the default pool
    if (!c.cancel_hit_) {
      for (std::size_t j = 0; j < c.ids_.size(); ++j) {
        const bool before = c.first_thrower_ < 0 || c.ids_[j] <= c.first_thrower_;
        const int r = ran(c.ids_[j]).load();
        check(r == (before ? 1 : 0),
              "links run exactly once up to the first thrower, never after it",
              "link %zu of %zu ran %d times (first thrower %ld)", j, c.ids_.size(), r,
              c.first_thrower_);
      }
    }
    if (c.waiter_ != waiter_kind::none) {
      check(c.outcome_checked_ == 1, "each waited leaf is checked once", "checked %d times",
            c.outcome_checked_.load());
    }
  }

  std::unique_ptr<std::atomic<int>[]> ran_;   // by link id
  std::unique_ptr<std::atomic<int>[]> hits_;  // observations + reports of a link's exception
  std::atomic<long> next_id_{1};
  std::atomic<long> iterations_{0};
  std::unique_ptr<bg::pool> shared_;  // G: n = 1, its tasks wait for other pools' chains
};

}  // namespace

int main(int argc, char** argv) {
  const stress::options o = stress::parse_options(argc, argv, 4);
  stress::watchdog dog;
  auto test = std::make_unique<chains_test>();
  test->run(o.seed_, o.seconds_, o.drivers_);
  return stress::finish("stress_chains");
}
