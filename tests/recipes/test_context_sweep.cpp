// The context sweep (loom eval --context-sweep): its buckets and position blocks count
// every target token once, and each bucket's NLL equals the teacher-forced NLL that
// evaluate() computes on the same examples (an independent path through sequence_loss).
#include <doctest/doctest.h>

#include <cmath>

#include "common/temp_dir.h"
#include "common/tiny_corpus.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "recipes/context_sweep.h"
#include "recipes/evaluate.h"

namespace loom::recipes {
namespace {

TEST_CASE("context sweep: buckets and blocks count tokens and match evaluate's NLL") {
  const test::TempDir tmp("sweep");
  test::make_tiny_corpus(tmp.path, 200, 40, 4);
  const data::Tokenizer tok = data::Tokenizer::load((tmp.path / "spm.model").string());
  const data::Encoder encode = [&](std::string_view s) { return tok.encode(s); };
  const data::Corpus dev = data::load_corpus((tmp.path / "dev.en").string(),
                                             (tmp.path / "dev.es").string(), encode, 64,
                                             data::LengthPolicy::Truncate);
  const std::vector<std::string> refs = data::read_lines((tmp.path / "dev.es").string());
  nn::ModelConfig cfg;
  cfg.vocab = tok.vocab_size(), cfg.d_model = 16, cfg.heads = 2, cfg.kv_heads = 2, cfg.ffn = 32;
  cfg.encoder_layers = 1, cfg.decoder_layers = 1, cfg.position = "rope", cfg.max_len = 64;
  cfg.label_smoothing = 0;
  nn::Transformer model(cfg, 3);
  model.eval();

  SweepOptions o;
  o.buckets = {6, 9, 64};
  o.block = 4;
  o.decode_options.beam = 1;
  const SweepResult r = context_sweep(model, dev.examples, tok, refs, o);
  REQUIRE(r.buckets.size() == 3);
  int64_t all_tokens = 0, examples = 0;
  for (const SweepBucket& b : r.buckets) {
    INFO(b.lo, "-", b.hi);
    std::vector<data::Example> members;
    int64_t tokens = 0;
    for (const data::Example& e : dev.examples)
      if (e.tgt_len() > b.lo && e.tgt_len() <= b.hi) members.push_back(e), tokens += e.tgt_len();
    CHECK(b.examples == int64_t(members.size()));
    CHECK(b.tokens == tokens);
    all_tokens += tokens, examples += b.examples;
    if (members.empty()) continue;
    const EvalResult e = evaluate(model, members, tok, refs, 4000, 0, o.decode_options);
    CHECK(b.nll == doctest::Approx(e.nll).epsilon(1e-5));
    CHECK(b.ppl == doctest::Approx(std::exp(e.nll)).epsilon(1e-5));
    CHECK(b.bleu >= 0);  // decoded (a seq2seq model)
  }
  CHECK(examples == int64_t(dev.examples.size()));
  CHECK(r.beyond == 0);
  int64_t block_tokens = 0;
  for (size_t k = 0; k < r.blocks.size(); ++k) {
    CHECK(r.blocks[k].start == int64_t(k) * 4);
    block_tokens += r.blocks[k].tokens;
  }
  CHECK(block_tokens == all_tokens);
  // Every example has at least one target token (eos): block 0 counts one per example...
  CHECK(r.blocks[0].tokens >= examples);
  // ... and an example longer than the last bucket is left out and counted.
  o.buckets = {6};
  const SweepResult small = context_sweep(model, dev.examples, tok, refs, o);
  CHECK(small.beyond == int64_t(dev.examples.size()) - small.buckets[0].examples);
  CHECK(sweep_csv(small, "rope").rfind("method,kind,lo,hi,examples,tokens,nll,ppl,bleu,chrf\nrope,length,1,6,", 0) == 0);
}

}  // namespace
}  // namespace loom::recipes
