// Seams for the library's own tests. Not part of the API.
#ifndef BACKGROUND_DETAIL_TESTING_HPP
#define BACKGROUND_DETAIL_TESTING_HPP

#include "background/detail/export.hpp"

namespace background::detail {

// Makes the next `count` worker-thread starts, in any pool, fail with std::system_error
// (EAGAIN), as when the system is out of threads. 0 turns it off.
BACKGROUND_API void fail_next_thread_starts(int count) noexcept;

}  // namespace background::detail

#endif  // BACKGROUND_DETAIL_TESTING_HPP
