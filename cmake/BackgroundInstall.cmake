# Installs the library, its headers, a CMake package and a pkg-config file, so that consumers
# can write find_package(background CONFIG REQUIRED) and link background::background, or build
# with `pkg-config --cflags --libs background`. Both find their prefix from where they were
# installed, so `cmake --install <build> --prefix <anywhere>` gives a working install.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS background EXPORT background-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/background DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  PATTERN "testing.hpp" EXCLUDE)
install(EXPORT background-targets
  NAMESPACE background::
  FILE background-targets.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/background)

configure_package_config_file(cmake/background-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/background-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/background)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/background-config-version.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/background-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/background-config-version.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/background)

# background.pc: paths relative to ${pcfiledir} (one ".." per component of the libdir and
# pkgconfig), unless the install dirs were given as absolute paths.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(background_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(background_pc_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(background_pc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  string(REGEX REPLACE "[^/]+" ".." background_pc_up "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  set(background_pc_prefix "\${pcfiledir}/${background_pc_up}")
  set(background_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(background_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
get_target_property(background_type background TYPE)
if(background_type STREQUAL "STATIC_LIBRARY")
  set(background_pc_libs " -pthread")
  set(background_pc_libs_private "")
else()
  set(background_pc_libs "")
  set(background_pc_libs_private "-pthread")
endif()
configure_file(cmake/background.pc.in ${CMAKE_CURRENT_BINARY_DIR}/background.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/background.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
