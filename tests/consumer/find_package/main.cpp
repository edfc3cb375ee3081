// A user's program built against an installed background: runs a task on the default pool and
// one on a pool of its own, joins them with when_all, when_any and a coroutine (the composition
// and coroutine parts of the compiled core), and exits 0 if all give the right result and the
// package's version matches the headers'.
#include <background/background.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace {
background::future<int> plus_one(background::future<int> f) {
  const int v = co_await f;
  co_return v + 1;
}
}  // namespace

int main() {
  auto square = background::task([](int x) { return x * x; });
  background::future<int> on_default = square(7);
  background::pool own{2};
  background::future<std::string> on_own =
      own.run([](const std::string& s) { return s + "!"; }, std::string("hello"));
  const std::string version = std::to_string(BACKGROUND_VERSION_MAJOR) + "." +
                              std::to_string(BACKGROUND_VERSION_MINOR) + "." +
                              std::to_string(BACKGROUND_VERSION_PATCH);
  std::vector<background::future<int>> both{on_default, square(3)};
  const std::vector<int> joined = background::when_all(both).get();
  if (joined != std::vector<int>{49, 9} || background::when_any(both).get() > 1 ||
      plus_one(on_default).get() != 50) {
    std::fprintf(stderr, "consumer: composition gave the wrong result\n");
    return 1;
  }
  if (on_default.get() != 49 || on_own.get() != "hello!") {
    std::fprintf(stderr, "consumer: a task gave the wrong result\n");
    return 1;
  }
  if (version != CONSUMER_PACKAGE_VERSION) {
    std::fprintf(stderr, "consumer: the package says version %s, the headers %s\n",
                 CONSUMER_PACKAGE_VERSION, version.c_str());
    return 1;
  }
  std::printf("consumer: background %s works through find_package\n", version.c_str());
  return 0;
}
