// Token-budget, length-bucketed, sharded batching (see batcher.h for the algorithm).
#include "data/batcher.h"

#include <algorithm>
#include <numeric>

#include "kernels/error.h"

namespace loom::data {
namespace {

// SplitMix64's finalizer (Steele et al. 2014): decorrelates nearby (seed, epoch) pairs.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::mt19937_64 epoch_generator(uint64_t seed, int64_t epoch) {
  return std::mt19937_64(mix64(mix64(seed) + 0x9E3779B97F4A7C15ULL * uint64_t(epoch + 1)));
}

// Fisher-Yates (Knuth, TAOCP vol. 2, Algorithm P) with uniform_index.
template <class T> void shuffle_in_place(std::vector<T>& v, std::mt19937_64& gen) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_index(gen, i)]);
}

int64_t example_cost(const Example& e) { return std::max(e.src_len(), e.tgt_len()); }

}  // namespace

uint64_t uniform_index(std::mt19937_64& gen, uint64_t n) {
  LOOM_ASSERT(n >= 1);
  // Words below 2^64 mod n would make small results more likely; skip them.
  const uint64_t threshold = (0 - n) % n;
  uint64_t r = gen();
  while (r < threshold) r = gen();
  return r % n;
}

Batcher::Batcher(std::vector<Example> examples, const BatcherOptions& options)
    : examples_(std::move(examples)), options_(options) {
  LOOM_CHECK(options.max_tokens >= 1, "batcher: max_tokens ", options.max_tokens,
             ": must be positive");
  LOOM_CHECK(options.world_size >= 1 && options.rank >= 0 && options.rank < options.world_size,
             "batcher: rank ", options.rank, " of world_size ", options.world_size,
             ": need 0 <= rank < world_size");
  LOOM_CHECK(!examples_.empty(), "batcher: no examples to batch");
  for (size_t i = 0; i < examples_.size(); ++i) {
    const Example& e = examples_[i];
    LOOM_CHECK(example_cost(e) <= options.max_tokens, "batcher: example ", i, " (line ",
               e.line + 1, ") has ", e.src_len(), " source and ", e.tgt_len(),
               " target tokens, more than max_tokens ", options.max_tokens,
               "; raise max_tokens or lower max_len");
  }
  state_.seed = options.seed;
  const int64_t batches = int64_t(all_batches(0).size());
  LOOM_ASSERT(batches % options.world_size == 0);
  steps_per_epoch_ = batches / options.world_size;
}

std::vector<std::vector<int64_t>> Batcher::all_batches(int64_t epoch) const {
  const int64_t n = int64_t(examples_.size());
  std::mt19937_64 gen = epoch_generator(state_.seed, epoch);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) shuffle_in_place(order, gen);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const Example &ea = examples_[a], &eb = examples_[b];
    const int64_t ca = example_cost(ea), cb = example_cost(eb);
    return ca != cb ? ca < cb : ea.src_len() < eb.src_len();
  });

  // Greedy cut: the cost is nondecreasing along `order`, so adding an example raises the
  // batch's longest length to its own.
  std::vector<std::vector<int64_t>> batches;
  for (int64_t i : order) {
    const int64_t cost = example_cost(examples_[i]);
    if (batches.empty() || int64_t(batches.back().size() + 1) * cost > options_.max_tokens)
      batches.emplace_back();
    batches.back().push_back(i);
  }

  // Equal steps per rank: halve the largest batches until the count divides world_size.
  const size_t world = size_t(options_.world_size);
  while (batches.size() % world != 0) {
    auto largest = std::max_element(batches.begin(), batches.end(),
                                    [](const auto& a, const auto& b) { return a.size() < b.size(); });
    LOOM_CHECK(largest->size() >= 2, "batcher: ", n, " examples in ", batches.size(),
               " single-example batches cannot be shared equally by ", world,
               " ranks; use fewer ranks or more examples");
    const auto half = largest->begin() + std::ptrdiff_t((largest->size() + 1) / 2);
    std::vector<int64_t> second(half, largest->end());
    largest->erase(half, largest->end());
    batches.insert(largest + 1, std::move(second));
  }
  if (options_.shuffle) shuffle_in_place(batches, gen);
  return batches;
}

std::vector<std::vector<int64_t>> Batcher::epoch_batches(int64_t epoch) const {
  std::vector<std::vector<int64_t>> all = all_batches(epoch), mine;
  for (size_t b = size_t(options_.rank); b < all.size(); b += size_t(options_.world_size))
    mine.push_back(std::move(all[b]));
  return mine;
}

Batch Batcher::next() {
  if (state_.cursor == steps_per_epoch_) {
    ++state_.epoch;
    state_.cursor = 0;
  }
  if (cached_epoch_ != state_.epoch) {
    plan_ = epoch_batches(state_.epoch);
    cached_epoch_ = state_.epoch;
  }
  return make_batch(plan_[size_t(state_.cursor++)]);
}

void Batcher::restore(const BatcherState& state) {
  LOOM_CHECK(state.epoch >= 0 && state.cursor >= 0 && state.cursor <= steps_per_epoch_,
             "batcher: restore: position epoch ", state.epoch, " cursor ", state.cursor,
             " is outside this corpus (", steps_per_epoch_,
             " steps per epoch); was it saved for another corpus, max_tokens or world_size?");
  state_ = state;
  cached_epoch_ = -1;
}

Batch Batcher::make_batch(const std::vector<int64_t>& indices) const {
  const int64_t rows = int64_t(indices.size());
  int64_t s_max = 0, t_max = 0;
  for (int64_t i : indices) {
    s_max = std::max(s_max, examples_[i].src_len());
    t_max = std::max(t_max, examples_[i].tgt_len());
  }
  std::vector<int64_t> src(size_t(rows * s_max), Batch::kPad);
  std::vector<int64_t> tgt_in(size_t(rows * t_max), Batch::kPad);
  std::vector<int64_t> tgt_out(size_t(rows * t_max), Batch::kPad);
  Batch batch;
  for (int64_t b = 0; b < rows; ++b) {
    const Example& e = examples_[indices[b]];
    std::copy(e.src.begin(), e.src.end(), src.begin() + b * s_max);
    std::copy(e.tgt.begin(), e.tgt.end() - 1, tgt_in.begin() + b * t_max);
    std::copy(e.tgt.begin() + 1, e.tgt.end(), tgt_out.begin() + b * t_max);
    batch.src_tokens += e.src_len();
    batch.tgt_tokens += e.tgt_len();
  }
  batch.src = ag::from_vector(src, {rows, s_max});
  batch.tgt_in = ag::from_vector(tgt_in, {rows, t_max});
  batch.tgt_out = ag::from_vector(tgt_out, {rows, t_max});
  batch.indices = indices;
  return batch;
}

}  // namespace loom::data
