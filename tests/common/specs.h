// Where the golden values live: $LOOM_SPECS_DIR (ctest sets it), else the directory CMake
// chose (../shared/specs beside the checkout, or the committed copy in tests/golden).
// A missing file fails the calling test; it never skips.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace loom::test {

inline std::string spec_path(const std::string& file) {
  const char* env = std::getenv("LOOM_SPECS_DIR");
  const std::filesystem::path dir = env ? env : LOOM_DEFAULT_SPECS_DIR;
  const std::filesystem::path p = dir / file;
  REQUIRE_MESSAGE(std::filesystem::exists(p), "spec file not found: ", p.string(),
                  " (set LOOM_SPECS_DIR to ../shared/specs)");
  return p.string();
}

}  // namespace loom::test
