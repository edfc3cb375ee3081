# The target `docs`: the API reference, made by Doxygen from the public headers' `///` comments,
# with the README as its main page (docs/Doxyfile.in), into ${PROJECT_BINARY_DIR}/api. Any
# Doxygen warning, an undocumented public name say, fails it. Not part of `all`: build it with
# `cmake --workflow --preset docs`. Without Doxygen, the target only says how to get it, and fails.
find_package(Doxygen QUIET)
if(TARGET Doxygen::doxygen)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(docs
    # Afresh each time, so that no page of a name since removed lingers.
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${PROJECT_BINARY_DIR}/api
    COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/Doxyfile
    COMMAND ${CMAKE_COMMAND} -E echo "API reference: ${PROJECT_BINARY_DIR}/api/index.html"
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: the API reference"
    VERBATIM)
else()
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo
            "background: the API reference needs Doxygen: apt-get install doxygen, and reconfigure"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
