# run_consumer.cmake: builds and runs one consumer project of tests/consumer, as a user would;
# any failing step fails the test. Run by tests/consumer/CMakeLists.txt as
#
#   cmake -DMODE=find_package|add_subdirectory -DCONSUMER_DIR=<tests/consumer>
#         -DSOURCE_DIR=<repository> -DBUILD_DIR=<the build to install> -DWORK_DIR=<scratch>
#         -DGENERATOR=... -DMAKE_PROGRAM=... -DCXX_COMPILER=... -DCXX_FLAGS=...
#         -DEXE_LINKER_FLAGS=... -DSHARED_LINKER_FLAGS=... -DBUILD_SHARED=... -DCONFIG=...
#         -P run_consumer.cmake
#
# find_package: installs BUILD_DIR to WORK_DIR/prefix, then configures the consumer with
# CMAKE_PREFIX_PATH set to it. add_subdirectory: the consumer adds SOURCE_DIR itself.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE CONSUMER_DIR SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT MODE STREQUAL "find_package" AND NOT MODE STREQUAL "add_subdirectory")
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package or add_subdirectory")
endif()

# run(<what> <command>...): runs a command, its output going to the test's log; fails the test
# if it fails.
function(run what)
  message(STATUS "consumer (${MODE}): ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${what} failed: ${result}")
  endif()
endfunction()

set(config_args)
if(NOT CONFIG STREQUAL "")
  set(config_args --config ${CONFIG})
endif()

# Fresh every run: a stale prefix or cache would hide a broken install.
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_build ${WORK_DIR}/build)
set(configure_args
  -S ${CONSUMER_DIR}/${MODE}
  -B ${consumer_build}
  -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_CXX_FLAGS=${CXX_FLAGS}
  -DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}
  -DCMAKE_SHARED_LINKER_FLAGS=${SHARED_LINKER_FLAGS}
  -DCMAKE_BUILD_TYPE=${CONFIG})
if(NOT MAKE_PROGRAM STREQUAL "")
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${prefix})
else()
  list(APPEND configure_args -DBACKGROUND_SOURCE_DIR=${SOURCE_DIR})
  if(NOT BUILD_SHARED STREQUAL "")
    list(APPEND configure_args -DBUILD_SHARED_LIBS=${BUILD_SHARED})
  endif()
endif()

run("configure" ${CMAKE_COMMAND} ${configure_args})
run("build" ${CMAKE_COMMAND} --build ${consumer_build} ${config_args})

# A multi-config generator puts the program in a folder named after the configuration.
set(program ${consumer_build}/consumer)
if(NOT CONFIG STREQUAL "" AND EXISTS ${consumer_build}/${CONFIG}/consumer)
  set(program ${consumer_build}/${CONFIG}/consumer)
endif()
run("run" ${program})
