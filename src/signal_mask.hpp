// signal_mask: the asynchronous signals that worker threads start with blocked, so that a
// program's signal handling stays on the threads it set up (as libuv's thread pool does).
#ifndef BACKGROUND_SRC_SIGNAL_MASK_HPP
#define BACKGROUND_SRC_SIGNAL_MASK_HPP

#include <pthread.h>
#include <signal.h>

namespace background::detail {

// Blocks, on this thread, for as long as it lives, the signals a new worker must start with
// blocked: a thread inherits the mask of the thread that creates it, so a worker created in this
// scope starts with them blocked before it runs a single instruction. The creator's own mask
// comes back at the end of the scope.
//
// Blocked: the signals that are sent to a process rather than raised by what a thread does
// (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGPIPE, SIGWINCH, job
// control, SIGURG, SIGIO, SIGPWR, SIGXCPU, SIGXFSZ and the real-time signals), so that the kernel
// delivers them to a thread of the program's own: one in sigwait(), or one whose mask lets them
// through. A SIGPIPE a worker's write raises stays pending on it and the write fails with EPIPE.
// Not blocked: the synchronous signals a fault raises on the faulting thread (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGSYS) and SIGABRT, which must reach their handlers there; and
// SIGPROF and SIGVTALRM, by which CPU profilers sample whichever thread is running.
class block_async_signals {
 public:
  block_async_signals() noexcept { pthread_sigmask(SIG_BLOCK, &blocked(), &saved_); }
  block_async_signals(const block_async_signals&) = delete;
  block_async_signals& operator=(const block_async_signals&) = delete;
  ~block_async_signals() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  // The mask this thread had before: what a worker it starts gets back if it becomes a process's
  // only thread (fork() from inside a task, pool_impl::restore_mask_after_fork()).
  const sigset_t& saved() const noexcept { return saved_; }

 private:
  static const sigset_t& blocked() noexcept {
    static const sigset_t set = [] {
      sigset_t s;
      sigemptyset(&s);
      for (const int sig : {SIGHUP,  SIGINT,  SIGQUIT,  SIGTERM, SIGUSR1, SIGUSR2,  SIGALRM,
                            SIGCHLD, SIGPIPE, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN,  SIGTTOU,
                            SIGURG,  SIGIO,   SIGPWR,   SIGXCPU, SIGXFSZ, SIGSTKFLT}) {
        sigaddset(&s, sig);
      }
      // glibc keeps the first few for itself and never lets them be blocked anyway.
      for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) sigaddset(&s, sig);
      return s;
    }();
    return set;
  }

  sigset_t saved_;
};

}  // namespace background::detail

#endif  // BACKGROUND_SRC_SIGNAL_MASK_HPP
