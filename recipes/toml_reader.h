// Typed reading of one TOML table with DESIGN.md's error rules: an unknown key is an error
// naming the source, the key and the nearest valid key; a wrong type names the key and
// the type expected. Only recipes/ includes toml++.
#pragma once

#include <cstdint>
#include <toml++/toml.h>

#include <optional>
#include <string>
#include <vector>

#include "kernels/error.h"

namespace loom::recipes {

// The valid key nearest to `key` by edit distance (for "did you mean" hints).
std::string nearest_key(const std::string& key, const std::vector<std::string>& valid);

class TomlReader {
 public:
  // prefix: "model." etc., used in messages.
  TomlReader(const std::string& source, const toml::table& table, std::string prefix)
      : source_(source), table_(table), prefix_(std::move(prefix)) {}

  // Throws for any key of the table not in `valid`.
  void check_keys(const std::vector<std::string>& valid) const;

  void get(const char* key, std::string& out) const;
  void get(const char* key, int64_t& out) const;
  void get(const char* key, int& out) const;
  void get(const char* key, double& out) const;  // integers accepted
  void get(const char* key, bool& out) const;
  void get(const char* key, std::optional<double>& out) const;
  void get(const char* key, std::vector<std::string>& out) const;  // array of strings
  const toml::table* subtable(const char* key) const;               // null when absent

 private:
  [[noreturn]] void type_error(const char* key, const char* expected) const;
  const std::string& source_;
  const toml::table& table_;
  std::string prefix_;
};

// Parses TOML text, turning syntax errors into loom::Error "source:line:col: ...".
toml::table parse_toml(std::string_view text, const std::string& source);

}  // namespace loom::recipes
