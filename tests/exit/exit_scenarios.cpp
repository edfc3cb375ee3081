// exit_scenarios: the child program of exit_test and cpu_count_test. Each scenario, named by
// argv[1], ends the process the way a user's program might (main returns with tasks queued, a
// task calls std::exit, a pool is deleted by its own task), or changes the process itself in a
// way a test must not do to its own (its CPU affinity, its thread limit), and writes one line
// per event to stdout, so that the parent can tell from the lines and the exit status whether a
// queued task was lost. A hang is the parent's to detect.
#include <grp.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "background/background.hpp"

namespace {

// Each scenario queues this many tasks that write "task <i>"; the parent checks for all of them.
constexpr int task_count = 200;

// One line on stdout in one write(2): lines from several threads never interleave (a pipe write
// of up to PIPE_BUF bytes is atomic), and none waits in a stdio buffer when the process ends.
void say(const std::string& line) {
  const std::string out = line + '\n';
  std::size_t written = 0;
  while (written < out.size()) {
    const ssize_t w = ::write(STDOUT_FILENO, out.data() + written, out.size() - written);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::abort();
    }
    written += static_cast<std::size_t>(w);
  }
}

std::string task_line(int i) { return "task " + std::to_string(i); }

// Namespace-scope latches are constant-initialized and trivially destructible, so they are
// there for tasks that still run during static destruction, whichever static goes first.
std::latch gate{1};              // main -> the task that holds the only worker: let go
std::latch release_blockers{1};  // -> tasks that keep the other workers busy: finish

void count_down_release_blockers() { release_blockers.count_down(); }

// a: main returns while 200 tasks are queued behind a task that holds the only worker. The
// default pool's destructor, at exit, must run them all: each line comes after "main returns".
int main_returns() {
  background::n = 1;
  background::run([] {
    gate.wait();
    say("first task");
  });
  for (int i = 0; i < task_count; ++i) background::run([i] { say(task_line(i)); });
  say("main returns");
  gate.count_down();
  return 0;
}

void open_gate() { gate.count_down(); }

// i: 200 tasks wait behind a task that holds the default pool's only worker until an atexit
// handler (registered after the pool was constructed, so run before its destructor) lets it
// go: they all run in the default pool's drain at exit, and each submits the task that writes
// its line with background::run(). The default pool must still be there for its own tasks
// while it drains: each line is written once, and no run() throws shutdown_error.
int submit_while_draining_at_exit() {
  background::n = 1;  // constructs the default pool before the atexit handler is registered
  std::atexit(open_gate);
  background::run([] {
    gate.wait();
    say("first task");
  });
  for (int i = 0; i < task_count; ++i) {
    background::run([i] { background::run([i] { say(task_line(i)); }); });
  }
  say("main returns");
  return 0;
}

// b, c and g: a task of `p` (`threads` workers) calls std::exit(3) while 200 tasks are queued
// and every other worker is busy. std::exit runs the pool's destructor on that task's thread:
// it must run the queued tasks (after "exit called") and return, so the status is 3.
//
// The other workers block until an atexit handler lets them go. It is registered after `p` was
// constructed, so it runs during std::exit before p's destructor: until then no worker is free,
// so every task is still queued when exit is called, and afterwards every worker can help.
int exit_from_task(background::pool& p, std::size_t threads) {
  std::atexit(count_down_release_blockers);
  // These locals stay alive: this frame never returns, it waits for the exiting task.
  std::latch all_busy{static_cast<std::ptrdiff_t>(threads)};
  std::latch go{1};
  for (std::size_t i = 1; i < threads; ++i) {
    p.run([&all_busy] {
      all_busy.count_down();
      release_blockers.wait();
    });
  }
  background::future<void> exiter = p.run([&all_busy, &go] {
    all_busy.count_down();
    go.wait();
    say("exit called");
    std::exit(3);
  });
  all_busy.wait();  // every worker is taken: what follows stays queued
  for (int i = 0; i < task_count; ++i) p.run([i] { say(task_line(i)); });
  go.count_down();
  exiter.wait();  // never returns: the process ends in std::exit on the worker
  say("the exiting task finished");
  return 0;
}

// b and c: on the default pool, with n = `threads`.
int exit_from_default_pool_task(std::size_t threads) {
  background::n = threads;  // constructs the default pool before the atexit handler is set
  return exit_from_task(background::default_pool(), threads);
}

