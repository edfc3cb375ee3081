// The floors (floors.cpp): malloc, atomic, futex and thread-start costs, named floor/*.
#ifndef BENCH_FLOORS_HPP
#define BENCH_FLOORS_HPP

namespace bench {

void register_floors();

}  // namespace bench

#endif  // BENCH_FLOORS_HPP
