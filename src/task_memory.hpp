// task_memory: what the pool needs of the task-block caches (src/task_memory.cpp) besides
// allocation.
#ifndef BACKGROUND_SRC_TASK_MEMORY_HPP
#define BACKGROUND_SRC_TASK_MEMORY_HPP

namespace background::detail {

// If the caches have given many blocks back to malloc since the last trim (8 MiB: a backlog of
// a few hundred thousand tasks has drained), asks malloc to return its free pages to the
// system (glibc's malloc_trim; elsewhere nothing). Call it from a worker that has run out of
// work, when nothing is pending: it may take milliseconds, holding malloc's locks.
void trim_task_memory() noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_SRC_TASK_MEMORY_HPP
