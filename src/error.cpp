// The error types and the handler for exceptions nobody observed.
#include "background/error.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <typeinfo>

namespace background {

cancelled::cancelled()
    : std::runtime_error("background: the task was cancelled before it started") {}

shutdown_error::shutdown_error()
    : std::runtime_error(
          "background: the pool is shutting down (its destructor has started, or it is gone); "
          "it accepts new tasks only from its own tasks") {}

namespace {

// Leaked on purpose, so that tasks finishing during static destruction can still report.
struct handler_slot {
  std::mutex mutex;
  error_handler handler;
};
handler_slot& slot() {
  static auto* s = new handler_slot;
  return *s;
}

std::string type_name(const std::type_info* type) {
  if (type == nullptr) return "unknown type";
  int status = 0;
  char* demangled = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type->name();
  std::free(demangled);
  return name;
}

// One line on stderr: "background: unobserved exception in a task: TYPE: WHAT".
void print(const std::exception_ptr& e, const char* what_happened) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "background: %s: %s: %s\n", what_happened,
                 type_name(abi::__cxa_current_exception_type()).c_str(), ex.what());
  } catch (...) {
    try {
      std::fprintf(stderr, "background: %s: %s (not derived from std::exception)\n", what_happened,
                   type_name(abi::__cxa_current_exception_type()).c_str());
    } catch (...) {
      std::fputs("background: unobserved exception in a task\n", stderr);
    }
  }
}

}  // namespace

error_handler on_error(error_handler handler) {
  handler_slot& s = slot();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::swap(s.handler, handler);
  return handler;
}

namespace detail {

void report_unobserved(std::exception_ptr e) noexcept {
  if (e == nullptr) return;
  error_handler handler;
  try {
    handler_slot& s = slot();
    std::lock_guard<std::mutex> lock(s.mutex);
    handler = s.handler;  // called outside the lock, so it may call on_error() itself
  } catch (...) {
  }
  if (!handler) {
    print(e, "unobserved exception in a task");
    return;
  }
  try {
    handler(std::move(e));
  } catch (...) {
    print(std::current_exception(), "the on_error handler threw");
  }
}

}  // namespace detail
}  // namespace background
