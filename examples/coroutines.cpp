// coroutines: background::future<T> as a coroutine's return type and as something to co_await.
// Calling a coroutine submits its body to the default pool and returns its future at once; a
// co_await never blocks a thread; an exception thrown by the awaited task is rethrown at the
// co_await; and co_await background::resume_on(p) moves the rest of the body onto pool p.
//
// g++ 12 can destroy a capturing lambda twice when it is written inside a co_await expression
// (`co_await background::run([x] { ... })`). So every lambda here is first handed to run() in
// a statement of its own, and the co_await takes the named future.
#include <background/background.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>

background::future<int> add_one(int x) {
  auto twice = background::run([x] { return x * 2; });  // not inside the co_await: see above
  int a = co_await twice;
  co_return a + 1;
}

// Coroutines await each other like any other future.
background::future<int> add_one_twice(int x) {
  auto first = add_one(x);
  int a = co_await first;
  auto second = add_one(a);
  int b = co_await second;
  co_return b;
}

background::future<int> positive(int x) {
  auto check = background::run([x] {
    if (x <= 0) throw std::invalid_argument("not positive");
    return x;
  });
  int v = co_await check;  // rethrows the task's exception here
  co_return v;
}

background::future<std::string> hop(background::pool& p) {
  const bool before = background::this_pool() == &p;
  co_await background::resume_on(p);
  const bool after = background::this_pool() == &p;
  co_return std::string("on p before resume_on(p): ") + (before ? "yes" : "no") +
      ", after: " + (after ? "yes" : "no");
}

int main() {
  std::printf("add_one(20) = %d\n", add_one(20).get());
  std::printf("add_one_twice(20) = %d\n", add_one_twice(20).get());

  try {
    positive(-1).get();
  } catch (const std::invalid_argument& e) {
    std::printf("positive(-1) failed: %s\n", e.what());
  }

  background::pool p{2};
  std::printf("%s\n", hop(p).get().c_str());
}
