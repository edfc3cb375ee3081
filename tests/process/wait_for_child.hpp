// wait_for_child: the bounded wait for a forked child that the process tests share (a hang
// detector, not a timing assertion).
#ifndef BACKGROUND_TESTS_PROCESS_WAIT_FOR_CHILD_HPP
#define BACKGROUND_TESTS_PROCESS_WAIT_FOR_CHILD_HPP

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace background::testing {

// Waits for the child `pid` and returns its exit status: 128 + the signal if a signal ended it,
// -1 if it had not ended after a minute (then it is killed).
inline int wait_for_child(pid_t pid) {
  for (int i = 0; i < 6000; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_PROCESS_WAIT_FOR_CHILD_HPP
