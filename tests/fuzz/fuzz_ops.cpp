// fuzz_ops: a libFuzzer target. Each input is decoded into a sequence of operations on three
// small pools of its own and on the default pool, run from the fuzzer's thread while the pools'
// workers run the tasks; then everything is waited for, dropped and destroyed, and the
// invariants below are checked. A violation prints `fuzz_ops: VIOLATION: <invariant>: <details>`
// and aborts, so libFuzzer saves the input as a crash; a hang is its timeout, a leak its leak
// report. The default pool (a process singleton) lives across inputs; each input ends with it
// idle, background::n back to 2 and the threads above 2 gone.
//
// An input's own pools cost most when made and destroyed (threads started and joined, and what
// they allocate in one input and free in another makes libFuzzer rerun the input under
// LeakSanitizer), so an input that leaves a pool as it got it (no callback of its own, its size
// back to the first one, not shut down or replaced) leaves it for a later input that needs a
// pool of that size: it gets it idle, with its callback count at 0, and sees no difference but
// the threads it does not start.
//
// Input format. Byte 0 sets the pools' sizes: pool k (0..2) has 1 + ((b >> 2k) & 3) threads,
// and is made on first use. Then come up to 256 operations: an opcode byte b (op b % 12 for
// b < 192, op 12 + (b - 192) % 8 for 192..253, op 20 for 254 and op 21 for 255), and one or two
// argument bytes `a` and `s`. A missing byte reads as 0, so every input is valid. Pool index 3 is
// the default pool. Eight slots keep a future each (and a "shadow" copy of it); a slot mask `m`
// selects the slots whose bit is set, in slot order, and ignores the empty ones.
//
//   op  what                 arguments
//   0   submit a task        a: pool a&3, task kind (a>>2)&7, slot a>>5; s: seed (the kind's
//                            argument), s&0x80 submits with task() instead of run(), s&0x40
//                            drops the future at once (fire-and-forget) instead of keeping it
//   1   then() on a slot     a: slot a&7, continuation kind (a>>3)&3, (a>>5)&1 on the rvalue,
//                            (a>>6)&1 fan-out: a second then() on the same future goes to slot
//                            (a+1)&7; s: seed. The slot then holds the continuation's future
//   2   cancel() a slot      a: slot a&7
//   3   drop a slot          a: slot a&7; a&8 drops only the shadow copy
//   4   observe a slot       a: slot a&7, (a>>3)%3: get(), std::move(f).get(), exception();
//                            the slot is then emptied (each future is observed at most once)
//   5   resize a pool        a: pool a&3, to k = a>>2: 1 + k%16 threads if k < 48, else
//                            1 + k (49..64: thread starts dominate the cost of an input, so
//                            big pools are the rarer case); background::n = 1 + k%8
//   6   wait for a pool      a: pool a&3: pool::wait() or background::wait()
//   7   replace a pool       a: pool a%3 is destroyed (even while busy) and made again with
//                            1 + ((a>>2)&3) threads
//   8   register a callback  a: pool a&3, mode (a>>2)&3: count only, throw a std exception on a
//                            failed outcome, throw a non-std type on every outcome, throw on a
//                            cancelled one (on the default pool: sets the mode of its permanent
//                            throwing callback until the input ends)
//   9   timed wait           a: slot a&7, (a>>3)&3: wait_for(0), wait_for(-1 ms),
//                            wait_until(a past time), wait_for(1 us)
//   10  copy a slot          a: slot a&7 keeps a shadow copy of its future (never observed)
//   11  pause                a: the fuzzer's thread pauses a%32 us (yielding: a sleep of a few
//                            us took ~60, its timer slack)
//   12  when_all()           m: slots; s: (s>>2)%3 get(), std::move().get(), exception(); s&2
//                            cancels its future first; s&1 keeps the slots (else it takes them:
//                            they are emptied)
//   13  when_any()           m: slots (none: it must throw std::invalid_argument); s&1 keeps the
//                            slots; s&2 cancels its future first; then get()
//   14  as_completed()       m: slots; s&2: with a timeout of (s>>2)%64 us; s&1 keeps the slots
//                            (else each yielded future is observed and the slots emptied)
//   15  stop-token task      a: pool a&3, a&4 throws once stopped; s: waits up to s%64 us for it
//                            to start, then cancel()s it (removed if queued, stop requested if
//                            running) and observes it with mode (s>>6)%3
//   16  shut a pool down     a: pool a%3, (a>>2)&1 with cancel_pending (then (a>>3)&1 first
//                            starts a stop-token task there, which the shutdown stops); the
//                            pool is then destroyed, and made again on next use
//   17  map() / for_each()   a: pool a&3, 1 + (a>>2)%8 elements, a&0x20 for_each(), a&0x40 a
//                            second throwing element, a&0x80 cancel()s its future at once; s:
//                            chunk 1 + s%8, element (s>>3)%16 throws (if there is one), mode
//                            (s>>7) get() or exception()
//   18  coroutine            a: slot a&7 (taken: emptied), (a>>3)&1 co_awaits resume_on(pool
//                            (a>>4)&3) first, (a>>6)&1 co_awaits the rvalue, (a>>7) throws its
//                            own exception at the end; then get() of its future
//   19  timed waits on many  m: slots; s: wait_all(fs, (s%64) us), wait_any(fs, (s%64) us),
//                            then, if s&0x40, wait_any(fs) and wait_all(fs)
//   20  fork()               a: only if a >= 0xf0, and once per input (a fork costs ~10 ms, two
//                            inputs' worth); a&1 forks from a task on pool (a>>1)&3 (else from
//                            the fuzzer's thread). The child reads its pools' stats() and
//                            _exit()s; the parent waits for it
//   21  signal               a: SIGURG sent to the process while the fuzzer's thread blocks it
//                            for a%32 us; then unblocked, and waited for until handled
//
// Task kinds: 0 returns a value; 1 throws a std exception; 2 throws a non-std type; 3 pauses
// s%32 us (yielding); 4 submits one or two nested tasks (to its own pool or the default pool, maybe
// with a then()) and get()s them; 5 resizes its own pool to 1..8; 6 calls its own pool's wait(),
// which must throw std::logic_error; 7 submits a nested task and drops its future. Nesting stops at
// depth 2. Continuation kinds: 0 value, 1 std exception, 2 non-std exception, 3 nested tasks.
// Every task and continuation returns (or throws) its own id and holds a counted live object;
// so do stop-token tasks, map() elements (f(x) = 3x + 1 for an element's id x) and coroutines.
//
// Invariants checked (the rules of tests/stress/stress_mix.cpp, made exact where the input is
// known):
// - a task body runs at most once; a run()/task() task runs exactly once or its cancel()
//   returned true; a then() continuation runs exactly once if its antecedent succeeded and its
//   own cancel() did not, and never otherwise (so never both runs and is cancelled);
// - a continuation receives its antecedent's value; a kept future's value is its own task's; a
//   cancelled outcome only on a chain where a cancel() succeeded; an exception from another task
//   only at a continuation that did not run; cancel() that succeeds leaves the future done;
// - every task's exception reaches a get()/exception() or the on_error() handler at least
//   once, and at most once per branch of its chain (1 + the chain's fan-outs); each exception a
//   callback throws is reported exactly once; nothing else is reported, and nothing from an
//   earlier input;
// - after pool::wait() (or background::wait()), every kept future of that pool is done; the
//   same after a pool is destroyed; then() on such a future of a destroyed pool throws
//   shutdown_error unless it was cancelled; a pool's first callback ran once per submission;
// - wait_for()/wait_until() with a past deadline return done(); wait() from a pool's own task
//   throws std::logic_error;
// - when_all()'s value is its inputs' values in order, or the exception (or `cancelled`) of the
//   first failed input in input order, once every input is done; when_any()'s index is of a done
//   input; as_completed() yields each input once, each done (a timeout only when timed);
//   wait_all()/wait_any() with a timeout report only done inputs;
// - a stop-token task runs until stopped: cancel() removes it if queued, else requests stop;
//   shutdown(cancel_pending) cancels what has not started (tasks of that pool may then be
//   cancelled with no cancel()) and stops running stop-token tasks; a plain shutdown() cancels
//   nothing; afterwards submissions throw shutdown_error and stats() show no thread, no busy
//   worker, nothing queued;
// - map()'s results are f(x) in order, each element called once, or it fails with one of its
//   throwing elements' exceptions, each reported exactly once in all; each chunk is one
//   submission (its pool's callbacks see it);
// - a coroutine sees its awaited future's value or exception (counted as an observation), and
//   returns its own value or exception;
// - once the pools are destroyed (or kept as spares), the default pool is idle and every future
//   is dropped, no object that a task captured or returned is alive; once idle and resized
//   down, a pool's threads above its size leave;
// - a child forked while the pools work gets each pool renewed: no thread, nothing queued or
//   running (the parent's tasks stay the parent's), and ends within 10 s (it only reads
//   stats() and _exit()s: AddressSanitizer's allocator's locks are not held across fork(), so
//   it must not start threads or allocate, and the library's child handler does neither);
// - a signal sent to the process is handled once, on a thread the program had before the
//   library started any (the fuzzer's or libFuzzer's own), never on a worker: they start with
//   the asynchronous signals blocked.
//
// Build and run: `cmake --workflow --preset fuzz` (clang; runs tests/fuzz/run.sh for 60 s).
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "background/background.hpp"

