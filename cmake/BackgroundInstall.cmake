# Installs the library, its headers and a CMake package, so that consumers can write
# find_package(background CONFIG REQUIRED) and link background::background.
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
