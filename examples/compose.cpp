// compose: futures that combine. when_all over a vector of futures and over futures of different
// types, as_completed taking results in the order they finish, map over a range in chunks, and a
// then() continuation that takes the whole future, so it runs on failure too and recovers.
#include <background/background.hpp>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

int main() {
  // when_all(fs): one future for the values of all, in input order, whatever order they finish.
  std::vector<background::future<int>> squares;
  for (int i = 1; i <= 10; ++i) squares.push_back(background::run([](int x) { return x * x; }, i));
  const std::vector<int> values = background::when_all(squares).get();
  std::printf("when_all:");
  for (int v : values) std::printf(" %d", v);
  std::printf(" (sum %d)\n", std::accumulate(values.begin(), values.end(), 0));

  // when_all(f1, f2): futures of different types, into a tuple.
  auto answer = background::run([] { return 6 * 7; });
  auto word = background::run([] { return std::string("forty-two"); });
  const auto [number, text] = background::when_all(answer, word).get();
  std::printf("when_all(f1, f2): %d and \"%s\"\n", number, text.c_str());

  // as_completed(fs): each future as soon as it is done. The order printed depends on the
  // scheduler; the total does not.
  std::vector<background::future<int>> naps;
  for (int ms : {30, 10, 20}) {
    naps.push_back(background::run(
        [](int d) {
          std::this_thread::sleep_for(std::chrono::milliseconds(d));  // Simulate work.
          return d;
        },
        ms));
  }
  int total = 0;
  std::printf("as_completed:");
  for (const background::future<int>& f : background::as_completed(naps)) {
    std::printf(" %d", f.get());
    total += f.get();
  }
  std::printf(" (total %d)\n", total);

  // map(f, inputs): f on every element, on the pool, several elements per task; results in input
  // order. Any sized input range will do; std::views::iota(0, 1000) would too, but clang 14
  // cannot compile libstdc++ 12's iota_view, so the inputs here are a vector.
  std::vector<int> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0);
  const std::vector<int> mapped = background::map([](int x) { return x * x + 1; }, inputs).get();
  std::printf("map: %zu results, sum %lld\n", mapped.size(),
              std::accumulate(mapped.begin(), mapped.end(), 0LL));

  // then(f) with f taking the future: it runs whether the task succeeded or failed, and get()
  // inside it rethrows, so a chain can handle its own errors.
  auto risky = background::run([]() -> int { throw std::runtime_error("disk full"); });
  auto handled = risky.then([](background::future<int> r) {
    try {
      return r.get();
    } catch (const std::runtime_error& e) {
      std::printf("then: recovered from \"%s\"\n", e.what());
      return -1;
    }
  });
  std::printf("then: result %d\n", handled.get());
}