// g: a user pool that is a global static (constructed in main here, destroyed at exit like any
// global). The atexit handler, registered later, runs before its destructor.
std::optional<background::pool> global_pool;

int exit_from_global_pool_task() {
  constexpr std::size_t threads = 4;
  global_pool.emplace(threads);
  return exit_from_task(*global_pool, threads);
}

// d: a task throws and nobody keeps its future. The default on_error() handler writes its line
// to stderr exactly once, whether the task runs before main returns or during exit.
int unobserved_exception() {
  background::run([] { throw std::runtime_error("nobody keeps this future"); });
  return 0;
}

// e and e2: a logger that tasks reach through a function-local static, as a user's program
// would. Its destructor writes how many lines it logged and marks it gone; a log() after that
// aborts with a message instead of touching a destroyed mutex.
std::atomic<bool> logger_gone{false};

class logger {
 public:
  logger() = default;
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;
  ~logger() {
    std::lock_guard<std::mutex> lock(mutex_);
    say("logger destroyed after " + std::to_string(lines_) + " lines");
    logger_gone.store(true);
  }

  void log(const std::string& line) {
    if (logger_gone.load()) {
      say("logger used after its destructor: " + line);
      std::abort();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    history_ += line;
    history_ += '\n';
    ++lines_;
    say(line);
  }

 private:
  std::mutex mutex_;
  std::string history_;
  int lines_ = 0;
};

logger& the_logger() {
  static logger instance;
  return instance;
}

// e: the documented way to use a static from tasks that may still be queued at exit: construct
// it before the default pool's first use. Statics are destroyed in the reverse order of their
// construction, so the pool's destructor runs the queued tasks while the logger still exists.
//
// The hazard that remains: a static constructed after the pool's first use (say, first touched
// inside a task) is destroyed before the pool, so the tasks that the pool's destructor still
// runs at exit would use a destroyed object. Either touch it before the pool, as here, or call
// background::wait() before main returns (e2).
int static_before_pool() {
  the_logger();       // constructed first, so destroyed after the default pool
  background::n = 1;  // the default pool: constructed now, destroyed before the logger
  background::run([] {
    gate.wait();
    the_logger().log("first task");
  });
  for (int i = 0; i < task_count; ++i) background::run([i] { the_logger().log(task_line(i)); });
  say("main returns");
  gate.count_down();
  return 0;
}

// e2: the logger is constructed inside the first task, after the default pool, so it will be
// destroyed before the pool; background::wait() at the end of main makes that harmless, since
// no task is left for the pool's destructor to run.
int wait_before_return() {
  background::n = 1;
  background::run([] {
    gate.wait();
    the_logger().log("first task");  // constructs the logger: after the pool
  });
  for (int i = 0; i < task_count; ++i) background::run([i] { the_logger().log(task_line(i)); });
  gate.count_down();
  background::wait();
  say("main returns");
  return 0;
}

// f: a pool on the heap is deleted by one of its own tasks while 200 tasks are queued. The
// destructor must run them all and return (then "destructor returned"), and the deleting task
// must finish, so main's wait returns. With `threads` > 1 the other workers are released just
// before the delete, so the destructor starts with most tasks still queued.
int pool_deleted_by_own_task(std::size_t threads) {
  auto* p = new background::pool{threads};
  std::latch all_busy{static_cast<std::ptrdiff_t>(threads)};
  std::latch go{1};
  std::latch release{1};
  for (std::size_t i = 1; i < threads; ++i) {
    p->run([&all_busy, &release] {
      all_busy.count_down();
      release.wait();
    });
  }
  background::future<void> deleter = p->run([p, &all_busy, &go, &release] {
    all_busy.count_down();
    go.wait();
    say("delete called");
    release.count_down();
    delete p;
    say("destructor returned");
  });
  all_busy.wait();
  for (int i = 0; i < task_count; ++i) p->run([i] { say(task_line(i)); });
  go.count_down();
  deleter.wait();
  say("main returns");
  return 0;
}

// cpu_count_test: restricts this process to one CPU before the default pool's first use, then
// prints the sizes that the default pool and a default-constructed pool get.
int affinity_one_cpu() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 10;
  cpu_set_t one;
  CPU_ZERO(&one);
  for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  if (sched_setaffinity(0, sizeof one, &one) != 0) return 11;
  say("n " + std::to_string(std::size_t{background::n}));
  say("pool " + std::to_string(background::pool{}.size()));
  return 0;
}

