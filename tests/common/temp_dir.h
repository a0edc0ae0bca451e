// Test helpers for files: a fresh directory under the system temp dir, removed at scope
// exit, and the message of the loom::Error a call throws.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "kernels/error.h"

namespace loom::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("loom-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to path/file and returns the file's path.
  std::string write(const std::string& file, const std::string& text) const {
    const std::filesystem::path p = path / file;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

// The loom::Error message `f` throws ("" when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const loom::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace loom::test
