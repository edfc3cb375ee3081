// A user's program built with a plain Makefile and `pkg-config --cflags --libs background`:
// runs a task on the default pool, waits for its future, and exits 0 if it gave the right
// result and pkg-config's version of the package matches the headers'.
#include <background/background.hpp>
#include <cstdio>
#include <string>

int main() {
  background::future<int> square = background::run([](int x) { return x * x; }, 7);
  const std::string version = std::to_string(BACKGROUND_VERSION_MAJOR) + "." +
                              std::to_string(BACKGROUND_VERSION_MINOR) + "." +
                              std::to_string(BACKGROUND_VERSION_PATCH);
  if (square.get() != 49) {
    std::fprintf(stderr, "consumer: a task gave the wrong result\n");
    return 1;
  }
  if (version != CONSUMER_PACKAGE_VERSION) {
    std::fprintf(stderr, "consumer: pkg-config says version %s, the headers %s\n",
                 CONSUMER_PACKAGE_VERSION, version.c_str());
    return 1;
  }
  std::printf("consumer: background %s works through pkg-config\n", version.c_str());
  return 0;
}
