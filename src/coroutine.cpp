// The core's part of coroutines: the task that resumes a coroutine, and how it is queued at the
// start, after a co_await on a future, and by resume_on().
#include "background/coroutine.hpp"

#include <coroutine>
#include <cstdint>
#include <utility>

#include "background/detail/core.hpp"
#include "background/pool.hpp"
#include "pool_impl.hpp"

namespace background::detail {
namespace {

// Resumes a coroutine: a queued task (its first step, or after resume_on()) or a continuation of
// the awaited task that runs whatever that task's outcome. It has no future: one reference,
// the queue's or the continuation stack's. While it is queued or pending, the coroutine's state
// (`coro_`, for a background coroutine) has it as its antecedent, so a worker that waits for
// the coroutine's future runs it, and what it waits for, inline.
class resume_task final : public task_base {
 public:
  // `from`: the phase the coroutine's state is in until this runs (pending before the body
  // starts, suspended after).
  // It starts pending: submit() (or its antecedent's settle) makes it queued with a release,
  // after its pool_ is set, so that no waiting worker can run it before.
  resume_task(std::coroutine_handle<> h, task_base* coro, std::uint32_t from, bool pinned) noexcept
      : task_base(st_pending, 1), handle_(h), coro_(coro), from_(from) {
    runs_always_ = true;
    pinned_ = pinned;
  }

  // Queuing it failed, after link(): the coroutine goes on on this thread (the exception is
  // rethrown at its co_await, or out of the call), so this task must not touch it. It is
  // finished (cancelled), which wakes any worker asleep on it.
  void abandon() noexcept {
    handle_ = nullptr;
    cancel(this);
  }

  std::uint32_t invoke() noexcept override {
    const std::coroutine_handle<> h = std::exchange(handle_, nullptr);
    if (coro_ != nullptr) {
      if (!set_phase(coro_, from_, st_running)) {
        // Only a body that has not started can have been cancelled (through its future): the
        // frame was this task's to resume, so it is this task's to destroy.
        h.destroy();
        return st_ready;
      }
      drop_antecedent(coro_);  // this task
    }
    h.resume();  // may finish the coroutine, and free its state: nothing of it is touched after
    return st_ready;
  }

  // Cancelled (its pool's shutdown(cancel_pending), or the awaited task's pool gone): a
  // background coroutine will never be resumed, so its frame is destroyed and its future
  // cancelled. Any other coroutine's frame is not ours to destroy: it is resumed here instead.
  void drop_callable() noexcept override {
    const std::coroutine_handle<> h = std::exchange(handle_, nullptr);
    if (!h) return;
    if (coro_ == nullptr) {
      h.resume();
      return;
    }
    coro_->retain();  // the frame's promise holds a reference, which destroy() drops
    const bool claimed = set_phase(coro_, from_, st_running);
    if (claimed) drop_antecedent(coro_);  // this task
    h.destroy();
    if (claimed) complete(coro_, st_cancelled, nullptr);
    coro_->release();
  }

 private:
  std::coroutine_handle<> handle_;
  task_base* const coro_;
  const std::uint32_t from_;
};

// Makes `r` the antecedent of the coroutine's state and moves the state from `from` to `to`;
// undo() puts it back, if queuing `r` fails.
struct coro_link {
  task_base* coro;
  task_base* r;
  std::uint32_t from, to;
  void link() noexcept {
    if (coro == nullptr) return;
    set_antecedent(coro, r);
    set_phase(coro, from, to);
  }
  void undo() noexcept {
    if (coro == nullptr) return;
    set_phase(coro, to, from);
    drop_antecedent(coro);
  }
};

// Queues `r` (with its one reference) with `queue`, linked to `coro` meanwhile.
template <class Queue>
void queue_linked(resume_task* r, coro_link link, Queue&& queue) {
  link.link();
  try {
    queue();
  } catch (...) {
    link.undo();
    r->abandon();
    r->release();
    throw;
  }
}

}  // namespace

void start_coroutine(std::coroutine_handle<> h, task_base* coro) {
  pool_impl* p = default_pool_impl();
  auto* r = new resume_task(h, coro, st_pending, /*pinned=*/false);
  // The state stays pending: it only gains its antecedent.
  if (coro != nullptr) set_antecedent(coro, r);
  try {
    submit(p, r, /*with_callbacks=*/false);
  } catch (...) {
    if (coro != nullptr) drop_antecedent(coro);
    r->abandon();
    r->release();
    throw;
  }
}

void resume_after(task_base* a, std::coroutine_handle<> h, task_base* coro) {
  auto* r = new resume_task(h, coro, st_suspended, /*pinned=*/false);
  a->retain();  // r's reference to its antecedent, as then()'s continuations hold
  // relaxed: published by attach_continuation()'s release CAS, as in make_continuation().
  r->antecedent_.store(reinterpret_cast<std::uintptr_t>(a), std::memory_order_relaxed);
  queue_linked(r, {coro, r, st_running, st_suspended}, [a, r] { attach_continuation(a, r); });
}

void resume_on_pool(const pool& p, std::coroutine_handle<> h, task_base* coro) {
  // Pinned: the rest must run on p, not inline on a worker of another pool that waits for it.
  auto* r = new resume_task(h, coro, st_suspended, /*pinned=*/true);
  pool_impl* impl = pool_access::impl(p);
  queue_linked(r, {coro, r, st_running, st_suspended},
               [impl, r] { submit(impl, r, /*with_callbacks=*/false); });
}

void finish_coroutine(std::coroutine_handle<> h, task_base* coro, std::uint32_t phase) noexcept {
  coro->retain();  // the promise's reference goes with the frame
  h.destroy();
  complete(coro, phase, nullptr);
  coro->release();
}

bool on_worker_of(const pool& p) noexcept {
  return pool_impl::current_worker_pool() == pool_access::impl(p);
}

std::size_t pool_size(pool_impl* p) { return p->size(); }

}  // namespace background::detail
