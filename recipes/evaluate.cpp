#include "recipes/evaluate.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "data/batcher.h"
#include "nn/loss.h"
#include "recipes/metrics.h"

namespace loom::recipes {

ag::Tensor batch_logits(const nn::Transformer& model, const data::Batch& batch) {
  return model.config().is_seq2seq() ? model.forward(batch.src, batch.tgt_in)
                                     : model.forward_lm(batch.tgt_in);
}

EvalResult evaluate(const nn::Transformer& model, const std::vector<data::Example>& examples,
                    const data::Tokenizer& tokenizer, const std::vector<std::string>& references,
                    int64_t max_tokens, int64_t decode_limit, const DecodeOptions& decode) {
  ag::NoGrad no_grad;
  EvalResult r;
  r.sentences = int64_t(examples.size());
  data::BatcherOptions bo;
  bo.max_tokens = max_tokens;
  bo.shuffle = false;
  data::Batcher batcher(examples, bo);  // length-sorted, one pass
  double loss_sum = 0, nll_sum = 0;
  for (int64_t i = 0; i < batcher.steps_per_epoch(); ++i) {
    const data::Batch b = batcher.next();
    const ag::Tensor logits = batch_logits(model, b);
    const nn::SequenceLoss l = nn::sequence_loss(logits, b.tgt_out, model.config().label_smoothing);
    loss_sum += l.loss.item<double>() * double(l.tokens);
    nll_sum += l.nll * double(l.tokens);
    r.tokens += l.tokens;
  }
  if (r.tokens > 0) {
    r.loss = loss_sum / double(r.tokens);
    r.nll = nll_sum / double(r.tokens);
    r.ppl = std::exp(r.nll);
  }
  const int64_t n = model.config().is_seq2seq() ? std::min<int64_t>(decode_limit, int64_t(examples.size())) : 0;
  if (n > 0) {
    std::vector<std::vector<int32_t>> sources;
    std::vector<std::string> refs;
    for (int64_t i = 0; i < n; ++i) {
      sources.push_back(examples[size_t(i)].src);
      refs.push_back(references.at(size_t(examples[size_t(i)].line)));
    }
    for (const auto& ids : translate_ids(model, sources, decode, max_tokens))
      r.hypotheses.push_back(tokenizer.decode(ids));
    r.bleu = corpus_bleu(r.hypotheses, refs).score;
    r.chrf = corpus_chrf(r.hypotheses, refs);
  }
  return r;
}

std::string eval_json(const EvalResult& r) {
  nlohmann::json j = {{"loss", r.loss}, {"nll", r.nll}, {"ppl", r.ppl}, {"tokens", r.tokens},
                      {"sentences", r.sentences}};
  if (r.bleu >= 0) j["bleu"] = r.bleu, j["chrf"] = r.chrf;
  return j.dump();
}

}  // namespace loom::recipes
