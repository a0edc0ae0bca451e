// Reading a training run's metrics.jsonl in tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace loom::test {

// (step, loss) of every training record in a run's metrics.jsonl.
inline std::vector<std::pair<int64_t, double>> losses(const std::filesystem::path& out) {
  std::vector<std::pair<int64_t, double>> v;
  std::ifstream in(out / "metrics.jsonl");
  for (std::string l; std::getline(in, l);) {
    const auto j = nlohmann::json::parse(l);
    if (j["type"] == "train") v.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  return v;
}

}  // namespace loom::test
