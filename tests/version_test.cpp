// Tests for version.hpp: the macros agree with each other and with the CMake project version.
#include "background/version.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(VersionTest, MacrosAgree) {
  EXPECT_EQ(BACKGROUND_VERSION, BACKGROUND_VERSION_MAJOR * 10000 + BACKGROUND_VERSION_MINOR * 100 +
                                    BACKGROUND_VERSION_PATCH);
}

TEST(VersionTest, MatchesTheCMakePackageVersion) {
  const std::string header = std::to_string(BACKGROUND_VERSION_MAJOR) + "." +
                             std::to_string(BACKGROUND_VERSION_MINOR) + "." +
                             std::to_string(BACKGROUND_VERSION_PATCH);
  EXPECT_EQ(header, BACKGROUND_CMAKE_VERSION);
}

}  // namespace
