// notebook: the seed blog post's notebook, in C++. It runs N tasks that each sleep D seconds
// three ways: one after another on the main thread, on the default pool, and again after
// `background::n = 110`; then it prints the wall time and speed-up of each as a table.
//
//   notebook [--tasks N] [--seconds S]    (defaults: 100 tasks of 0.1 s; 15 s on two cores)
#include <unistd.h>

#include <background/background.hpp>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using seconds = std::chrono::duration<double>;

// The notebook's worker function: a moderately long calculation, simulated by a sleep.
int work(double s) {
  std::this_thread::sleep_for(seconds(s));
  return 1;
}

// One row of the table. While its mode runs, and only if stdout is a terminal, a progress line
// stands in its place and is redrawn a few times a second; redirected output gets plain rows.
class table_row {
 public:
  table_row(const char* mode, std::size_t pool_size, std::size_t tasks)
      : mode_(mode), tasks_(tasks) {
    if (pool_size > 0) std::snprintf(n_, sizeof n_, "%zu", pool_size);
  }

  // When the progress line should next be redrawn: never, if stdout is not a terminal.
  clock_type::time_point due() const { return live_ ? due_ : clock_type::time_point::max(); }

  void draw(std::size_t done) {
    std::printf("\r%-14s%5s%15zu/%zu done", mode_, n_, done, tasks_);
    std::fflush(stdout);
    due_ = clock_type::now() + redraw_every;
  }

  void finish(double wall, double blocking_wall) {
    if (live_) std::printf("\r\033[K");  // clear the progress line
    std::printf("%-14s%5s%13.3f s%10.1fx\n", mode_, n_, wall, blocking_wall / wall);
    std::fflush(stdout);
  }

 private:
  static constexpr auto redraw_every = std::chrono::milliseconds(250);
  inline static const bool live_ = isatty(STDOUT_FILENO) != 0;

  const char* mode_;
  char n_[24] = "-";  // the pool size, or "-" for the main thread
  std::size_t tasks_;
  clock_type::time_point due_ = clock_type::now();
};

double seconds_since(clock_type::time_point start) {
  return seconds(clock_type::now() - start).count();
}

// (a) Blocking: each call runs on the main thread, one after another.
double run_blocking(std::size_t tasks, double s, table_row& row) {
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < tasks; ++i) {
    if (clock_type::now() >= row.due()) row.draw(i);
    work(s);
  }
  return seconds_since(start);
}

std::size_t count_done(const std::vector<background::future<int>>& futures) {
  std::size_t done = 0;
  for (const auto& f : futures) {
    if (f.done()) ++done;
  }
  return done;
}

// (b) and (c): the same calls through background::task, which returns a future at once.
double run_in_background(std::size_t tasks, double s, table_row& row) {
  const auto start = clock_type::now();
  auto bg_work = background::task(work);
  std::vector<background::future<int>> f_list;
  for (std::size_t i = 0; i < tasks; ++i) f_list.push_back(bg_work(s));

  // The notebook's `while not all([f.done() for f in f_list])`, without spinning: wait for each
  // future in turn, waking up only to redraw the progress line.
  for (const auto& f : f_list) {
    while (!f.wait_until(row.due())) row.draw(count_done(f_list));
  }
  return seconds_since(start);
}

constexpr const char* usage = "usage: notebook [--tasks N] [--seconds S] [--help]\n";

int usage_error(const char* what) {
  std::fprintf(stderr, "notebook: %s\n%s", what, usage);
  return 2;
}

// Parses the whole of `text` as a number in [low, high]; false if it is anything else.
template <class T>
bool parse(std::string_view text, T low, T high, T& value) {
  T v{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (error != std::errc{} || end != text.data() + text.size()) return false;
  if (!(v >= low && v <= high)) return false;  // also rejects NaN
  value = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t tasks = 100;
  double s = 0.1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::string_view value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--help") {
      std::printf(
          "%sRuns N tasks that each sleep S seconds (default: 100 tasks of 0.1 s) one after\n"
          "another, then on background's default pool, then with background::n = 110,\n"
          "and prints the wall time and speed-up of each.\n",
          usage);
      return 0;
    } else if (arg == "--tasks") {
      if (!parse<std::size_t>(value, 1, 1'000'000, tasks)) {
        return usage_error("--tasks takes a whole number from 1 to 1000000");
      }
      ++i;
    } else if (arg == "--seconds") {
      if (!parse(value, 1e-6, 3600.0, s)) {
        return usage_error("--seconds takes a number of seconds from 0.000001 to 3600");
      }
      ++i;
    } else {
      std::fprintf(stderr, "notebook: unknown argument: %s\n%s", argv[i], usage);
      return 2;
    }
  }

  const std::size_t default_n = background::n;
  std::printf("%zu tasks that each sleep %g s; this machine's default is background::n = %zu\n\n",
              tasks, s, default_n);
  std::printf("%-14s%5s%15s%11s\n", "mode", "n", "wall time", "speed-up");

  table_row blocking_row("blocking", 0, tasks);
  const double blocking = run_blocking(tasks, s, blocking_row);
  blocking_row.finish(blocking, blocking);

  table_row default_row("default pool", background::n, tasks);
  default_row.finish(run_in_background(tasks, s, default_row), blocking);

  background::n = 110;
  table_row many_row("n = 110", background::n, tasks);
  many_row.finish(run_in_background(tasks, s, many_row), blocking);
}
