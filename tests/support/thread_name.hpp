// thread_name(): the calling thread's name, as top -H shows it, for the tests of named pools.
#ifndef BACKGROUND_TESTS_SUPPORT_THREAD_NAME_HPP
#define BACKGROUND_TESTS_SUPPORT_THREAD_NAME_HPP

#include <pthread.h>

#include <string>

namespace background::testing {

inline std::string thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

}  // namespace background::testing

#endif  // BACKGROUND_TESTS_SUPPORT_THREAD_NAME_HPP