// h: thread creation fails for real. RLIMIT_NPROC is lowered below the number of tasks (threads
// count) that the process's user already has, so every new thread fails with EAGAIN. The limit
// does not bind root, so a root child first becomes nobody (65534); if it cannot, it says
// "skip: <why>" and nothing else. Then a pool of 2 is made, both workers are held and 200 tasks
// queued behind them, and the limit is lowered: growing must throw std::system_error
// (resource_unavailable_try_again) and leave the size at 2, twice; a new pool must throw the
// same; once the workers are let go, every queued task runs. Finally the limit is put back and
// the pool grows.
//
// Only the soft limit is lowered (to 1): the hard limit stays, so that this unprivileged
// process can raise it again, for the last resize and for LeakSanitizer, which starts a tracer
// task at exit under the asan preset (with the hard limit at 1 too, it fails: "LeakSanitizer
// has encountered a fatal error"). ThreadSanitizer starts no thread while the limit is low, so
// the scenario runs under every preset.

// How a call that has to start threads ended, as the parent expects to read it.
template <class Call>
std::string outcome_of(Call&& call) {
  try {
    call();
    return "ok";
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::resource_unavailable_try_again) {
      return "system_error resource_unavailable_try_again";
    }
    return "system_error " + e.code().message();
  } catch (const std::exception& e) {
    return std::string("unexpected exception: ") + e.what();
  }
}

int nproc_limit() {
  if (::geteuid() == 0) {
    constexpr uid_t nobody = 65534;
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) {
      say(std::string("skip: cannot drop root to uid 65534: ") + std::strerror(errno));
      return 0;
    }
  }
  rlimit original{};
  if (::getrlimit(RLIMIT_NPROC, &original) != 0) return 12;

  background::pool p{2};
  std::latch all_busy{2};
  std::latch release{1};
  for (int i = 0; i < 2; ++i) {
    p.run([&all_busy, &release] {
      all_busy.count_down();
      release.wait();
    });
  }
  all_busy.wait();  // both workers are held: what follows stays queued
  for (int i = 0; i < task_count; ++i) p.run([i] { say(task_line(i)); });

  const rlimit lowered{1, original.rlim_max};
  if (::setrlimit(RLIMIT_NPROC, &lowered) != 0) return 13;
  say("resize to 8: " + outcome_of([&p] { p.resize(8); }));
  say("size " + std::to_string(p.size()));
  say("resize to 3: " + outcome_of([&p] { p.resize(3); }));
  say("size " + std::to_string(p.size()));
  say("new pool: " + outcome_of([] { background::pool q{1}; }));
  say("workers released");
  release.count_down();
  p.wait();
  say("all tasks done");

  if (::setrlimit(RLIMIT_NPROC, &original) != 0) return 14;
  say("resize to 4 after the limit is restored: " + outcome_of([&p] { p.resize(4); }));
  say("size " + std::to_string(p.size()));
  return 0;
}

std::size_t size_argument(int argc, char** argv) {
  if (argc < 3) return 0;
  return static_cast<std::size_t>(std::strtoul(argv[2], nullptr, 10));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view scenario = argc > 1 ? argv[1] : "";
  const std::size_t threads = size_argument(argc, argv);
  if (scenario == "main_returns") return main_returns();
  if (scenario == "exit_from_task" && threads > 0) return exit_from_default_pool_task(threads);
  if (scenario == "exit_from_global_pool_task") return exit_from_global_pool_task();
  if (scenario == "unobserved_exception") return unobserved_exception();
  if (scenario == "static_before_pool") return static_before_pool();
  if (scenario == "wait_before_return") return wait_before_return();
  if (scenario == "pool_deleted_by_own_task" && threads > 0) {
    return pool_deleted_by_own_task(threads);
  }
  if (scenario == "submit_while_draining_at_exit") return submit_while_draining_at_exit();
  if (scenario == "affinity1") return affinity_one_cpu();
  if (scenario == "nproc_limit") return nproc_limit();
  std::fprintf(stderr,
               "usage: exit_scenarios main_returns | exit_from_task N | "
               "exit_from_global_pool_task | unobserved_exception | static_before_pool | "
               "wait_before_return | pool_deleted_by_own_task N | submit_while_draining_at_exit | "
               "affinity1 | nproc_limit\n");
  return 2;
}
