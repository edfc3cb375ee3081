# The Debian package: `cpack -G DEB` in a build dir (or `cmake --workflow --preset package`)
# makes background_<version>_<arch>.deb of what BackgroundInstall.cmake installs, plus the
# licence and the changelog where Debian keeps them. A -dev style package: headers, CMake
# package, pkg-config file and the library of this build's kind; the package preset builds it
# static (the README says why). A CPACK_ variable given on the command line overrides the
# defaults below (-DCPACK_PACKAGE_CONTACT="Name <address>").

# /usr/share/doc/background/copyright and changelog.gz, as Debian policy names them. The gzip is
# made at configure time; editing CHANGELOG.md makes the next build configure again.
set(background_changelog_gz ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz)
file(ARCHIVE_CREATE OUTPUT ${background_changelog_gz}
  PATHS ${CMAKE_CURRENT_SOURCE_DIR}/CHANGELOG.md
  FORMAT raw COMPRESSION GZip COMPRESSION_LEVEL 9 MTIME 0)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS CHANGELOG.md)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
install(FILES ${background_changelog_gz} DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(background_package_defaults
  CPACK_GENERATOR "DEB"
  CPACK_PACKAGE_NAME "background"
  CPACK_PACKAGE_VENDOR "The background authors"
  # Placeholder address: give the real one with -DCPACK_PACKAGE_CONTACT="Name <address>".
  CPACK_PACKAGE_CONTACT "The background authors <maintainers@background.invalid>"
  CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 thread pool: run a function in the background, get a future"
  CPACK_PACKAGE_DESCRIPTION
    "background runs a C++ function on a thread pool with one call and gives a future back.\nThis package has the headers, the library, its CMake package (find_package(background))\nand its pkg-config file (pkg-config --cflags --libs background)."
  # Files go where GNUInstallDirs put them under /usr (the package preset configures with
  # CMAKE_INSTALL_PREFIX=/usr, so the library lands in the multiarch libdir).
  CPACK_PACKAGING_INSTALL_PREFIX "/usr"
  CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT"
  CPACK_DEBIAN_PACKAGE_SECTION "libdevel")
while(background_package_defaults)
  list(POP_FRONT background_package_defaults name value)
  if(NOT DEFINED ${name})
    set(${name} "${value}")
  endif()
endwhile()

# Depends: what a program built against the package needs to compile and link. The objects
# were compiled against this compiler's libstdc++ and may use its newest symbols. A shared
# library adds what dpkg-shlibdeps finds in it (libc6, libstdc++6 (>= ...)), and a shlibs file
# and the ldconfig trigger for its SONAME.
if(NOT DEFINED CPACK_DEBIAN_PACKAGE_DEPENDS)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    string(REGEX MATCH "^[0-9]+" background_gcc_major "${CMAKE_CXX_COMPILER_VERSION}")
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6-dev, libstdc++-${background_gcc_major}-dev")
  else()
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6-dev, libstdc++-dev")
  endif()
endif()
get_target_property(background_type background TYPE)
if(background_type STREQUAL "SHARED_LIBRARY")
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
endif()

include(CPack)
