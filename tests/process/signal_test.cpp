// Signals and the pools: workers start with the asynchronous signals blocked and the
// synchronous ones untouched, the thread that starts them keeps its own mask, on_thread_start
// can change a worker's, and a process that waits for SIGTERM with sigwait() on its main thread
// while its pool is busy gets it there (in a child process: without the mask, a worker would take
// the signal's default action and end the process).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <background/background.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/sanitizers.hpp"

namespace {

namespace bg = background;
using namespace std::chrono_literals;

bool blocked_here(int sig) {
  sigset_t current;
  pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return sigismember(&current, sig) == 1;
}

TEST(SignalTest, WorkersStartWithAsynchronousSignalsBlocked) {
  bg::pool p(2);
  for (const int sig :
       {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE, SIGALRM, SIGWINCH,
        SIGCONT, SIGTSTP, SIGURG, SIGIO, SIGXCPU, SIGRTMIN + 1, SIGRTMAX}) {
    EXPECT_TRUE(p.run([sig] { return blocked_here(sig); }).get()) << "signal " << sig;
  }
  for (const int sig :
       {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGPROF, SIGVTALRM}) {
    EXPECT_FALSE(p.run([sig] { return blocked_here(sig); }).get()) << "signal " << sig;
  }
  EXPECT_TRUE(bg::run([] { return blocked_here(SIGTERM); }).get());  // the default pool too
}

TEST(SignalTest, TheThreadThatStartsWorkersKeepsItsMask) {
  ASSERT_FALSE(blocked_here(SIGTERM));
  bg::pool p(3);
  p.resize(5);
  EXPECT_FALSE(blocked_here(SIGTERM));
  EXPECT_FALSE(blocked_here(SIGUSR1));
}

TEST(SignalTest, OnThreadStartCanChangeAWorkersMask) {
  bg::pool_options options;
  options.on_thread_start = [](std::size_t) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
  };
  bg::pool p(1, options);
  EXPECT_FALSE(p.run([] { return blocked_here(SIGUSR1); }).get());
  EXPECT_TRUE(p.run([] { return blocked_here(SIGUSR2); }).get());
}

// In a child: starts a busy pool, then blocks SIGTERM on the main thread only (the workers do not
// inherit that: they are running already), sends SIGTERM to the process and waits for it.
int sigwait_while_busy() {
  bg::pool p(4);
  std::atomic<bool> stop{false};
  std::vector<bg::future<void>> busy;
  for (int i = 0; i < 4; ++i) {
    busy.push_back(p.run([&stop] {
      while (!stop.load()) std::this_thread::yield();
    }));
  }
  for (int i = 0; i < 1000; ++i) bg::post([] {});
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  if (kill(getpid(), SIGTERM) != 0) return 2;
  int sig = 0;
  if (sigwait(&term, &sig) != 0 || sig != SIGTERM) return 3;
  stop = true;
  for (auto& f : busy) f.get();
  return 0;
}

TEST(SignalTest, SigwaitOnTheMainThreadGetsSigtermWhileThePoolIsBusy) {
  if (background::testing::thread_sanitizer || background::testing::address_sanitizer) {
    // As in fork_test.cpp: the sanitizers' runtimes cannot follow a child that starts threads.
    GTEST_SKIP() << "the child starts threads after a multi-threaded fork (see fork_test.cpp)";
  }
  for (int round = 0; round < 5; ++round) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) std::exit(sigwait_while_busy());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status))
        << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (WIFEXITED(status)) {
      EXPECT_EQ(WEXITSTATUS(status), 0);
    }
  }
}

// A process forked from a task (to exec a program, say) is a new process, not a worker: its one
// thread must not keep the workers' blocked set, or SIGTERM and SIGINT stay pending in it for
// ever (and an exec()'d program inherits the mask: SIGPIPE no longer ends a writer to a closed
// pipe). The child reports through its exit status.
TEST(SignalTest, AProcessForkedFromATaskDoesNotKeepTheWorkersMask) {
  if (background::testing::thread_sanitizer) {
    GTEST_SKIP() << "the child of a multi-threaded fork, which TSan cannot follow";
  }
  ASSERT_FALSE(blocked_here(SIGTERM));
  bg::pool p(1);
  const int status =
      p.run([] {
         std::fflush(nullptr);
         const pid_t pid = fork();
         if (pid == 0) {
           _exit(blocked_here(SIGTERM) || blocked_here(SIGINT) || blocked_here(SIGPIPE) ? 1 : 0);
         }
         int st = 0;
         if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
         return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
       }).get();
  EXPECT_EQ(status, 0) << "the forked process starts with SIGTERM, SIGINT and SIGPIPE blocked";
}

}  // namespace
