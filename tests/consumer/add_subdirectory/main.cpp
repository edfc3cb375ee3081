// A user's program that builds background with add_subdirectory: runs a task on the default pool
// and one on a pool of its own, and exits 0 if both give the right result.
#include <background/background.hpp>
#include <cstdio>
#include <string>

int main() {
  auto square = background::task([](int x) { return x * x; });
  background::future<int> on_default = square(7);
  background::pool own{2};
  background::future<std::string> on_own =
      own.run([](const std::string& s) { return s + "!"; }, std::string("hello"));
  if (on_default.get() != 49 || on_own.get() != "hello!") {
    std::fprintf(stderr, "consumer: a task gave the wrong result\n");
    return 1;
  }
  std::printf("consumer: background works through add_subdirectory\n");
  return 0;
}
