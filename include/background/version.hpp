/// @file
/// The library's version: the one place it is written. CMake reads these three lines.
#ifndef BACKGROUND_VERSION_HPP
#define BACKGROUND_VERSION_HPP

/// @{
// BACKGROUND_VERSION_MAJOR, _MINOR, _PATCH
//
/// The version's major, minor and patch numbers (Semantic Versioning).
#define BACKGROUND_VERSION_MAJOR 0
#define BACKGROUND_VERSION_MINOR 1
#define BACKGROUND_VERSION_PATCH 0
/// @}

/// 10000 * major + 100 * minor + patch, for preprocessor comparisons.
#define BACKGROUND_VERSION \
  (BACKGROUND_VERSION_MAJOR * 10000 + BACKGROUND_VERSION_MINOR * 100 + BACKGROUND_VERSION_PATCH)

#endif  // BACKGROUND_VERSION_HPP
