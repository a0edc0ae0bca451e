// Decoding: greedy search reproduces a memorised reversal task exactly; beam 1 equals
// greedy; beam 4 scores at least as well as greedy under the model (full forward pass);
// results do not depend on batching; DecoderState::select reorders rows exactly; length
// caps and input errors.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "autograd/ops.h"
#include "nn/loss.h"
#include "optim/adamw.h"
#include "recipes/decode.h"

namespace loom::test {
namespace {

using ag::Tensor;
using recipes::DecodeOptions;
using Ids = std::vector<std::vector<int32_t>>;

nn::ModelConfig tiny(int64_t vocab) {
  nn::ModelConfig cfg;
  cfg.vocab = vocab, cfg.d_model = 32, cfg.heads = 2, cfg.kv_heads = 2, cfg.ffn = 64;
  cfg.encoder_layers = 1, cfg.decoder_layers = 1, cfg.dropout = 0.0, cfg.label_smoothing = 0.0;
  return cfg;
}

// n random sequences of 2..6 tokens from [4, vocab), each followed by eos.
Ids random_sources(int n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(4, int32_t(vocab - 1)), len(2, 6);
  Ids out(static_cast<size_t>(n));
  for (auto& s : out) {
    s.resize(size_t(len(rng)));
    for (auto& t : s) t = tok(rng);
    s.push_back(int32_t(nn::kEos));
  }
  return out;
}

// Rows padded with pad (0) to (N, T), optionally prefixed by bos / suffixed by eos.
Tensor pad_rows(const Ids& rows, bool bos, bool eos) {
  size_t T = 0;
  for (const auto& r : rows) T = std::max(T, r.size() + bos + eos);
  std::vector<int64_t> ids(rows.size() * T, nn::kPad);
  for (size_t i = 0; i < rows.size(); ++i) {
    size_t j = i * T;
    if (bos) ids[j++] = nn::kBos;
    for (int32_t t : rows[i]) ids[j++] = t;
    if (eos) ids[j] = nn::kEos;
  }
  return ag::from_vector(ids, {int64_t(rows.size()), int64_t(T)});
}

// decode.h's ranking score by a full forward pass: (sum of the log-probs of hyp + eos)
// / (len(hyp) + 1)^alpha.
double model_score(const nn::Transformer& model, const std::vector<int32_t>& src,
                   const std::vector<int32_t>& hyp, double alpha) {
  ag::NoGrad no_grad;
  const Tensor logits = model.forward(pad_rows({src}, false, false), pad_rows({hyp}, true, false));
  const std::vector<double> lp =
      ag::log_softmax(logits, -1).to(kernels::DType::F64).to_vector<double>();
  const int64_t V = model.config().vocab;
  double sum = 0;
  for (size_t t = 0; t <= hyp.size(); ++t)
    sum += lp[t * size_t(V) + size_t(t < hyp.size() ? hyp[t] : int32_t(nn::kEos))];
  return sum / std::pow(double(hyp.size() + 1), alpha);
}

TEST_CASE("decode: greedy and beam search reproduce a memorised reversal task") {
  const Ids sources = random_sources(16, 20, 42);
  Ids reversed;
  for (const auto& s : sources) reversed.emplace_back(s.rbegin() + 1, s.rend());
  const Tensor src = pad_rows(sources, false, false);
  const Tensor tgt_in = pad_rows(reversed, true, false);
  const Tensor tgt_out = pad_rows(reversed, false, true).slice(1, 0, tgt_in.size(1)).contiguous();
  nn::Transformer model(tiny(20), 7);
  optim::AdamWOptions opt;
  opt.lr = 1e-2, opt.beta2 = 0.98, opt.weight_decay = 0.0;
  optim::AdamW adam(model.named_parameters(), opt);
  double loss = 1e9;
  for (int step = 0; step < 400 && loss >= 0.02; ++step) {
    nn::SequenceLoss l = nn::sequence_loss(model.forward(src, tgt_in), tgt_out, 0.0);
    loss = l.loss.item<float>();
    l.loss.backward();
    adam.step();
    adam.zero_grad();
  }
  REQUIRE(loss < 0.02);
  model.eval();
  DecodeOptions greedy;
  CHECK(recipes::translate_ids(model, sources, greedy) == reversed);
  CHECK(recipes::translate_ids(model, sources, greedy, 10) == reversed);  // many batches
  DecodeOptions beam;
  beam.beam = 4;
  CHECK(recipes::translate_ids(model, sources, beam) == reversed);
  // A cap of 2 tokens: greedy keeps the first two of each reversal; beam search's best
  // may be another hypothesis (the forced eos is unlikely), but no longer.
  greedy.max_len = 2;
  const Ids capped = recipes::translate_ids(model, sources, greedy);
  beam.max_len_a = 0, beam.max_len_b = 2;
  const Ids capped_beam = recipes::translate_ids(model, sources, beam);
  for (size_t i = 0; i < sources.size(); ++i) {
    CHECK(capped[i] == std::vector<int32_t>(reversed[i].begin(), reversed[i].begin() + 2));
    CHECK(capped_beam[i].size() <= 2);
  }
}

TEST_CASE("decode: beam 1 equals greedy and beam 4 scores at least greedy's on a random model") {
  for (uint64_t seed : {1, 2, 3}) {
    INFO("seed ", seed);
    nn::Transformer model(tiny(10), seed);
    model.eval();
    const Ids sources = random_sources(6, 10, seed + 100);
    DecodeOptions opts;
    const Ids greedy = recipes::greedy_search(model, sources, opts);
    CHECK(recipes::beam_search(model, sources, opts) == greedy);
    opts.beam = 4;
    for (double alpha : {0.0, 1.0}) {
      opts.length_penalty = alpha;
      const Ids beam = recipes::beam_search(model, sources, opts);
      int better = 0;
      for (size_t i = 0; i < sources.size(); ++i) {
        const double b = model_score(model, sources[i], beam[i], alpha);
        const double g = model_score(model, sources[i], greedy[i], alpha);
        CHECK(b >= g - 1e-9);
        better += b > g + 1e-9;
      }
      MESSAGE("seed ", seed, ", length penalty ", alpha, ": beam 4 beats greedy on ", better,
              " of 6");
    }
  }
}

TEST_CASE("decode: results do not depend on the batch composition") {
  nn::Transformer model(tiny(10), 11);
  model.eval();
  const Ids sources = random_sources(7, 10, 5);
  for (int beam : {1, 4}) {
    INFO("beam ", beam);
    DecodeOptions opts;
    opts.beam = beam;
    const Ids together = recipes::translate_ids(model, sources, opts);
    for (size_t i = 0; i < sources.size(); ++i)
      CHECK(recipes::translate_ids(model, {sources[i]}, opts)[0] == together[i]);
    CHECK(recipes::translate_ids(model, sources, opts, 1) == together);
    CHECK(ag::tape_size() == 0);  // decoding records nothing
  }
}

TEST_CASE("decode: DecoderState::select reorders and replicates rows exactly") {
  nn::Transformer model(tiny(10), 3);
  model.eval();
  ag::NoGrad no_grad;
  const std::vector<int32_t> a = {4, 5, 6, 7, 3}, b = {8, 9, 3};
  const Tensor first = ag::from_vector<int64_t>({2, 2, 2}, {3, 1});
  const Tensor second = ag::from_vector<int64_t>({5, 6, 7}, {3, 1});
  // Before any step (cross-attention caches still empty) and after one.
  for (bool step_first : {false, true}) {
    INFO("select after a step: ", step_first);
    nn::DecoderState s = model.start_decoding(pad_rows({a, b}, false, false));
    if (step_first) model.decode_step(s, first.slice(0, 0, 2).contiguous());
    s.select(ag::from_vector<int64_t>({1, 0, 0}, {3}));
    CHECK(s.memory.size(0) == 3);
    Tensor got = step_first ? model.decode_step(s, second)
                            : model.decode_step(s, ag::concat({first, second}, 1));
    nn::DecoderState r = model.start_decoding(pad_rows({b, a, a}, false, false));
    Tensor want = step_first ? (model.decode_step(r, first), model.decode_step(r, second))
                             : model.decode_step(r, ag::concat({first, second}, 1));
    REQUIRE(got.sizes() == want.sizes());
    const std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
    for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(w[i]).epsilon(1e-5));
  }
}

TEST_CASE("decode: caps, and errors for a training-mode model and empty sources") {
  nn::Transformer model(tiny(10), 4);
  const Ids sources = random_sources(5, 10, 9);
  try {
    recipes::translate_ids(model, sources, {});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("translate: the model is in training mode (dropout on); "
                                     "call model.eval() first") != std::string::npos);
  }
  model.eval();
  try {
    recipes::translate_ids(model, {{4, 3}, {}}, {});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("translate: source 1 is empty: expected its pieces "
                                     "followed by eos") != std::string::npos);
  }
  for (int beam : {1, 3}) {
    DecodeOptions opts;
    opts.beam = beam, opts.max_len_a = 0.5, opts.max_len_b = 1;  // cap floor(len / 2 + 1)
    const Ids out = recipes::translate_ids(model, sources, opts);
    for (size_t i = 0; i < sources.size(); ++i)
      CHECK(out[i].size() <= size_t(sources[i].size() / 2 + 1));
  }
}

}  // namespace
}  // namespace loom::test
