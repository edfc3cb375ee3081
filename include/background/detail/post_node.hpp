// post_node: a task from post(). It has no future, so nothing refers to it but its queue entry:
// it needs no claim, no final state and no reference count, only a way to run itself once and
// go. A node is 16 bytes and the call's own (with an empty lambda, 24: a 32-byte malloc chunk),
// where a task state for run() is over 100; and running one costs no atomic read-modify-write
// on the node. It does not remember the pool's callbacks at submission, as a task state does:
// the ones registered by the time it runs are called (pool::callback()).
#ifndef BACKGROUND_DETAIL_POST_NODE_HPP
#define BACKGROUND_DETAIL_POST_NODE_HPP

#include <cstddef>
#include <exception>
#include <functional>
#include <new>
#include <tuple>
#include <utility>

#include "background/detail/export.hpp"
#include "background/detail/task_state.hpp"

namespace background::detail {

class post_node {
 public:
  // Calls the callable unless `cancelled` (with pool `p`'s shutdown token first if it takes a
  // std::stop_token), then destroys the node; returns the exception the call threw, if any.
  using run_fn = std::exception_ptr (*)(post_node* self, bool cancelled,
                                        const pool_impl* p) noexcept;

  post_node(const post_node&) = delete;
  post_node& operator=(const post_node&) = delete;

  // From the same per-thread block caches as task states (src/task_memory.cpp).
  BACKGROUND_API static void* operator new(std::size_t size);
  BACKGROUND_API static void operator delete(void* p, std::size_t size) noexcept;
  // An over-aligned callable: the global aligned operator new (see task_base).
  static void* operator new(std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
  }
  // Unsized: clang declares the global sized forms only with -fsized-deallocation.
  static void operator delete(void* p, std::align_val_t align) noexcept {
    ::operator delete(p, align);
  }

  const run_fn run;
  task_base* next_ = nullptr;  // the next entry in a pool's overflow list

 protected:
  explicit post_node(run_fn f) noexcept : run(f) {}
  ~post_node() = default;
};

// post(f, args...): `Fn` invoked with `Args`, decay-copied as std::thread does, its result
// dropped; with the pool's shutdown token first if `Fn` takes a std::stop_token (nobody else can
// ask a post to stop: it has no future).
template <class Fn, class... Args>
class post_call_node final : public post_node {
 public:
  template <class F, class... A>
  explicit post_call_node(F&& f, A&&... args)
      : post_node(&run_call), call_(std::forward<F>(f), std::forward<A>(args)...) {}

 private:
  static std::exception_ptr run_call(post_node* node, bool cancelled, const pool_impl* p) noexcept {
    auto* self = static_cast<post_call_node*>(node);
    std::exception_ptr error;
    if (!cancelled) {
      try {
        std::apply(
            [p](Fn& f, Args&... args) {
              if constexpr (takes_stop_token<Fn, Args...>) {
                (void)std::invoke(std::move(f), shutdown_token(p), std::move(args)...);
              } else {
                (void)p;
                (void)std::invoke(std::move(f), std::move(args)...);
              }
            },
            self->call_);
      } catch (...) {
        error = std::current_exception();
      }
    }
    delete self;
    return error;
  }

  std::tuple<Fn, Args...> call_;
};

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_POST_NODE_HPP