namespace {

namespace bg = background;

constexpr long max_nodes = 1 << 13;
constexpr long callback_error_base = 1 << 20;  // ids of exceptions that callbacks throw
constexpr long max_callback_errors = 1 << 14;
constexpr std::size_t max_ops = 256;
constexpr int pool_count = 3;  // an input's own pools; index 3 names the default pool
constexpr int default_index = pool_count;
constexpr std::size_t slot_count = 8;
constexpr int max_callbacks_per_pool = 8;
constexpr std::size_t default_size = 2;

// Prints the violated invariant and aborts, so that libFuzzer records the input as a crash.
[[gnu::format(printf, 3, 4)]] void check(bool ok, const char* invariant, const char* details, ...) {
  if (ok) return;
  char text[512];
  va_list args;
  va_start(args, details);
  std::vsnprintf(text, sizeof text, details, args);
  va_end(args);
  std::fprintf(stderr, "fuzz_ops: VIOLATION: %s: %s\n", invariant, text);
  std::fflush(stderr);
  std::abort();
}

// Spins for `us`, yielding: a pause with no sleep_for(), whose timer slack made a sleep of a few
// microseconds take ~60.
void pause_for(std::chrono::microseconds us) {
  const auto until = std::chrono::steady_clock::now() + us;
  while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
}

// What happened to one task (a run() task, nested or not, or a then() continuation), by id.
struct node_record {
  std::atomic<int> ran_{0};
  std::atomic<int> hits_{0};  // observations + on_error reports of this node's exception
  std::atomic<bool> threw_{false};
  std::atomic<bool> succeeded_{false};  // its body returned a value
  std::atomic<bool> cancel_ok_{false};  // a cancel() of its future returned true
  std::atomic<bool> submitted_{false};  // run() or then() returned
  std::atomic<long> parent_{0};         // a continuation's antecedent; 0 for a root
  std::atomic<long> chain_{0};          // the root's id
  std::atomic<int> fanouts_{0};         // on a root: second then()s on one future in its chain
  std::atomic<bool> chain_cancelled_{false};  // on a root: a cancel() in its chain succeeded
  std::atomic<int> pool_{0};                  // the pool it runs on (3: the default pool)
  std::atomic<unsigned> generation_{0};       // ... and that pool's generation
  std::atomic<bool> looper_{false};           // a stop-token task
  std::atomic<bool> saw_stop_{false};         // ... that saw its stop request
  std::atomic<bool> element_{false};          // a map() element (x with f(x) = 3x + 1)
  std::atomic<bool> plan_throw_{false};       // ... that throws
};

// A pool of an input's own, with the count of its first callback (the counting one), which lives
// as long as the pool: a spare pool keeps both for a later input.
class counted_pool {
 public:
  explicit counted_pool(std::size_t size) : pool_(std::in_place, size) {
    pool_->callback([this](const bg::outcome&) { calls_.fetch_add(1); });
  }
  bg::pool& get() { return *pool_; }
  long calls() const { return calls_.load(); }
  void reset_calls() { calls_ = 0; }
  // Destroys the pool (it runs what is queued, then joins) and returns its callback's count.
  long destroy() {
    pool_.reset();
    return calls_.load();
  }

 private:
  std::atomic<long> calls_{0};
  std::optional<bg::pool> pool_;  // declared last: destroyed (and joined) first
};

constexpr std::size_t max_start_size = 4;  // an input's own pools start with 1..4 threads

// Everything that outlives one input: the records, the counters that the permanent callbacks
// of the default pool and the on_error() handler reach, on any thread.
struct fuzz_state {
  std::atomic<std::uint32_t> input_{0};  // the current input's number, carried by exceptions
  std::atomic<long> live_{0};            // live_object instances alive
  std::unique_ptr<node_record[]> nodes_{new node_record[max_nodes]};
  std::atomic<long> next_node_{1};
  std::unique_ptr<std::atomic<int>[]> callback_error_hits_ {
    new std::atomic<int>[ max_callback_errors ]()
  };
  std::atomic<long> next_callback_error_{0};
  std::atomic<long> default_submissions_{0};
  std::atomic<long> default_callback_calls_{0};
  std::atomic<int> default_callback_mode_{0};
  // The generations (bit g % 256) of each own pool that were shut down with cancel_pending:
  // set before the shutdown starts, read by observers on any thread.
  std::atomic<std::uint64_t> cancel_shut_[3][4] = {};
  // Pools that earlier inputs left as they got them (no callback of their own, back at their first
  // size, not shut down or replaced), by size - 1: a later input takes one instead of making a
  // pool. Making and joining threads was most of an input's cost, and what new threads allocate in
  // one input and free in another made libFuzzer rerun an input under LeakSanitizer (its leak check
  // runs whenever an input's mallocs outnumber its frees).
  std::vector<std::unique_ptr<counted_pool>> spares_[max_start_size];
  // SIGURG, sent to the process by op 21: times handled.
  std::atomic<long> signals_{0};
  std::atomic<long> signal_tid_{0};  // the thread that handled the last one
  // The threads that ran before the library started any (the fuzzer's, libFuzzer's own).
  long own_threads_[16] = {};
  int own_thread_count_ = 0;
};

// Never destroyed: the default pool's callbacks and the handler use it until the process ends.
fuzz_state* state = nullptr;

node_record& record(long id) { return state->nodes_[static_cast<std::size_t>(id)]; }

class live_object {
 public:
  live_object() noexcept { add(); }
  live_object(const live_object&) noexcept { add(); }
  live_object(live_object&&) noexcept { add(); }
  live_object& operator=(const live_object&) = default;
  live_object& operator=(live_object&&) = default;
  // relaxed: read only after pool destruction and wait(), which synchronise with every thread.
  ~live_object() { state->live_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  static void add() noexcept { state->live_.fetch_add(1, std::memory_order_relaxed); }
};

struct result {
  live_object live_;
  long value_;
};

struct std_error : std::runtime_error {
  std_error(std::uint32_t input, long id)
      : std::runtime_error("fuzz_ops"), input_(input), id_(id) {}
  std::uint32_t input_;
  long id_;
};
struct odd_error {
  std::uint32_t input_;
  long id_;
};

// The id in `e` (> 0: a node's or a callback's exception; 0: cancelled; -1: anything else),
// and the input it was thrown in.
long exception_id(const std::exception_ptr& e, std::uint32_t& input) {
  input = state->input_.load();
  try {
    std::rethrow_exception(e);
  } catch (const std_error& x) {
    input = x.input_;
    return x.id_;
  } catch (const odd_error& x) {
    input = x.input_;
    return x.id_;
  } catch (const bg::cancelled&) {
    return 0;
  } catch (...) {
    return -1;
  }
}

// Counts one observation or report of the task or callback exception `id`.
void hit(long id, std::uint32_t input) {
  check(input == state->input_.load(), "an exception is seen during the input that threw it",
        "id %ld from input %u seen in input %u", id, input, state->input_.load());
  if (id >= callback_error_base && id < callback_error_base + max_callback_errors) {
    state->callback_error_hits_[static_cast<std::size_t>(id - callback_error_base)].fetch_add(1);
  } else if (id > 0 && id < max_nodes) {
    record(id).hits_.fetch_add(1);
  } else {
    check(false, "only exceptions thrown by tasks or callbacks are reported",
          "unexpected exception (id %ld)", id);
  }
}

void on_unobserved(const std::exception_ptr& e) {
  std::uint32_t input = 0;
  const long id = exception_id(e, input);
  check(id != 0, "a cancellation is never reported as unobserved", "cancelled reported");
  hit(id, input);
}

// A fresh node id (a root if `parent` is 0), or 0 once they are exhausted.
long new_node(long parent) {
  const long id = state->next_node_.fetch_add(1);
  if (id >= max_nodes) return 0;
  node_record& n = record(id);
  n.parent_ = parent;
  n.chain_ = parent == 0 ? id : record(parent).chain_.load();
  if (parent != 0) {  // a continuation runs on its antecedent's pool
    n.pool_ = record(parent).pool_.load();
    n.generation_ = record(parent).generation_.load();
  }
  return id;
}

[[noreturn]] void throw_for(long node, bool std_type) {
  record(node).threw_ = true;
  if (std_type) throw std_error(state->input_.load(), node);
  throw odd_error{state->input_.load(), node};
}

// Throws a fresh callback exception, unless they are exhausted.
void throw_from_callback(bool std_type) {
  const long c = state->next_callback_error_.fetch_add(1);
  if (c >= max_callback_errors) return;
  if (std_type) throw std_error(state->input_.load(), callback_error_base + c);
  throw odd_error{state->input_.load(), callback_error_base + c};
}

// A callback of mode 1..3 (see the table at the top); also checks what a failed outcome
// carries.
void callback_body(const bg::outcome& o, int mode) {
  if (o.failed()) {
    std::uint32_t input = 0;
    const long id = exception_id(o.exception(), input);
    check(id > 0 && id < max_nodes && record(id).threw_,
          "a failed outcome carries the exception its task threw", "id %ld", id);
  }
  switch (mode) {
    case 1:
      if (o.failed()) throw_from_callback(true);
      break;
    case 2:
      throw_from_callback(false);
      break;
    case 3:
      if (o.cancelled()) throw_from_callback(true);
      break;
    default:
      break;
  }
}

// A splitmix32-style source of choices, seeded from the input, for nested work.
class choices {
 public:
  explicit choices(std::uint32_t seed) : x_(seed) {}
  std::uint32_t next() {
    std::uint32_t z = (x_ += 0x9e3779b9u);
    z = (z ^ (z >> 16)) * 0x85ebca6bu;
    z = (z ^ (z >> 13)) * 0xc2b2ae35u;
    return z ^ (z >> 16);
  }
  bool coin() { return (next() & 1) != 0; }

