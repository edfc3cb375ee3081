// error_log: what reaches the on_error() handler while a test runs, and thrown_by(): what a
// future's get() throws; for the tests of where exceptions go.
#ifndef BACKGROUND_TESTS_SUPPORT_ERROR_LOG_HPP
#define BACKGROUND_TESTS_SUPPORT_ERROR_LOG_HPP

#include <cstddef>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "background/background.hpp"

namespace background::testing {

// Installs an on_error() handler that records the what() of each report ("(not a
// std::exception)" for others) while the log lives; the destructor puts the previous one back.
class error_log {
 public:
  error_log() : previous_(background::on_error([this](std::exception_ptr e) { record(e); })) {}
  error_log(const error_log&) = delete;
  error_log& operator=(const error_log&) = delete;
  ~error_log() { background::on_error(previous_); }
  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  int count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(messages_.size());
  }

 private:
  void record(const std::exception_ptr& e) {
    std::string what = "(not a std::exception)";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back(what);
  }

  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  background::error_handler previous_;
};

// The what() of the exception `f.get()` throws, or "(no exception)".
template <class F>
std::string thrown_by(const F& f) {
  try {
    f.get();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_ERROR_LOG_HPP
