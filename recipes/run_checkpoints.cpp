#include "recipes/run_checkpoints.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "kernels/error.h"
#include "recipes/h5.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

// N of "step-N.h5", or -1.
int64_t step_of(const std::string& filename) {
  if (filename.rfind("step-", 0) != 0 || filename.size() < 9 ||
      filename.compare(filename.size() - 3, 3, ".h5") != 0)
    return -1;
  const std::string digits = filename.substr(5, filename.size() - 8);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

}  // namespace

RunCheckpoints::RunCheckpoints(std::string dir, int64_t keep_last)
    : dir_(std::move(dir)), keep_last_(keep_last) {
  LOOM_CHECK(keep_last_ >= 1, "train.keep_last = ", keep_last_, ": must be at least 1");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  LOOM_CHECK(!ec, dir_, ": cannot create the checkpoint folder: ", ec.message());
}

// name -> target, replaced atomically: a hard link under a temporary name renamed over it.
void RunCheckpoints::link(const std::string& target, const std::string& name) const {
  const fs::path tmp = fs::path(dir_) / (".tmp-link-" + name + "-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(target, tmp, ec);
  if (ec) fs::copy_file(target, tmp, fs::copy_options::overwrite_existing, ec);  // no hard links here
  LOOM_CHECK(!ec, dir_, "/", name, ": cannot link or copy ", target, ": ", ec.message());
  fs::rename(tmp, fs::path(dir_) / name, ec);
  if (ec) {
    fs::remove(tmp);
    throw Error(detail::cat(dir_, "/", name, ": cannot replace it: ", ec.message()));
  }
}

std::string RunCheckpoints::save(const Checkpoint& c, bool best) {
  const std::string path = dir_ + "/step-" + std::to_string(c.meta.step) + ".h5";
  save_checkpoint(path, c);
  link(path, "last.h5");
  if (best) link(path, "best.h5");
  const auto files = step_files();
  for (size_t i = size_t(keep_last_); i < files.size(); ++i) fs::remove(files[i].second);
  return path;
}

std::vector<std::pair<int64_t, std::string>> RunCheckpoints::step_files() const {
  std::vector<std::pair<int64_t, std::string>> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_regular_file()) files.emplace_back(step, e.path().string());
  }
  std::sort(files.begin(), files.end(), std::greater<>());
  return files;
}

std::optional<std::string> RunCheckpoints::newest_resumable(
    const std::function<void(const std::string&)>& report) const {
  std::vector<std::string> candidates;
  for (const auto& [step, path] : step_files()) candidates.push_back(path);
  if (fs::exists(last_path())) candidates.push_back(last_path());
  for (const std::string& path : candidates) {
    const std::vector<std::string> problems = verify_checkpoint(path);
    if (!problems.empty()) {
      report(detail::cat("skipping ", path, ": ", problems.front()));
      continue;
    }
    if (!h5::File::open(path).exists("optim")) {
      report(detail::cat("skipping ", path, ": weights only (no /optim training state)"));
      continue;
    }
    return path;
  }
  return std::nullopt;
}

void RunCheckpoints::remove_stale_temporaries() const {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) stale.push_back(e.path());
  for (const fs::path& p : stale) fs::remove(p, ec);
}

}  // namespace loom::recipes
