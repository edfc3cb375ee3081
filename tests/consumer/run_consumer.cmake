# run_consumer.cmake: builds and runs one consumer project of tests/consumer, as a user would;
# any failing step fails the test. Run by tests/consumer/CMakeLists.txt as
#
#   cmake -DMODE=find_package|add_subdirectory|pkg_config -DCONSUMER_DIR=<tests/consumer>
#         -DSOURCE_DIR=<repository> -DBUILD_DIR=<the build to install> -DWORK_DIR=<scratch>
#         -DGENERATOR=... -DMAKE_PROGRAM=... -DCXX_COMPILER=... -DCXX_FLAGS=...
#         -DEXE_LINKER_FLAGS=... -DSHARED_LINKER_FLAGS=... -DBUILD_SHARED=... -DCONFIG=...
#         [-DLIBDIR=<CMAKE_INSTALL_LIBDIR>] [-DCOPY=shared] -P run_consumer.cmake
#
# find_package: installs BUILD_DIR to WORK_DIR/prefix, then configures the consumer with
# CMAKE_PREFIX_PATH set to it. add_subdirectory: the consumer adds SOURCE_DIR itself.
# pkg_config: installs BUILD_DIR to WORK_DIR/prefix, then runs `make` on the consumer's plain
# Makefile with PKG_CONFIG_PATH=WORK_DIR/prefix/LIBDIR/pkgconfig; with -DCOPY=shared it builds
# and installs a shared copy of SOURCE_DIR instead (the library alone), to test the other kind.
# It prints "SKIPPED" (which the test takes as a skip) when pkg-config or make is missing.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE CONSUMER_DIR SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT MODE MATCHES "^(find_package|add_subdirectory|pkg_config)$")
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package, add_subdirectory or pkg_config")
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

if(MODE STREQUAL "pkg_config")
  find_program(pkg_config NAMES pkg-config pkgconf)
  find_program(make NAMES make gmake)
  if(NOT pkg_config OR NOT make)
    message("consumer (pkg_config): SKIPPED: it needs pkg-config and make, which are not "
            "installed (apt-get install pkg-config make; .ci/prerequisites.txt lists them)")
    return()
  endif()
  if(NOT DEFINED LIBDIR OR LIBDIR STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -DLIBDIR=... is required for pkg_config")
  endif()
  set(prefix ${WORK_DIR}/prefix)
  if(COPY STREQUAL "shared")
    set(copy ${WORK_DIR}/shared)
    set(copy_args -S ${SOURCE_DIR} -B ${copy} -G ${GENERATOR}
        -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_CXX_FLAGS=${CXX_FLAGS}
        -DCMAKE_SHARED_LINKER_FLAGS=${SHARED_LINKER_FLAGS} -DCMAKE_BUILD_TYPE=${CONFIG}
        -DCMAKE_INSTALL_LIBDIR=${LIBDIR} -DBUILD_SHARED_LIBS=ON -DBACKGROUND_INSTALL=ON
        -DBACKGROUND_BUILD_TESTS=OFF -DBACKGROUND_BUILD_EXAMPLES=OFF)
    if(NOT MAKE_PROGRAM STREQUAL "")
      list(APPEND copy_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
    endif()
    run("configure a shared copy" ${CMAKE_COMMAND} ${copy_args})
    run("build the shared copy" ${CMAKE_COMMAND} --build ${copy} --target background ${config_args})
    run("install" ${CMAKE_COMMAND} --install ${copy} --prefix ${prefix} ${config_args})
    if(NOT EXISTS ${prefix}/${LIBDIR}/libbackground.so OR EXISTS ${prefix}/${LIBDIR}/libbackground.a)
      message(FATAL_ERROR "consumer (pkg_config): the copy did not install a shared library alone")
    endif()
  else()
    run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})
  endif()

  # Only this prefix is searched, so that a background installed on the machine cannot stand in.
  set(pc_dir ${prefix}/${LIBDIR}/pkgconfig)
  set(make_args -C ${consumer_build} -f ${CONSUMER_DIR}/pkg_config/Makefile
      CXX=${CXX_COMPILER} PKG_CONFIG=${pkg_config})
  if(NOT CXX_FLAGS STREQUAL "")
    list(APPEND make_args "CXXFLAGS=${CXX_FLAGS}")
  endif()
  if(NOT EXE_LINKER_FLAGS STREQUAL "")
    list(APPEND make_args "LDFLAGS=${EXE_LINKER_FLAGS}")
  endif()
  file(MAKE_DIRECTORY ${consumer_build})
  run("build" ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} PKG_CONFIG_LIBDIR=${pc_dir}
      ${make} ${make_args})
  # pkg-config gives no run path: a shared library is found through LD_LIBRARY_PATH.
  run("run" ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${prefix}/${LIBDIR} ${consumer_build}/consumer)
  return()
endif()

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
