// The checkpoints of a run folder (DESIGN.md "Checkpoints"): OUT/checkpoints/step-N.h5,
// each written atomically, with last.h5 and best.h5 as hard links to the newest and the
// best step file (copies where the file system has no hard links). Only the newest
// `keep_last` step files are kept; best.h5 keeps its data alive through its own link.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recipes/checkpoint.h"

namespace loom::recipes {

class RunCheckpoints {
 public:
  // keep_last >= 1.
  RunCheckpoints(std::string dir, int64_t keep_last);

  const std::string& dir() const { return dir_; }
  std::string last_path() const { return dir_ + "/last.h5"; }
  std::string best_path() const { return dir_ + "/best.h5"; }

  // Writes step-<c.meta.step>.h5, points last.h5 (and best.h5 when `best`) at it and
  // removes step files beyond keep_last. Returns the step file's path.
  std::string save(const Checkpoint& c, bool best);

  // (step, path) of every step-N.h5, newest first.
  std::vector<std::pair<int64_t, std::string>> step_files() const;

  // The newest checkpoint that verifies and holds a training state: the step files
  // newest first, then last.h5. Every file skipped is reported through `report` with
  // the reason. nullopt when there is none.
  std::optional<std::string> newest_resumable(
      const std::function<void(const std::string&)>& report) const;

  // Removes the temporary files of saves that were killed (.tmp-*): one writer per run.
  void remove_stale_temporaries() const;

 private:
  void link(const std::string& target, const std::string& name) const;

  std::string dir_;
  int64_t keep_last_;
};

}  // namespace loom::recipes
