// child_process.hpp: runs one scenario of exit_scenarios in a child process, for exit_test and
// cpu_count_test, and collects what it wrote (stdout and stderr through one pipe) and how it
// ended. A child that has not ended after a generous bound is killed and reported as hung: a
// hang detector, not a timing assertion.
#ifndef BACKGROUND_TESTS_EXIT_CHILD_PROCESS_HPP
#define BACKGROUND_TESTS_EXIT_CHILD_PROCESS_HPP

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace exit_tests {

// How long a scenario may take before it counts as hung. Every scenario ends in well under a
// second; this only bounds a deadlock.
inline constexpr std::chrono::seconds hang_timeout{60};

struct child_result {
  std::string output;  // stdout and stderr, in the order written
  int status = 0;      // as waitpid() reports it
  bool hung = false;   // killed after hang_timeout
  std::string error;   // why the child could not be run, if it could not

  bool exited_with(int code) const {
    return !hung && error.empty() && WIFEXITED(status) && WEXITSTATUS(status) == code;
  }
  // How it ended, for failure messages.
  std::string describe() const {
    std::ostringstream s;
    if (!error.empty()) {
      s << "could not run: " << error;
    } else if (hung) {
      s << "hung: killed after " << hang_timeout.count() << " s";
    } else if (WIFEXITED(status)) {
      s << "exited with status " << WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      s << "killed by signal " << WTERMSIG(status);
    }
    s << "; output:\n" << output;
    return s.str();
  }
};

// Runs `program` with `args`, its stdout and stderr on one pipe, and waits for it to end.
inline child_result run_child(const std::string& program, const std::vector<std::string>& args) {
  child_result result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.error = "pipe2 failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<std::string> storage{program};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (spawned != 0) {
    close(fds[0]);
    result.error = "posix_spawn of " + program + " failed with error " + std::to_string(spawned);
    return result;
  }

  // The pipe's write end closes only when the child's last thread is gone, so end of file means
  // the child has ended and waitpid() below returns at once.
  using clock = std::chrono::steady_clock;
  const clock::time_point deadline = clock::now() + hang_timeout;
  bool eof = false;
  char buffer[4096];
  while (!eof) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) break;
    pollfd readable{fds[0], POLLIN, 0};
    const int ready = poll(&readable, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      result.output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      eof = true;
    }
  }
  close(fds[0]);
  if (!eof) {
    result.hung = true;
    kill(pid, SIGKILL);
  }
  while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

// The lines of `output`, without their newlines.
inline std::vector<std::string> lines_of(const std::string& output) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace exit_tests

#endif  // BACKGROUND_TESTS_EXIT_CHILD_PROCESS_HPP
