// Token-budget batching (fairseq's batch_by_size, Marian's --mini-batch-words): a batch
// costs B * max(S_max, T_max) padded tokens, kept <= max_tokens. Each epoch e:
//   1. the examples are shuffled (Fisher-Yates on mt19937_64 seeded from (seed, e)) and
//      then stably sorted by (max(S, T), S): length buckets whose ties differ per epoch;
//   2. batches are cut greedily along that order;
//   3. while the batch count is not a multiple of world_size, the batch with the most
//      examples (the first such) is halved, so every rank gets the same number of steps
//      and no example is dropped or repeated;
//   4. the batch order is shuffled, and rank r takes batches r, r + W, r + 2W, ...
// With shuffle off (evaluation) steps 1 and 4 keep the sorted order and the epoch does
// not matter. Randomness uses only std::mt19937_64's output (fixed by the C++ standard)
// and an explicit rejection-sampling map to [0, n), so the order is the same on every
// platform (std::shuffle and std::uniform_int_distribution are implementation-defined).
// An example longer than max_tokens on its own is an error at construction naming it
// (corpora for training skip pairs over max_len, so max_tokens >= max_len avoids it).
// The position {seed, epoch, cursor} is part of checkpoints: restore(state()) in a fresh
// batcher over the same examples yields exactly the batches the saved one would have.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "autograd/tensor.h"
#include "data/corpus.h"

namespace loom::data {

struct Batch {
  static constexpr int32_t kPad = 0;

  ag::Tensor src;      // (B, S) int64, padded with kPad
  ag::Tensor tgt_in;   // (B, T) int64, padded with kPad
  ag::Tensor tgt_out;  // (B, T) int64, padded with kPad
  int64_t src_tokens = 0;        // non-pad ids in src
  int64_t tgt_tokens = 0;        // non-pad ids in tgt_out
  std::vector<int64_t> indices;  // row b is examples[indices[b]]
};

struct BatcherOptions {
  int64_t max_tokens = 4096;  // padded tokens per batch, B * max(S_max, T_max)
  uint64_t seed = 1;
  bool shuffle = true;        // false: length-sorted order, for evaluation
  int world_size = 1;
  int rank = 0;
};

// The position of the next batch: `cursor` batches of epoch `epoch` were already taken
// (by this rank).
struct BatcherState {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t cursor = 0;
};

class Batcher {
 public:
  Batcher(std::vector<Example> examples, const BatcherOptions& options);

  // The next batch of this rank; after the epoch's last one, the first of the next epoch.
  Batch next();

  // Batches per epoch for each rank (the same on all ranks).
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t epoch() const { return state_.epoch; }
  const std::vector<Example>& examples() const { return examples_; }

  BatcherState state() const { return state_; }
  // Continues from a saved position; the seed is the saved one. The cursor must lie in
  // [0, steps_per_epoch()].
  void restore(const BatcherState& state);

  // This rank's batches of `epoch` as example indices, in order (what next() walks).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;

 private:
  std::vector<std::vector<int64_t>> all_batches(int64_t epoch) const;
  Batch make_batch(const std::vector<int64_t>& indices) const;

  std::vector<Example> examples_;
  BatcherOptions options_;
  BatcherState state_;
  int64_t steps_per_epoch_ = 0;
  int64_t cached_epoch_ = -1;  // epoch whose batches `plan_` holds
  std::vector<std::vector<int64_t>> plan_;
};

// A uniform integer in [0, n) from mt19937_64 words by rejection (the same on every
// platform); n >= 1.
uint64_t uniform_index(std::mt19937_64& gen, uint64_t n);

}  // namespace loom::data
