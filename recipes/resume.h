// Resuming a run exactly (issue 6): capturing and restoring the training state beyond
// the weights, rewinding metrics.jsonl to the resumed step, and what may change.
//
// What may change when a run resumes. Frozen: the [model] keys (the
// parameters' shapes and the computation depend on them; max_len decides which examples
// are trained on) except dropout and label_smoothing, and data.max_tokens and train.seed
// (they decide the batches, which the saved loader position indexes). Everything else
// (learning rate, max_steps, eval cadence, file paths ...) may change and is reported. The corpus itself and the tokenizer are checked by the trainer by content.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "kernels/random.h"
#include "optim/adamw.h"
#include "recipes/checkpoint.h"

namespace loom::recipes {

struct ConfigChange {
  std::string key, before, now;  // "(unset)" where a side does not name the key
};

// Compares the checkpoint's resolved config with the current one. A change of a frozen
// key is an error naming every such key with both values, the checkpoint and the way
// out; the allowed changes are returned.
std::vector<ConfigChange> check_resume_config(const std::string& checkpoint_toml,
                                              const std::string& current_toml,
                                              const std::string& checkpoint_path);

// Every key whose value differs between two resolved configs (for --init-from's report).
std::vector<ConfigChange> config_changes(const std::string& before_toml, const std::string& now_toml);

// The optimizer's per-parameter state (the live tensors, not copies), the dropout
// stream, the loader position and the trainer's counters.
TrainingState capture_training_state(const optim::AdamW& adam, const kernels::Generator& dropout,
                                     const data::Batcher& batcher,
                                     std::vector<std::pair<std::string, double>> metrics);
// The inverse: copies the moments into the optimizer (which must hold the same
// parameters: an error names any the checkpoint lacks or adds), sets the dropout
// stream and the loader position.
void restore_training_state(const TrainingState& state, const std::string& checkpoint_path,
                            optim::AdamW& adam, kernels::Generator& dropout, data::Batcher& batcher);

// Drops the records of metrics.jsonl after `step` (a run killed after its last checkpoint
// logged steps that the resumed run will log again), rewriting the file atomically, and
// returns the records kept. A missing file gives none.
std::vector<nlohmann::json> rewind_metrics(const std::string& path, int64_t step);

}  // namespace loom::recipes
