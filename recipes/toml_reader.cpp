#include "recipes/toml_reader.h"

#include <algorithm>

namespace loom::recipes {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string nearest_key(const std::string& key, const std::vector<std::string>& valid) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& v : valid) {
    const size_t d = edit_distance(key, v);
    if (d < best_d) best_d = d, best = v;
  }
  return best;
}

toml::table parse_toml(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw Error(detail::cat(source, ":", e.source().begin.line, ":", e.source().begin.column,
                            ": TOML syntax error: ", e.description()));
  }
}

void TomlReader::check_keys(const std::vector<std::string>& valid) const {
  for (const auto& [k, v] : table_) {
    const std::string key(k.str());
    if (std::find(valid.begin(), valid.end(), key) == valid.end())
      throw Error(detail::cat(source_, ": ", prefix_, key, ": unknown key; did you mean ", prefix_,
                              nearest_key(key, valid), "?"));
  }
}

void TomlReader::type_error(const char* key, const char* expected) const {
  throw Error(detail::cat(source_, ": ", prefix_, key, ": expected ", expected));
}

void TomlReader::get(const char* key, std::string& out) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return;
  if (!n->is_string()) type_error(key, "a string");
  out = n->as_string()->get();
}

void TomlReader::get(const char* key, int64_t& out) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return;
  if (!n->is_integer()) type_error(key, "an integer");
  out = n->as_integer()->get();
}

void TomlReader::get(const char* key, int& out) const {
  int64_t v = out;
  get(key, v);
  out = int(v);
}

void TomlReader::get(const char* key, double& out) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return;
  if (n->is_floating_point()) out = n->as_floating_point()->get();
  else if (n->is_integer()) out = double(n->as_integer()->get());
  else type_error(key, "a number");
}

void TomlReader::get(const char* key, bool& out) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return;
  if (!n->is_boolean()) type_error(key, "a boolean (true or false)");
  out = n->as_boolean()->get();
}

void TomlReader::get(const char* key, std::optional<double>& out) const {
  if (table_.get(key) == nullptr) return;
  double v = 0;
  get(key, v);
  out = v;
}

void TomlReader::get(const char* key, std::vector<std::string>& out) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return;
  const toml::array* a = n->as_array();
  if (a == nullptr) type_error(key, "an array of strings");
  std::vector<std::string> v;
  for (const toml::node& e : *a) {
    if (!e.is_string()) type_error(key, "an array of strings");
    v.push_back(e.as_string()->get());
  }
  out = std::move(v);
}

const toml::table* TomlReader::subtable(const char* key) const {
  const toml::node* n = table_.get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) type_error(key, "a table");
  return n->as_table();
}

}  // namespace loom::recipes
