// Greedy and beam search decoding (see recipes/decode.h for the algorithm and its
// references: Nematus' shrinking beam, fairseq's length penalty and length caps).
//
// Each step feeds the last token of every live hypothesis as a (R, 1) batch and reads
// log_softmax of its logits. Hypotheses that finish leave the batch: the next
// DecoderState::select keeps only the rows that continue, in their new order (a beam's
// children replicate its row), so the KV caches always match the live hypotheses.
#include "recipes/decode.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"

namespace loom::recipes {
namespace {

using ag::Tensor;
using kernels::DType;

void check_inputs(const nn::Transformer& model, const std::vector<std::vector<int32_t>>& sources,
                  const DecodeOptions& opts) {
  LOOM_CHECK(model.config().is_seq2seq(), "translate: arch = \"", model.config().arch,
             "\": expected a seq2seq model");
  LOOM_CHECK(!model.is_training(),
             "translate: the model is in training mode (dropout on); "
             "call model.eval() first");
  LOOM_CHECK(opts.beam >= 1 && opts.max_len >= 0, "translate: beam ", opts.beam, ", max_len ",
             opts.max_len, ": expected beam >= 1 and max_len >= 0");
  for (size_t i = 0; i < sources.size(); ++i)
    LOOM_CHECK(!sources[i].empty(), "translate: source ", i,
               " is empty: expected its pieces followed by eos");
}

// Generated-token cap of one source: min(max_len, floor(a * src_len + b)), at least 0.
int64_t length_cap(const DecodeOptions& opts, size_t src_len) {
  const double cap = std::floor(opts.max_len_a * double(src_len) + opts.max_len_b);
  return int64_t(std::clamp(cap, 0.0, double(opts.max_len)));
}

// sources padded to (N, S) int64 ids.
Tensor source_batch(const std::vector<std::vector<int32_t>>& sources) {
  size_t S = 0;
  for (const auto& s : sources) S = std::max(S, s.size());
  std::vector<int64_t> ids(sources.size() * S, nn::kPad);
  for (size_t i = 0; i < sources.size(); ++i)
    std::copy(sources[i].begin(), sources[i].end(), ids.begin() + int64_t(i * S));
  return ag::from_vector(ids, {int64_t(sources.size()), int64_t(S)});
}

// Feeds one token per row; returns the (R, V) log-probs of the next token, row-major.
std::vector<double> step_log_probs(const nn::Transformer& model, nn::DecoderState& state,
                                   const std::vector<int64_t>& last) {
  const Tensor tokens = ag::from_vector(last, {int64_t(last.size()), 1});
  const Tensor logits = model.decode_step(state, tokens);  // (R, 1, V)
  return ag::log_softmax(logits, -1).to(DType::F64).to_vector<double>();
}

// Keeps state rows `rows` (in that order) unless they are all rows unchanged.
void keep_rows(nn::DecoderState& state, const std::vector<int64_t>& rows, int64_t current) {
  std::vector<int64_t> identity(static_cast<size_t>(current));
  std::iota(identity.begin(), identity.end(), int64_t(0));
  if (rows != identity) state.select(ag::from_vector(rows, {int64_t(rows.size())}));
}

bool can_generate(int64_t v) { return v != nn::kPad && v != nn::kBos; }

struct Hypothesis {
  std::vector<int32_t> ids;
  double score = 0;  // sum of log-probs; once finished, normalised (length penalty)
};

}  // namespace

std::vector<std::vector<int32_t>> greedy_search(const nn::Transformer& model,
                                                const std::vector<std::vector<int32_t>>& sources,
                                                const DecodeOptions& opts) {
  check_inputs(model, sources, opts);
  std::vector<std::vector<int32_t>> out(sources.size());
  if (sources.empty()) return out;
  ag::NoGrad no_grad;
  const int64_t V = model.config().vocab;
  nn::DecoderState state = model.start_decoding(source_batch(sources));
  std::vector<int64_t> alive(sources.size()), last(sources.size(), nn::kBos);
  std::iota(alive.begin(), alive.end(), int64_t(0));
  for (int64_t step = 0;; ++step) {
    // Rows at their cap are finished (eos forced) before the step.
    std::vector<int64_t> rows, next_alive, next_last;
    for (size_t r = 0; r < alive.size(); ++r)
      if (step < length_cap(opts, sources[size_t(alive[r])].size())) {
        rows.push_back(int64_t(r));
        next_alive.push_back(alive[r]);
        next_last.push_back(last[r]);
      }
    if (rows.empty()) break;
    keep_rows(state, rows, int64_t(alive.size()));
    alive = std::move(next_alive);
    last = std::move(next_last);
    const std::vector<double> lp = step_log_probs(model, state, last);
    rows.clear(), next_alive.clear(), next_last.clear();
    for (size_t r = 0; r < alive.size(); ++r) {
      const double* p = lp.data() + r * size_t(V);
      int64_t best = -1;
      for (int64_t v = 0; v < V; ++v)
        if (can_generate(v) && (best < 0 || p[v] > p[best])) best = v;
      if (best == nn::kEos) continue;
      out[size_t(alive[r])].push_back(int32_t(best));
      rows.push_back(int64_t(r));
      next_alive.push_back(alive[r]);
      next_last.push_back(best);
    }
    if (rows.empty()) break;
    keep_rows(state, rows, int64_t(alive.size()));
    alive = std::move(next_alive);
    last = std::move(next_last);
  }
  return out;
}

std::vector<std::vector<int32_t>> beam_search(const nn::Transformer& model,
                                              const std::vector<std::vector<int32_t>>& sources,
                                              const DecodeOptions& opts) {
  check_inputs(model, sources, opts);
  std::vector<std::vector<int32_t>> out(sources.size());
  if (sources.empty()) return out;
  ag::NoGrad no_grad;
  const int64_t V = model.config().vocab;
  const size_t k = size_t(opts.beam);
  auto finish = [&](std::vector<Hypothesis>& done, std::vector<int32_t> ids, double sum) {
    const double n = double(ids.size() + 1);  // + eos
    done.push_back({std::move(ids), sum / std::pow(n, opts.length_penalty)});
  };
  // Live sentences in batch order; each has 1..k live hypotheses, one state row each.
  // The first step has one row per sentence (all beams would be equal).
  nn::DecoderState state = model.start_decoding(source_batch(sources));
  std::vector<int64_t> alive(sources.size());
  std::iota(alive.begin(), alive.end(), int64_t(0));
  std::vector<std::vector<Hypothesis>> beams(sources.size(), std::vector<Hypothesis>(1));
  std::vector<std::vector<Hypothesis>> finished(sources.size());
  for (int64_t step = 0; !alive.empty(); ++step) {
    std::vector<int64_t> last;
    for (int64_t i : alive)
      for (const Hypothesis& h : beams[size_t(i)])
        last.push_back(h.ids.empty() ? nn::kBos : h.ids.back());
    const std::vector<double> lp = step_log_probs(model, state, last);
    std::vector<int64_t> rows, next_alive;
    int64_t base = 0;  // first state row of the current sentence
    for (int64_t i : alive) {
      std::vector<Hypothesis>& live = beams[size_t(i)];
      std::vector<Hypothesis>& done = finished[size_t(i)];
      const size_t n_live = live.size();
      if (step >= length_cap(opts, sources[size_t(i)].size())) {
        for (size_t b = 0; b < n_live; ++b)
          finish(done, live[b].ids, live[b].score + lp[(size_t(base) + b) * size_t(V) + nn::kEos]);
        base += int64_t(n_live);
        continue;
      }
      // Candidates (beam, token), best sum first; ties by lower beam then lower token.
      std::vector<std::pair<double, int64_t>> cand;  // (sum, b * V + v)
      for (size_t b = 0; b < n_live; ++b)
        for (int64_t v = 0; v < V; ++v)
          if (can_generate(v))
            cand.push_back({live[b].score + lp[(size_t(base) + b) * size_t(V) + size_t(v)],
                            int64_t(b) * V + v});
      // The beam narrows by one per finished hypothesis: width = k - finished so far.
      const size_t top = std::min(cand.size(), k - done.size());
      std::partial_sort(cand.begin(), cand.begin() + int64_t(top), cand.end(),
                        [](const auto& x, const auto& y) {
                          return x.first > y.first || (x.first == y.first && x.second < y.second);
                        });
      std::vector<Hypothesis> next;
      for (size_t c = 0; c < top; ++c) {
        const size_t b = size_t(cand[c].second / V);
        const int64_t v = cand[c].second % V;
        if (v == nn::kEos) {
          finish(done, live[b].ids, cand[c].first);
          continue;
        }
        Hypothesis h{live[b].ids, cand[c].first};
        h.ids.push_back(int32_t(v));
        next.push_back(std::move(h));
        rows.push_back(base + int64_t(b));
      }
      base += int64_t(n_live);
      if (next.empty()) continue;
      live = std::move(next);
      next_alive.push_back(i);
    }
    if (!next_alive.empty()) keep_rows(state, rows, base);
    alive = std::move(next_alive);
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::vector<Hypothesis>& done = finished[i];
    LOOM_ASSERT(!done.empty());
    const auto best = std::max_element(
        done.begin(), done.end(), [](const auto& x, const auto& y) { return x.score < y.score; });
    out[i] = best->ids;
  }
  return out;
}

std::vector<std::vector<int32_t>> translate_ids(const nn::Transformer& model,
                                                const std::vector<std::vector<int32_t>>& sources,
                                                const DecodeOptions& opts,
                                                int64_t max_batch_tokens) {
  check_inputs(model, sources, opts);
  LOOM_CHECK(max_batch_tokens >= 1, "translate: max_batch_tokens ", max_batch_tokens,
             ": expected >= 1");
  std::vector<size_t> order(sources.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sources[a].size() < sources[b].size(); });
  std::vector<std::vector<int32_t>> out(sources.size());
  for (size_t begin = 0; begin < order.size();) {
    // Sorted by length, so the batch's longest source is its last.
    size_t end = begin + 1;
    while (end < order.size() &&
           int64_t(end + 1 - begin) * opts.beam * int64_t(sources[order[end]].size()) <=
               max_batch_tokens)
      ++end;
    std::vector<std::vector<int32_t>> batch;
    for (size_t j = begin; j < end; ++j) batch.push_back(sources[order[j]]);
    const auto result =
        opts.beam == 1 ? greedy_search(model, batch, opts) : beam_search(model, batch, opts);
    for (size_t j = begin; j < end; ++j) out[order[j]] = result[j - begin];
    begin = end;
  }
  return out;
}

}  // namespace loom::recipes