 private:
  std::uint32_t x_;
};

// A pool a task may submit to, with the counter of submissions its first callback checks, its
// index (3: the default pool) and its generation.
struct pool_ref {
  bg::pool* pool_ = nullptr;
  std::atomic<long>* submissions_ = nullptr;
  bool default_ = false;
  int index_ = default_index;
  unsigned generation_ = 0;
  std::atomic<bool>* resized_ = nullptr;  // an own pool's: set when one of its tasks resizes it
};

pool_ref default_ref() {
  return pool_ref{&bg::default_pool(), &state->default_submissions_, true, default_index, 0};
}

// Whether the pool that `node` runs on was shut down with cancel_pending (or is being): then
// it may be cancelled with no cancel() of its own.
bool pool_cancel_shut(long node) {
  const node_record& n = record(node);
  const int k = n.pool_;
  if (k < 0 || k >= pool_count) return false;
  const unsigned g = n.generation_ % 256;
  return ((state->cancel_shut_[k][g / 64].load() >> (g % 64)) & 1) != 0;
}

bg::future<result> submit(pool_ref target, long node, int kind, std::uint32_t seed, int depth,
                          bool via_task);
bg::future<result> add_then(pool_ref self, bg::future<result>& f, long& leaf, int kind, bool rvalue,
                            std::uint32_t seed, int depth);

void check_value(const result& r, long node) {
  check(r.value_ == node, "a future's value is its own task's", "value %ld for node %ld", r.value_,
        node);
  check(record(node).ran_ == 1, "a task with a value ran once", "node %ld ran %d", node,
        record(node).ran_.load());
}

// Waits for `f` with get() (mode 0), std::move(f).get() (1) or exception() (2), checks its
// outcome and counts the observation of its exception. `leaf` is the node that made `f`.
void seen_exception(const std::exception_ptr& e, long leaf);

void observe(bg::future<result>& f, long leaf, int mode) {
  std::exception_ptr e;
  if (mode == 2) {
    e = f.exception();
    if (!e) {
      check_value(f.get(), leaf);
      return;
    }
  } else {
    try {
      if (mode == 1) {
        const result r = std::move(f).get();
        check_value(r, leaf);
      } else {
        check_value(f.get(), leaf);
      }
      return;
    } catch (...) {
      e = std::current_exception();
    }
  }
  seen_exception(e, leaf);
}

// Checks the exception (or `cancelled`) that the future of `leaf` gave an observer, and counts
// the observation.
void seen_exception(const std::exception_ptr& e, long leaf) {
  std::uint32_t input = 0;
  const long id = exception_id(e, input);
  const node_record& n = record(leaf);
  if (id == 0) {
    check(n.ran_ == 0, "a cancelled task did not run", "node %ld", leaf);
    check(record(n.chain_).chain_cancelled_ || pool_cancel_shut(leaf),
          "a task is cancelled only if a cancel() succeeded or its pool was shut down with "
          "cancel_pending",
          "node %ld of chain %ld", leaf, n.chain_.load());
    return;
  }
  hit(id, input);
  if (id == leaf) {
    check(n.ran_ == 1 && n.threw_, "a task that fails with its exception ran and threw",
          "node %ld ran %d", leaf, n.ran_.load());
  } else {
    check(n.parent_ != 0, "a root fails only with its own exception", "root %ld got %ld's", leaf,
          id);
    check(id < max_nodes && record(id).chain_ == n.chain_,
          "a continuation forwards only its chain's exception", "node %ld got %ld's", leaf, id);
    check(n.ran_ == 0, "a continuation that forwards an exception did not run", "node %ld", leaf);
  }
}

// Kind 4: one or two nested tasks on `self` or the default pool, maybe with a then(), each
// waited for from this task. Kind 7 (`dropped`): one nested task whose future is dropped.
void nested_work(pool_ref self, int depth, std::uint32_t seed, bool dropped) {
  if (depth >= 2) return;
  choices c(seed);
  const int count = dropped ? 1 : 1 + static_cast<int>(c.next() % 2);
  for (int i = 0; i < count; ++i) {
    const pool_ref target = self.pool_ != nullptr && c.coin() ? self : default_ref();
    const long id = new_node(0);
    if (id == 0) return;
    const int kind = static_cast<int>(c.next() % 8);
    bg::future<result> f = submit(target, id, kind, c.next(), depth + 1, c.coin());
    if (dropped) return;
    long leaf = id;
    if (c.coin()) {
      f = add_then(target, f, leaf, static_cast<int>(c.next() % 4), c.coin(), c.next(), depth + 1);
    }
    observe(f, leaf, static_cast<int>(c.next() % 3));
  }
}

result body(pool_ref self, long node, int kind, std::uint32_t seed, int depth) {
  const int ran = record(node).ran_.fetch_add(1);
  check(ran == 0, "a task body runs at most once", "node %ld ran twice", node);
  switch (kind) {
    case 1:
      throw_for(node, true);
    case 2:
      throw_for(node, false);
    case 3:
      pause_for(std::chrono::microseconds(seed % 32));
      break;
    case 4:
      nested_work(self, depth, seed, false);
      break;
    case 5:
      if (self.default_) {
        bg::n = 1 + seed % 8;
      } else if (self.pool_ != nullptr) {
        if (self.resized_ != nullptr) self.resized_->store(true);
        self.pool_->resize(1 + seed % 8);
      }
      break;
    case 6:
      if (self.pool_ != nullptr) {
        bool threw = false;
        try {
          self.pool_->wait();
        } catch (const std::logic_error&) {
          threw = true;
        }
        check(threw, "wait() from one of the pool's own tasks throws logic_error", "node %ld",
              node);
      }
      break;
    case 7:
      nested_work(self, depth, seed, true);
      break;
    default:
      break;
  }
  record(node).succeeded_ = true;
  return result{live_object{}, node};
}

// A then() continuation's body: `r` is its antecedent's value.
result continuation_body(const result& r, pool_ref self, long node, int kind, std::uint32_t seed,
                         int depth) {
  const int ran = record(node).ran_.fetch_add(1);
  check(ran == 0, "a task body runs at most once", "then-node %ld ran twice", node);
  const long parent = record(node).parent_;
  check(r.value_ == parent, "a continuation receives its antecedent's value",
        "then-node %ld got %ld, antecedent %ld", node, r.value_, parent);
  switch (kind) {
    case 1:
      throw_for(node, true);
    case 2:
      throw_for(node, false);
    case 3:
      nested_work(self, depth, seed, false);
      break;
    default:
      break;
  }
  record(node).succeeded_ = true;
  return result{live_object{}, node};
}

bg::future<result> submit(pool_ref target, long node, int kind, std::uint32_t seed, int depth,
                          bool via_task) {
  record(node).pool_ = target.index_;
  record(node).generation_ = target.generation_;
  bg::future<result> f;
  if (via_task) {
    auto fn = [target, node, kind, depth, l = live_object{}](std::uint32_t s) {
      return body(target, node, kind, s, depth);
    };
    f = target.default_ ? bg::task(std::move(fn))(seed) : target.pool_->task(std::move(fn))(seed);
  } else {
    auto fn = [target, node, kind, depth](std::uint32_t s, const live_object&) {
      return body(target, node, kind, s, depth);
    };
    f = target.default_ ? bg::run(fn, seed, live_object{})
                        : target.pool_->run(fn, seed, live_object{});
  }
  record(node).submitted_ = true;
  target.submissions_->fetch_add(1);
  return f;
}

// Appends a continuation to `f` (on the rvalue if `rvalue`); `leaf` is f's node and becomes the
// continuation's. `self` is the pool it runs on, or null if it must not use it. Lets then()'s
// exceptions through; then `leaf` is unchanged.
bg::future<result> add_then(pool_ref self, bg::future<result>& f, long& leaf, int kind, bool rvalue,
                            std::uint32_t seed, int depth) {
  const long id = new_node(leaf);
  if (id == 0) return f;
  bg::future<result> next;
  if (rvalue) {
    next = std::move(f).then([self, id, kind, seed, depth, l = live_object{}](result&& r) {
      const result mine = std::move(r);
      return continuation_body(mine, self, id, kind, seed, depth);
    });
  } else {
    next = f.then([self, id, kind, seed, depth, l = live_object{}](const result& r) {
      return continuation_body(r, self, id, kind, seed, depth);
    });
  }
  record(id).submitted_ = true;
  leaf = id;
  return next;
}

// Op 15: a task that runs until stopped (its first parameter is a std::stop_token), then
// returns its id or throws it.
result looper_body(std::stop_token st, long node, bool throws) {
  const int ran = record(node).ran_.fetch_add(1);
  check(ran == 0, "a task body runs at most once", "stop-token task %ld ran twice", node);
  while (!st.stop_requested()) std::this_thread::yield();
  record(node).saw_stop_ = true;
  if (throws) throw_for(node, true);
  record(node).succeeded_ = true;
  return result{live_object{}, node};
}

bg::future<result> submit_looper(pool_ref target, long node, bool throws) {
  record(node).pool_ = target.index_;
  record(node).generation_ = target.generation_;
  record(node).looper_ = true;
  auto fn = [throws, l = live_object{}](std::stop_token st, long id) {
    return looper_body(std::move(st), id, throws);
  };
  bg::future<result> f = target.pool_->run(fn, node);  // a stop token first, then an argument
  record(node).submitted_ = true;
  target.submissions_->fetch_add(1);
  return f;
}

// Op 17: f(x) for a map() element x.
long element_call(long x) {
  node_record& n = record(x);
  const int ran = n.ran_.fetch_add(1);
  check(ran == 0, "map() calls f once per element", "element %ld called twice", x);
  if (n.plan_throw_) throw_for(x, (x & 1) != 0);
  n.succeeded_ = true;
  return 3 * x + 1;
}

// The outcome of a finished future, read without observing it: -1 a value, 0 cancelled, else
// its exception's id.
template <class T>
long peek_outcome(const bg::future<T>& f) {
  auto* s = bg::detail::future_access::state(f);
  std::uint32_t input = 0;
  switch (s->phase()) {
    case bg::detail::st_failed:
      return exception_id(s->error_, input);
    case bg::detail::st_cancelled:
      return 0;
    default:
      return -1;
  }
}

// clang 14 cannot compile a coroutine with this target's flags (-fsanitize=fuzzer-no-link with
// UBSan's -fsanitize=function: "error: Cannot represent a difference across sections"), so that
// one check is off for the coroutine.
#if defined(__clang__)
#define FUZZ_NO_SANITIZE_FUNCTION [[clang::no_sanitize("function")]]
#else
#define FUZZ_NO_SANITIZE_FUNCTION
#endif

// Op 18: a coroutine (its body runs on the default pool) that maybe moves itself onto a pool,
// co_awaits `awaited` (the future of `leaf`), and returns its own id or throws it. Nothing is
// written inside a co_await expression but the awaited object (a g++ 12 bug).
FUZZ_NO_SANITIZE_FUNCTION bg::future<result> fuzz_coroutine(bg::future<result> awaited, long leaf,
                                                            long id, pool_ref hop, int mode,
                                                            live_object keep) {
  const int ran = record(id).ran_.fetch_add(1);
  check(ran == 0, "a coroutine's body starts once", "coroutine %ld", id);
  if ((mode & 1) != 0) {
    const bg::resume_on there(*hop.pool_);
    co_await there;
    check(bg::this_pool() != nullptr, "after resume_on(), a coroutine runs on a pool", "%ld", id);
  }
  try {
    if ((mode & 2) != 0) {
      const result r = co_await std::move(awaited);
      check_value(r, leaf);
    } else {
      const result r = co_await awaited;
      check_value(r, leaf);
    }
  } catch (...) {
    seen_exception(std::current_exception(), leaf);
  }
  (void)keep;
  if ((mode & 4) != 0) throw_for(id, false);
  record(id).succeeded_ = true;
  co_return result{live_object{}, id};
}

// The pools a forked child checks (op 20).
struct forked_pools {
  bg::pool* pools_[pool_count + 1] = {};
  int count_ = 0;
};

// The stacks of process `pid` (gdb's "thread apply all bt"), or "" if there is no gdb.
std::string stacks_of(pid_t pid) {
  char command[160];
  std::snprintf(command, sizeof command,
                "gdb -p %d -batch -ex 'thread apply all bt' </dev/null 2>/dev/null",
                static_cast<int>(pid));
  std::string out;
  if (FILE* f = popen(command, "r")) {
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
    pclose(f);
  }
  return out;
}

// Forks; the child checks that each of `p` is renewed and _exit()s (0, or k + 1 for pool k: see
// op_fork()). Returns the child's status, or 99 << 8 if fork() failed. A child that has not
// ended after 10 s is killed, its stacks printed, and -1 returned (a violation). Neither the
// child nor the library's child handler allocates (src/fork.cpp), so not even an allocator
// whose locks a parent's thread held at the fork (AddressSanitizer's: it does not hold them
// across fork()) can block it; before the handler was made so, children hung there.
int fork_and_check(const forked_pools& p) {
  const pid_t pid = fork();
  if (pid == 0) {
    for (int k = 0; k < p.count_; ++k) {
      const bg::pool_stats st = p.pools_[k]->stats();
      if (st.threads != 0 || st.busy != 0 || st.queued != 0) _exit(k + 1);
    }
    _exit(0);
  }
  if (pid < 0) return 99 << 8;
  int status = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  const std::string stacks = stacks_of(pid);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  std::fprintf(stderr, "fuzz_ops: forked child %d had not ended in 10 s; killed. Stacks:\n%s\n",
               static_cast<int>(pid), stacks.empty() ? "(no gdb)" : stacks.c_str());
  return -1;
}

// One input's run: its pools, its kept futures, the decoder.
class session {
 public:
  session(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {
    const std::uint8_t sizes = next_byte();
    for (int k = 0; k < pool_count; ++k) {
      pools_[k].size_ = 1 + ((static_cast<std::size_t>(sizes) >> (2 * k)) & 3);
    }
  }

  void run() {
    for (std::size_t op = 0; op < max_ops && pos_ < size_; ++op) {
      const std::uint8_t b = next_byte();
      const int code = b >= 254 ? 20 + (b - 254) : b < 192 ? b % 12 : 12 + (b - 192) % 8;
      try {
        step(code);
      } catch (const std::exception& e) {
        check(false, "an operation throws only what its contract says", "op %d threw %s", code,
              e.what());
      } catch (...) {
        check(false, "an operation throws only what its contract says", "op %d threw", code);
      }
    }
  }

  // Waits for everything, drops every future, destroys the pools and checks the invariants.
  void finish() {
    for (int k = 0; k < pool_count; ++k) {
      if (pools_[k].pool_) {
        pools_[k].pool_->get().wait();
        check_kept_done(k, "after pool::wait()");
      }
    }
    bg::wait();
    check_kept_done(default_index, "after background::wait()");
    for (kept& s : slots_) s = kept{};
    for (int k = 0; k < pool_count; ++k) release_pool(k);
    bg::wait();
    check(state->default_callback_calls_ == state->default_submissions_,
          "a callback runs once per submission", "default pool: %ld calls, %ld submissions",
          state->default_callback_calls_.load(), state->default_submissions_.load());
    const long live = state->live_.load();
    check(live == 0, "every object a task captured or returned is freed",
          "%ld live objects left after the pools were destroyed and the futures dropped", live);
    check_records();
    state->default_callback_mode_ = 0;
    settle(bg::default_pool(), default_size, default_index);
  }

 private:
  struct kept {
    bg::future<result> future_;
    bg::future<result> shadow_;  // a copy, never observed: only delays the last drop
    long leaf_ = 0;
    int pool_ = 0;
    unsigned generation_ = 0;
  };

  struct own_pool {
    std::unique_ptr<counted_pool> pool_;
    std::size_t size_ = 1;
    unsigned generation_ = 0;
    int callbacks_ = 0;                 // callbacks registered besides the counting one
    std::atomic<bool> resized_{false};  // by an op or by one of its tasks
    std::atomic<long> submissions_{0};
  };

  std::uint8_t next_byte() { return pos_ < size_ ? data_[pos_++] : std::uint8_t{0}; }

  pool_ref pool_at(int k) {
    if (k == default_index) return default_ref();
    own_pool& p = pools_[k];
    if (!p.pool_) {
      p.submissions_ = 0;
      p.callbacks_ = 0;
      p.resized_ = false;
      std::vector<std::unique_ptr<counted_pool>>& spares = state->spares_[p.size_ - 1];
      if (spares.empty()) {
        p.pool_ = std::make_unique<counted_pool>(p.size_);
      } else {
        p.pool_ = std::move(spares.back());
        spares.pop_back();
      }
    }
    return ref_of(k, p.generation_);
  }

  // Own pool k as a task of generation `g` sees it (null once that generation is destroyed).
  pool_ref ref_of(int k, unsigned g) {
    own_pool& p = pools_[k];
    if (!p.pool_ || g != p.generation_) return pool_ref{};
    return pool_ref{&p.pool_->get(), &p.submissions_, false, k, g, &p.resized_};
  }

  unsigned generation(int k) const { return k == default_index ? 0 : pools_[k].generation_; }

  // Whether slot `s` holds a future of a pool that has been destroyed since.
  bool stale(const kept& s) const {
    return s.pool_ != default_index &&
           (s.generation_ != pools_[s.pool_].generation_ || !pools_[s.pool_].pool_);
  }

  void destroy_pool(int k) {
    own_pool& p = pools_[k];
    if (!p.pool_) return;
    const long calls = p.pool_->destroy();
    p.pool_.reset();
    check_kept_done(k, "after the pool was destroyed");
    check(calls == p.submissions_, "a callback runs once per submission",
          "pool %d: %ld calls, %ld submissions", k, calls, p.submissions_.load());
    ++p.generation_;
  }

  // At the end of the input, with its futures dropped: keeps own pool k as a spare for a later
  // input if it can be made as this input got it (no callback of its own; back to its first
  // size, unless that needs new threads), else destroys it. A later input sees no difference
  // but the threads it does not start.
  void release_pool(int k) {
    own_pool& p = pools_[k];
    if (!p.pool_) return;
    std::vector<std::unique_ptr<counted_pool>>& spares = state->spares_[p.size_ - 1];
    bg::pool& pool = p.pool_->get();
    if (p.callbacks_ != 0 || spares.size() >= pool_count || pool.size() < p.size_) {
      destroy_pool(k);
      return;
    }
    pool.wait();
    check_kept_done(k, "after the pool was released");
    check(p.pool_->calls() == p.submissions_, "a callback runs once per submission",
          "pool %d: %ld calls, %ld submissions", k, p.pool_->calls(), p.submissions_.load());
    if (p.resized_) settle(pool, p.size_, k);
    const bg::pool_stats st = pool.stats();
    check(st.busy == 0 && st.queued == 0, "an idle pool has no busy worker and nothing queued",
          "pool %d: busy %zu queued %zu", k, st.busy, st.queued);
    p.pool_->reset_calls();
    spares.push_back(std::move(p.pool_));
    ++p.generation_;
  }

  // Resizes an idle pool (k; 3: the default pool) down to `size` and lets the threads above it
  // leave, so that a second resize joins them: what they allocated is freed in the input that
  // started them, and libFuzzer sees as many frees as mallocs (else it reruns the input under
  // LeakSanitizer).
  static void settle(bg::pool& pool, std::size_t size, int k) {
    pool.resize(size);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::size_t threads = pool.stats().threads;
    while (threads != size && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
      threads = pool.stats().threads;
    }
    check(threads == size, "once idle, a pool has as many threads as its size",
          "pool %d: %zu threads, size %zu", k, threads, size);
    pool.resize(size);  // joins the threads that left
  }

  void check_kept_done(int k, const char* when) {
    for (std::size_t i = 0; i < slot_count; ++i) {
      const kept& s = slots_[i];
      if (!s.future_.valid() || s.pool_ != k || s.generation_ != generation(k)) continue;
      check(s.future_.done(), "no future of a pool is pending once it is idle",
            "slot %zu (node %ld, pool %d) pending %s", i, s.leaf_, k, when);
    }
  }

  void step(int code) {
    switch (code) {
      case 0:
        op_submit();
        break;
      case 1:
        op_then();
        break;
      case 2: {
        const kept& s = slots_[next_byte() & 7];
        if (!s.future_.valid()) break;
        if (s.future_.cancel()) {
          record(s.leaf_).cancel_ok_ = true;
          record(record(s.leaf_).chain_).chain_cancelled_ = true;
          check(s.future_.done(), "a cancelled future is done", "node %ld", s.leaf_);
          check(!s.future_.cancel(), "cancel() succeeds once", "node %ld", s.leaf_);
        }
        break;
      }
      case 3: {
        const std::uint8_t a = next_byte();
        kept& s = slots_[a & 7];
        if ((a & 8) != 0) {
          s.shadow_ = {};
        } else {
          s = kept{};
        }
        break;
      }
      case 4: {
        const std::uint8_t a = next_byte();
        kept& s = slots_[a & 7];
        if (!s.future_.valid()) break;
        observe(s.future_, s.leaf_, (a >> 3) % 3);
        s = kept{};
        break;
      }
      case 5: {
        const std::uint8_t a = next_byte();
        const int k = a & 3;
        const std::size_t size_code = static_cast<std::size_t>(a) >> 2;
        if (k == default_index) {
          bg::n = 1 + size_code % 8;
        } else {
          const pool_ref ref = pool_at(k);
          ref.resized_->store(true);  // kept as a spare only once back at its first size
          ref.pool_->resize(size_code < 48 ? 1 + size_code % 16 : 1 + size_code);
        }
        break;
      }
      case 6: {
        const int k = next_byte() & 3;
        if (k == default_index) {
          bg::wait();
        } else {
          pool_at(k).pool_->wait();
        }
        check_kept_done(k, "after wait()");
        break;
      }
      case 7: {
        const std::uint8_t a = next_byte();
        const int k = a % pool_count;
        destroy_pool(k);
        pools_[k].size_ = 1 + ((static_cast<std::size_t>(a) >> 2) & 3);
        break;
      }
      case 8:
        op_callback();
        break;
      case 9:
        op_timed_wait();
        break;
      case 10: {
        kept& s = slots_[next_byte() & 7];
        s.shadow_ = s.future_;
        break;
      }
      case 11:
        pause_for(std::chrono::microseconds(next_byte() % 32));
        break;
      case 12:
        op_when_all();
        break;
      case 13:
        op_when_any();
        break;
      case 14:
        op_as_completed();
        break;
      case 15:
        op_stop_token();
        break;
      case 16:
        op_shutdown();
        break;
      case 17:
        op_map();
        break;
      case 18:
        op_coroutine();
        break;
      case 19:
        op_waits();
        break;
      case 20:
        op_fork();
        break;
      default:
        op_signal();
        break;
    }
  }

  // Op 20: fork() while the pools work, from the fuzzer's thread or from a task. The child
  // checks that each pool it got is renewed (no thread, nothing queued or running: the parent's
  // tasks stay the parent's) and _exit()s at once: under AddressSanitizer a child of a
  // multi-threaded process must not start threads or allocate much (its allocator's locks are
  // not held across fork()), so it only reads stats(), which neither allocates nor starts one.
  void op_fork() {
    const std::uint8_t a = next_byte();
    // A fork() costs ~10 ms here (page tables of a big process, and copy-on-write faults after
    // it), as much as two whole inputs: rare, and at most one per input.
    if ((a & 0xf0) != 0xf0 || forked_) return;
    forked_ = true;
    forked_pools pools;
    for (int k = 0; k < pool_count; ++k) {
      if (pools_[k].pool_) pools.pools_[pools.count_++] = &pools_[k].pool_->get();
    }
    pools.pools_[pools.count_++] = &bg::default_pool();
    int status = 0;
    if ((a & 1) != 0) {
      const pool_ref target = pool_at((a >> 1) & 3);
      auto fn = [pools] { return fork_and_check(pools); };
      bg::future<int> f = target.default_ ? bg::run(fn) : target.pool_->run(fn);
      target.submissions_->fetch_add(1);
      status = f.get();
    } else {
      status = fork_and_check(pools);
    }
    check(status == 0,
          "a forked child gets each pool renewed: no thread, nothing queued or running",
          "child status %#x (exit code k + 1: pool k, 99: fork() failed; -1: hung, stacks "
          "above)",
          status);
  }

  // Op 21: SIGURG sent to the process while the pools work, with the fuzzer's thread blocking it
  // for a%32 us: the kernel gives it to a thread that does not block it, and that is never a
  // worker (they start with the asynchronous signals blocked). Then it is handled, once.
  void op_signal() {
    const std::uint8_t a = next_byte();
    const long before = state->signals_.load();
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_sigmask(SIG_BLOCK, &urg, nullptr);
    kill(getpid(), SIGURG);
    pause_for(std::chrono::microseconds(a % 32));
    pthread_sigmask(SIG_UNBLOCK, &urg, nullptr);  // still pending: handled here, now
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (state->signals_.load() == before && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    const long tid = state->signal_tid_.load();
    check(state->signals_.load() == before + 1, "a signal sent to the process is handled once",
          "%ld times", state->signals_.load() - before);
    check(std::find(state->own_threads_, state->own_threads_ + state->own_thread_count_, tid) !=
              state->own_threads_ + state->own_thread_count_,
          "a signal sent to the process is handled on one of its own threads, never a worker",
          "handled on thread %ld", tid);
  }

  // The kept futures of the slots that mask `m` selects (the non-empty ones), in slot order.
  struct selection {
    std::vector<std::size_t> slots;
    std::vector<bg::future<result>> futures;
    std::vector<long> leaves;
  };
  selection select(std::uint8_t m) const {
    selection sel;
    for (std::size_t i = 0; i < slot_count; ++i) {
      if (((m >> i) & 1) == 0 || !slots_[i].future_.valid()) continue;
      sel.slots.push_back(i);
      sel.futures.push_back(slots_[i].future_);
      sel.leaves.push_back(slots_[i].leaf_);
    }
    return sel;
  }
  // Empties the selected slots: their futures now belong to the operation.
  void take(const selection& sel) {
    for (std::size_t i : sel.slots) slots_[i] = kept{};
  }
  static std::size_t index_in(const selection& sel, const bg::future<result>& f) {
    std::size_t i = 0;
    while (i < sel.futures.size() && bg::detail::future_access::state(sel.futures[i]) !=
                                         bg::detail::future_access::state(f)) {
      ++i;
    }
    return i;
  }

  void op_when_all() {
    const std::uint8_t m = next_byte();
    const std::uint8_t s = next_byte();
    const selection sel = select(m);
    const std::size_t n = sel.futures.size();
    bg::future<std::vector<result>> all = bg::when_all(sel.futures);
    const bool keep = (s & 1) != 0;
    if (keep) {  // when_all() may observe an input's exception, and its slot may again
      for (long leaf : sel.leaves) record(record(leaf).chain_).fanouts_.fetch_add(1);
    }
    const bool self_cancelled = (s & 2) != 0 && all.cancel();
    std::exception_ptr e;
    const std::vector<result>* values = nullptr;
    std::vector<result> moved;
    const int mode = (s >> 2) % 3;
    if (mode == 2) {
      e = all.exception();
      if (!e) values = &all.get();
    } else {
      try {
        if (mode == 1) {
          moved = std::move(all).get();
          values = &moved;
        } else {
          values = &all.get();
        }
      } catch (...) {
        e = std::current_exception();
      }
    }
    if (self_cancelled) {
      std::uint32_t input = 0;
      check(e != nullptr && exception_id(e, input) == 0, "a cancelled when_all() is cancelled",
            "it was not");
    } else {
      std::size_t first = n;
      for (std::size_t i = 0; i < n; ++i) {
        check(sel.futures[i].done(), "when_all() is ready once every input is done",
              "input %zu of %zu (node %ld) is not", i, n, sel.leaves[i]);
        if (first == n && peek_outcome(sel.futures[i]) != -1) first = i;
      }
      if (values != nullptr) {
        check(first == n, "when_all() succeeds only if every input did", "input %zu failed", first);
        check(values->size() == n, "when_all() has a value per input", "%zu of %zu", values->size(),
              n);
        for (std::size_t i = 0; i < std::min(n, values->size()); ++i) {
          check_value((*values)[i], sel.leaves[i]);
        }
      } else {
        std::uint32_t input = 0;
        const long x = exception_id(e, input);
        check(first < n && peek_outcome(sel.futures[first]) == x,
              "when_all() fails as the first failed or cancelled input in input order",
              "it failed with %ld; first failed input %zu of %zu", x, first, n);
        if (first < n) seen_exception(e, sel.leaves[first]);
      }
    }
    all = {};
    if (!keep) take(sel);
  }

  void op_when_any() {
    const std::uint8_t m = next_byte();
    const std::uint8_t s = next_byte();
    const selection sel = select(m);
    const std::size_t n = sel.futures.size();
    if (n == 0) {
      bool threw = false;
      try {
        (void)bg::when_any(sel.futures);
      } catch (const std::invalid_argument&) {
        threw = true;
      }
      check(threw, "when_any() of nothing throws std::invalid_argument", "it did not");
      return;
    }
    bg::future<std::size_t> any = bg::when_any(sel.futures);
    const bool self_cancelled = (s & 2) != 0 && any.cancel();
    try {
      const std::size_t i = any.get();
      check(!self_cancelled, "a cancelled when_any() has no value", "index %zu", i);
      check(i < n && sel.futures[i].done(), "when_any()'s index is of a done input",
            "index %zu of %zu", i, n);
    } catch (const bg::cancelled&) {
      check(self_cancelled, "when_any() is cancelled only by its own cancel()", "it was");
    }
    any = {};
    if ((s & 1) == 0) take(sel);
  }

  void op_as_completed() {
    const std::uint8_t m = next_byte();
    const std::uint8_t s = next_byte();
    const selection sel = select(m);
    const std::size_t n = sel.futures.size();
    const bool keep = (s & 1) != 0;
    const bool timed = (s & 2) != 0;
    std::vector<char> seen(n, 0);
    std::size_t count = 0;
    bool timed_out = false;
    const auto yielded = [&](const bg::future<result>& f) {
      const std::size_t i = index_in(sel, f);
      check(i < n && seen[i] == 0, "as_completed() yields each input once",
            "input %zu of %zu, yielded %zu so far", i, n, count);
      check(f.done(), "as_completed() yields done futures", "input %zu", i);
      if (i >= n) return;
      seen[i] = 1;
      ++count;
      if (!keep) {
        bg::future<result> copy = f;
        observe(copy, sel.leaves[i], static_cast<int>(count % 3));
      }
    };
    try {
      if (timed) {
        auto range = bg::as_completed(sel.futures, std::chrono::microseconds((s >> 2) % 64));
        for (const bg::future<result>& f : range) yielded(f);
      } else {
        auto range = bg::as_completed(sel.futures);
        for (const bg::future<result>& f : range) yielded(f);
      }
    } catch (const bg::timeout_error&) {
      timed_out = true;
    }
    check(timed || !timed_out, "only a timed as_completed() throws timeout_error", "it did");
    check(timed_out || count == n, "as_completed() yields every input", "%zu of %zu", count, n);
    if (!keep) take(sel);  // the ones not yielded are dropped unobserved: reported if failed
  }

  void op_stop_token() {
    const std::uint8_t a = next_byte();
    const std::uint8_t s = next_byte();
    const long id = new_node(0);
    if (id == 0) return;
    bg::future<result> f = submit_looper(pool_at(a & 3), id, (a & 4) != 0);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(s % 64);
    while (record(id).ran_ == 0 && !f.done() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    if (f.cancel()) {
      record(id).cancel_ok_ = true;
      record(id).chain_cancelled_ = true;
      check(f.done() && record(id).ran_ == 0, "a cancelled stop-token task never runs", "%ld", id);
    }
    check(!f.cancel(), "cancel() of a running or cancelled task returns false", "node %ld", id);
    observe(f, id, (s >> 6) % 3);
    check(record(id).ran_ == 0 || record(id).saw_stop_,
          "cancel() requests stop on a running stop-token task", "node %ld", id);
  }

  void op_shutdown() {
    const std::uint8_t a = next_byte();
    const int k = a % pool_count;
    const bool cancel_pending = ((a >> 2) & 1) != 0;
    const pool_ref ref = pool_at(k);
    own_pool& p = pools_[k];
    bg::future<result> looper;
    long looper_id = 0;
    if (cancel_pending && ((a >> 3) & 1) != 0 && (looper_id = new_node(0)) != 0) {
      looper = submit_looper(ref, looper_id, false);
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (record(looper_id).ran_ == 0 && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::yield();
      }
    }
    if (cancel_pending) {
      const unsigned g = p.generation_ % 256;
      state->cancel_shut_[k][g / 64].fetch_or(std::uint64_t{1} << (g % 64));
      ref.pool_->shutdown(bg::cancel_pending);
    } else {
      ref.pool_->shutdown();
    }
    bool threw = false;
    try {
      (void)ref.pool_->run([] {});
    } catch (const bg::shutdown_error&) {
      threw = true;
    }
    check(threw, "a submission after shutdown() throws shutdown_error", "pool %d", k);
    const bg::pool_stats st = ref.pool_->stats();
    check(st.threads == 0 && st.busy == 0 && st.queued == 0,
          "after shutdown(), stats() show no thread, no busy worker, nothing queued",
          "pool %d: threads %zu busy %zu queued %zu", k, st.threads, st.busy, st.queued);
    check_kept_done(k, "after shutdown()");
    if (looper_id != 0) {
      check(looper.done(), "shutdown() returns once every task is done", "stop-token task");
      observe(looper, looper_id, 0);
      check(record(looper_id).ran_ == 0 || record(looper_id).saw_stop_,
            "shutdown(cancel_pending) stops a running stop-token task", "node %ld", looper_id);
    }
    destroy_pool(k);  // only frees it now; checks the callbacks
  }

  void op_map() {
    const std::uint8_t a = next_byte();
    const std::uint8_t s = next_byte();
    const std::size_t n = 1 + (static_cast<std::size_t>(a) >> 2) % 8;
    const std::size_t chunk = 1 + s % 8;
    const std::size_t thrower = (static_cast<std::size_t>(s) >> 3) % 16;
    const bool second = (a & 0x40) != 0;
    std::vector<long> xs;
    for (std::size_t i = 0; i < n; ++i) {
      const long x = new_node(0);
      if (x == 0) return;
      node_record& r = record(x);
      r.element_ = true;
      r.plan_throw_ = i == thrower || (second && i == thrower + 1);
      r.submitted_ = true;
      xs.push_back(x);
    }
    const pool_ref target = pool_at(a & 3);
    // Each chunk is one task, with the pool's callbacks.
    target.submissions_->fetch_add(static_cast<long>((n + chunk - 1) / chunk));
    auto fn = [l = live_object{}](long x) { return element_call(x); };
    auto fe = [l = live_object{}](long x) { (void)element_call(x); };
    std::exception_ptr e;
    std::vector<long> values;
    bool has_values = false;
    const bool cancel = (a & 0x80) != 0;
    bool cancelled = false;
    if ((a & 0x20) != 0) {
      bg::future<void> f =
          target.default_ ? bg::for_each(xs, fe, chunk) : target.pool_->for_each(xs, fe, chunk);
      cancelled = cancel && f.cancel();
      e = f.exception();
    } else {
      bg::future<std::vector<long>> f =
          target.default_ ? bg::map(fn, xs, chunk) : target.pool_->map(fn, xs, chunk);
      cancelled = cancel && f.cancel();
      if ((s >> 7) != 0) {
        e = f.exception();
        if (!e) {
          values = f.get();
          has_values = true;
        }
      } else {
        try {
          values = std::move(f).get();
          has_values = true;
        } catch (...) {
          e = std::current_exception();
        }
      }
    }
    if (!e) {
      check(!has_values || values.size() == n, "map() has a result per element", "%zu of %zu",
            values.size(), n);
      for (std::size_t i = 0; i < n; ++i) {
        const node_record& r = record(xs[i]);
        check(r.ran_ == 1 && !r.plan_throw_, "a map() that succeeds called f once per element",
              "element %ld ran %d", xs[i], r.ran_.load());
        check(!has_values || i >= values.size() || values[i] == 3 * xs[i] + 1,
              "map()'s results are f(x) in input order", "element %zu", i);
      }
      return;
    }
    std::uint32_t input = 0;
    const long x = exception_id(e, input);
    check((x == 0) == cancelled, "a map() is cancelled only by its cancel()", "id %ld", x);
    // Cancelled: the calls that threw were not observed, and must be reported (checked with the
    // records at the end of the input, once every chunk is done).
    if (x == 0) return;
    const bool own = std::find(xs.begin(), xs.end(), x) != xs.end();
    check(own && record(x).threw_, "a map() fails with one of its elements' exceptions", "id %ld",
          x);
    if (own) hit(x, input);
  }

  void op_coroutine() {
    const std::uint8_t a = next_byte();
    kept& sl = slots_[a & 7];
    if (!sl.future_.valid()) return;
    const long id = new_node(0);
    if (id == 0) return;
    const pool_ref hop = pool_at((a >> 4) & 3);
    const int mode = ((a >> 3) & 1) | (((a >> 6) & 1) << 1) | (((a >> 7) & 1) << 2);
    bg::future<result> awaited = std::move(sl.future_);
    const long leaf = sl.leaf_;
    sl = kept{};
    record(id).submitted_ = true;
    bg::future<result> c = fuzz_coroutine(std::move(awaited), leaf, id, hop, mode, live_object{});
    observe(c, id, 0);
  }

  void op_waits() {
    const std::uint8_t m = next_byte();
    const std::uint8_t s = next_byte();
    const selection sel = select(m);
    const std::size_t n = sel.futures.size();
    const auto timeout = std::chrono::microseconds(s % 64);
    if (bg::wait_all(sel.futures, timeout)) {
      for (std::size_t i = 0; i < n; ++i) {
        check(sel.futures[i].done(), "wait_all(fs, timeout) is true only once all are done",
              "input %zu", i);
      }
    }
    if (n == 0) return;
    const std::optional<std::size_t> one = bg::wait_any(sel.futures, timeout);
    check(!one || (*one < n && sel.futures[*one].done()),
          "wait_any(fs, timeout) gives the index of a done input", "%zu of %zu", one.value_or(0),
          n);
    if ((s & 0x40) != 0) {
      const std::size_t i = bg::wait_any(sel.futures);
      check(i < n && sel.futures[i].done(), "wait_any(fs) gives the index of a done input",
            "%zu of %zu", i, n);
      bg::wait_all(sel.futures);
      for (std::size_t j = 0; j < n; ++j) {
        check(sel.futures[j].done(), "wait_all(fs) returns once all are done", "input %zu", j);
      }
    }
  }

  void op_submit() {
    const std::uint8_t a = next_byte();
    const std::uint8_t s = next_byte();
    const int k = a & 3;
    const long id = new_node(0);
    if (id == 0) return;
    const pool_ref target = pool_at(k);
    bg::future<result> f = submit(target, id, (a >> 2) & 7, s, 0, (s & 0x80) != 0);
    if ((s & 0x40) != 0) return;  // fire-and-forget
    slots_[a >> 5] = kept{std::move(f), {}, id, k, generation(k)};
  }

  void op_then() {
    const std::uint8_t a = next_byte();
    const std::uint32_t seed = next_byte();
    const std::size_t i = a & 7;
    kept& s = slots_[i];
    if (!s.future_.valid()) return;
    const int kind = (a >> 3) & 3;
    const bool rvalue = ((a >> 5) & 1) != 0;
    const bool fanout = !rvalue && ((a >> 6) & 1) != 0;
    const bool gone = stale(s);
    const pool_ref self =
        gone ? pool_ref{}
             : (s.pool_ == default_index ? default_ref() : ref_of(s.pool_, s.generation_));
    // Once its pool is gone, the task has finished: read whether it was cancelled (not from the
    // records: a shutdown(cancel_pending) may have cancelled a continuation that was queued
    // only to forward its antecedent's exception).
    const bool was_cancelled = gone && peek_outcome(s.future_) == 0;
    long leaf = s.leaf_;
    bg::future<result> next;
    try {
      next = add_then(self, s.future_, leaf, kind, rvalue, seed, 0);
    } catch (const bg::shutdown_error&) {
      check(gone, "then() throws shutdown_error only once the pool is gone", "node %ld", s.leaf_);
      check(!was_cancelled, "then() on a cancelled task does not throw", "node %ld", s.leaf_);
      return;
    }
    if (leaf == s.leaf_) return;  // node ids exhausted
    if (gone) {
      check(was_cancelled, "then() on a finished task of a destroyed pool throws shutdown_error",
            "node %ld", s.leaf_);
      check(next.done(), "a continuation of a cancelled task is cancelled at once", "node %ld",
            leaf);
    }
    if (fanout) {
      long other = s.leaf_;
      bg::future<result> second;
      try {
        second = add_then(self, s.future_, other, (kind + 1) % 4, false, seed ^ 0x5a, 0);
      } catch (const bg::shutdown_error&) {
        check(false, "then() does not throw where the same then() just succeeded", "node %ld",
              s.leaf_);
      }
      if (other != s.leaf_) {
        record(record(other).chain_).fanouts_.fetch_add(1);
        slots_[(i + 1) & 7] = kept{std::move(second), {}, other, s.pool_, s.generation_};
      }
    }
    s.future_ = std::move(next);
    s.leaf_ = leaf;
  }

  void op_callback() {
    const std::uint8_t a = next_byte();
    const int k = a & 3;
    const int mode = (a >> 2) & 3;
    if (k == default_index) {
      state->default_callback_mode_ = mode;
      return;
    }
    pool_at(k);
    own_pool& p = pools_[k];
    if (p.callbacks_ >= max_callbacks_per_pool) return;
    ++p.callbacks_;
    p.pool_->get().callback([mode](const bg::outcome& o) { callback_body(o, mode); });
  }

  void op_timed_wait() {
    const std::uint8_t a = next_byte();
    const kept& s = slots_[a & 7];
    if (!s.future_.valid()) return;
    const bool before = s.future_.done();
    bool finished = false;
    switch ((a >> 3) & 3) {
      case 0:
        finished = s.future_.wait_for(std::chrono::seconds(0));
        break;
      case 1:
        finished = s.future_.wait_for(std::chrono::milliseconds(-1));
        break;
      case 2:
        finished = s.future_.wait_until(std::chrono::steady_clock::now() - std::chrono::seconds(1));
        break;
      default:
        finished = s.future_.wait_for(std::chrono::microseconds(1));
        break;
    }
    check(!before || finished, "a timed wait on a finished task returns true", "node %ld", s.leaf_);
    check(!finished || s.future_.done(), "a timed wait returns true only once done", "node %ld",
          s.leaf_);
  }

  // The invariants over every record of this input, once everything is finished and freed.
  void check_records() {
    const long nodes = std::min(state->next_node_.load(), max_nodes);
    for (long i = 1; i < nodes; ++i) {
      const node_record& n = record(i);
      if (!n.submitted_) continue;
      const int ran = n.ran_.load();
      check(ran <= 1, "a task body runs at most once", "node %ld ran %d times", i, ran);
      // A task of a pool shut down with cancel_pending may have been cancelled by it.
      const bool shut = pool_cancel_shut(i);
      if (n.element_) {
        // At most once (checked above): calls after a failure are skipped.
      } else if (n.parent_ == 0) {
        check(ran + (n.cancel_ok_ ? 1 : 0) == 1 || (ran == 0 && shut),
              "a task runs exactly once or is cancelled (by cancel() or a shutdown)",
              "node %ld ran %d times, cancelled %d", i, ran, n.cancel_ok_ ? 1 : 0);
        check(!n.looper_ || ran == 0 || n.saw_stop_, "a stop-token task runs until stopped",
              "node %ld", i);
      } else {
        const node_record& p = record(n.parent_);
        const int expected = p.succeeded_ && !n.cancel_ok_ ? 1 : 0;
        check(ran == expected || (ran == 0 && shut),
              "a continuation runs once if its antecedent succeeded and it was not cancelled, "
              "else never",
              "then-node %ld ran %d; antecedent %ld succeeded %d; cancelled %d", i, ran,
              n.parent_.load(), p.succeeded_ ? 1 : 0, n.cancel_ok_ ? 1 : 0);
      }
      check(!n.succeeded_ || (ran == 1 && !n.threw_), "a task succeeds or throws",
            "node %ld ran %d threw %d", i, ran, n.threw_ ? 1 : 0);
      const int hits = n.hits_.load();
      if (n.threw_) {
        const int branches = 1 + record(n.chain_).fanouts_.load();
        check(hits >= 1, "a task's exception is never lost", "node %ld's seen %d times", i, hits);
        check(hits <= branches, "a task's exception is seen once per branch of its chain",
              "node %ld's seen %d times, chain %ld has %d branches", i, hits, n.chain_.load(),
              branches);
      } else {
        check(hits == 0, "only thrown exceptions are seen", "node %ld did not throw, seen %d", i,
              hits);
      }
    }
    const long errors = std::min(state->next_callback_error_.load(), max_callback_errors);
    for (long i = 0; i < errors; ++i) {
      const int hits = state->callback_error_hits_[static_cast<std::size_t>(i)].load();
      check(hits == 1, "a callback's exception is reported exactly once",
            "callback exception %ld reported %d times", i, hits);
    }
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  own_pool pools_[pool_count];
  kept slots_[slot_count];
  bool forked_ = false;  // op 20 forked in this input
};

// Clears the records the previous input used and starts a new input number.
void begin_input() {
  const long nodes = std::min(state->next_node_.load(), max_nodes);
  for (long i = 0; i < nodes; ++i) {
    node_record& n = record(i);
    n.ran_ = 0;
    n.hits_ = 0;
    n.threw_ = false;
    n.succeeded_ = false;
    n.cancel_ok_ = false;
    n.submitted_ = false;
    n.parent_ = 0;
    n.chain_ = 0;
    n.fanouts_ = 0;
    n.chain_cancelled_ = false;
    n.pool_ = default_index;
    n.generation_ = 0;
    n.looper_ = false;
    n.saw_stop_ = false;
    n.element_ = false;
    n.plan_throw_ = false;
  }
  for (auto& words : state->cancel_shut_) {
    for (auto& w : words) w = 0;
  }
  state->next_node_ = 1;
  const long errors = std::min(state->next_callback_error_.load(), max_callback_errors);
  for (long i = 0; i < errors; ++i) state->callback_error_hits_[static_cast<std::size_t>(i)] = 0;
  state->next_callback_error_ = 0;
  state->input_.fetch_add(1);
}

// Op 21's handler of SIGURG: async-signal-safe (atomics and a system call).
void on_sigurg(int) {
  state->signal_tid_.store(static_cast<long>(syscall(SYS_gettid)));
  state->signals_.fetch_add(1);
}

void initialize() {
  state = new fuzz_state;
  // Before the library starts a thread: the threads there are now are the program's own.
  if (DIR* d = opendir("/proc/self/task")) {
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.' && state->own_thread_count_ < 16) {
        state->own_threads_[state->own_thread_count_++] = std::atol(e->d_name);
      }
    }
    closedir(d);
  }
  struct sigaction sa = {};
  sa.sa_handler = on_sigurg;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, nullptr);
  bg::on_error(on_unobserved);
  bg::pool& p = bg::default_pool();
  p.callback([](const bg::outcome&) { state->default_callback_calls_.fetch_add(1); });
  p.callback([](const bg::outcome& o) { callback_body(o, state->default_callback_mode_.load()); });
  bg::n = default_size;
}

}  // namespace

// The entry point libFuzzer calls once per input; its name is libFuzzer's.
extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
  static const bool initialized = (initialize(), true);
  (void)initialized;
  begin_input();
  session s(data, size);
  s.run();
  s.finish();
  return 0;
}
