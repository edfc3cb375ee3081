// The error types and the handler for exceptions nobody observed.
#include "background/error.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <typeinfo>

#include "fork.hpp"

namespace background {

cancelled::cancelled()
    : std::runtime_error("background: the task was cancelled before it started") {}

shutdown_error::shutdown_error()
    : std::runtime_error(
          "background: the pool is shutting down (its destructor or shutdown() has started, or "
          "it is gone); "
          "it accepts new tasks only from its own tasks") {}

timeout_error::timeout_error()
    : std::runtime_error("background: the timeout passed before every future was done") {}

forked::forked()
    : std::runtime_error(
          "background: the task belongs to the parent process (it was queued or running when "
          "this process was forked) and never runs in this one") {}

namespace {

// Leaked on purpose, so that tasks finishing during static destruction can still report.
//
// The handler lives in a shared_ptr so that report_unobserved() takes it with a pointer copy,
// which cannot fail: copying the std::function itself may allocate, and a report must reach the
// handler even when memory is short.
struct handler_slot {
  std::mutex mutex;
  std::shared_ptr<error_handler> handler;  // null: the default handler
};
handler_slot& slot() {
  static auto* s = new handler_slot;
  return *s;
}

// One line on stderr: "background: WHAT_HAPPENED: TYPE: WHAT". Allocates nothing through
// operator new, so that it works when that is what failed (__cxa_demangle uses malloc, and
// falls back to the mangled name if that fails).
void print(const std::exception_ptr& e, const char* what_happened) noexcept {
  const std::type_info* type = nullptr;
  const char* what = nullptr;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    type = abi::__cxa_current_exception_type();
    what = ex.what();
  } catch (...) {
    type = abi::__cxa_current_exception_type();
  }
  int status = 0;
  char* demangled =
      type == nullptr ? nullptr : abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  const char* name = demangled != nullptr && status == 0 ? demangled
                     : type != nullptr                   ? type->name()
                                                         : "unknown type";
  if (what != nullptr) {
    std::fprintf(stderr, "background: %s: %s: %s\n", what_happened, name, what);
  } else {
    std::fprintf(stderr, "background: %s: %s (not derived from std::exception)\n", what_happened,
                 name);
  }
  std::free(demangled);
}

}  // namespace

error_handler on_error(error_handler handler) {
  // Everything that can fail happens before the swap, so on failure the old handler stays.
  std::shared_ptr<error_handler> next;
  if (handler) next = std::make_shared<error_handler>(std::move(handler));
  handler_slot& s = slot();
  std::lock_guard<std::mutex> lock(s.mutex);
  error_handler previous;
  if (s.handler != nullptr) {
    // Only the slot and report_unobserved() calls in flight hold the handler, and those take
    // their copy of the pointer under this lock: if the slot holds the only one, nobody else can
    // be reading it, and it can be moved out instead of copied.
    if (s.handler.use_count() == 1) {
      previous = std::move(*s.handler);
    } else {
      previous = *s.handler;  // may throw; the slot is unchanged then
    }
  }
  s.handler = std::move(next);
  return previous;
}

namespace detail {

void lock_error_handler_for_fork() noexcept { slot().mutex.lock(); }
void unlock_error_handler_after_fork() noexcept { slot().mutex.unlock(); }

// Whether `e` is a `forked`: a task of the parent's in a child process, or a child's task,
// continuation or combination that let one through. That is no failure of the child's: the task
// runs in the parent, and the exception says so to whoever looks. Never reported. (A rethrow,
// on the report path only.)
bool is_forked(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const forked&) {
    return true;
  } catch (...) {
  }
  return false;
}

void report_unobserved(std::exception_ptr e) noexcept {
  if (e == nullptr || is_forked(e)) return;
  std::shared_ptr<error_handler> handler;
  {
    handler_slot& s = slot();
    std::lock_guard<std::mutex> lock(s.mutex);
    handler = s.handler;  // called outside the lock, so it may call on_error() itself
  }
  if (handler == nullptr) {
    print(e, "unobserved exception in a task");
    return;
  }
  try {
    (*handler)(std::move(e));
  } catch (...) {
    print(std::current_exception(), "the on_error handler threw");
  }
}

}  // namespace detail
}  // namespace background
