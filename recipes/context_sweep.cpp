#include "recipes/context_sweep.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/ops.h"
#include "data/batcher.h"
#include "recipes/evaluate.h"
#include "recipes/metrics.h"

namespace loom::recipes {
namespace {

// The NLL of every target token of every example: nll[example][t].
std::vector<std::vector<double>> token_nlls(const nn::Transformer& model,
                                            const std::vector<data::Example>& examples,
                                            int64_t max_tokens) {
  ag::NoGrad no_grad;
  std::vector<std::vector<double>> nll(examples.size());
  data::BatcherOptions bo;
  bo.max_tokens = max_tokens;
  bo.shuffle = false;
  data::Batcher batcher(examples, bo);
  for (int64_t i = 0; i < batcher.steps_per_epoch(); ++i) {
    const data::Batch b = batcher.next();
    const ag::Tensor logp = ag::log_softmax(batch_logits(model, b), -1).contiguous();
    const int64_t T = logp.size(1), V = logp.size(2);
    const float* p = logp.data<float>();
    const int64_t* target = b.tgt_out.contiguous().data<int64_t>();
    for (size_t row = 0; row < b.indices.size(); ++row) {
      const data::Example& e = examples[size_t(b.indices[row])];
      std::vector<double>& out = nll[size_t(b.indices[row])];
      for (int64_t t = 0; t < e.tgt_len(); ++t) {
        const int64_t id = target[int64_t(row) * T + t];
        out.push_back(-double(p[(int64_t(row) * T + t) * V + id]));
      }
    }
  }
  return nll;
}

}  // namespace

SweepResult context_sweep(const nn::Transformer& model, const std::vector<data::Example>& examples,
                          const data::Tokenizer& tokenizer,
                          const std::vector<std::string>& references, const SweepOptions& o) {
  LOOM_CHECK(!o.buckets.empty() && o.block > 0, "context sweep: no buckets or a block size < 1");
  for (size_t i = 1; i < o.buckets.size(); ++i)
    LOOM_CHECK(o.buckets[i] > o.buckets[i - 1], "context sweep: bucket bounds must increase");
  const std::vector<std::vector<double>> nll = token_nlls(model, examples, o.max_tokens);
  SweepResult r;
  r.block = o.block;
  for (size_t i = 0; i < o.buckets.size(); ++i)
    r.buckets.push_back({i ? o.buckets[i - 1] : 0, o.buckets[i]});
  std::vector<std::vector<size_t>> members(r.buckets.size());
  for (size_t e = 0; e < examples.size(); ++e) {
    const int64_t T = examples[e].tgt_len();
    size_t k = 0;
    while (k < r.buckets.size() && T > r.buckets[k].hi) ++k;
    if (k == r.buckets.size()) {
      ++r.beyond;
      continue;
    }
    members[k].push_back(e);
    SweepBucket& b = r.buckets[k];
    ++b.examples;
    for (size_t t = 0; t < nll[e].size(); ++t) {
      b.tokens += 1, b.nll += nll[e][t];
      const size_t block = t / size_t(o.block);
      if (r.blocks.size() <= block) r.blocks.resize(block + 1);
      r.blocks[block].tokens += 1, r.blocks[block].nll += nll[e][t];
    }
  }
  for (size_t k = 0; k < r.blocks.size(); ++k) {
    r.blocks[k].start = int64_t(k) * o.block;
    if (r.blocks[k].tokens) r.blocks[k].nll /= double(r.blocks[k].tokens);
  }
  for (size_t k = 0; k < r.buckets.size(); ++k) {
    SweepBucket& b = r.buckets[k];
    if (b.tokens == 0) continue;
    b.nll /= double(b.tokens);
    b.ppl = std::exp(b.nll);
    if (!o.decode || !model.config().is_seq2seq()) continue;
    std::vector<std::vector<int32_t>> sources;
    std::vector<std::string> refs, hyps;
    for (size_t e : members[k]) {
      sources.push_back(examples[e].src);
      refs.push_back(references.at(size_t(examples[e].line)));
    }
    for (const auto& ids : translate_ids(model, sources, o.decode_options, o.max_tokens))
      hyps.push_back(tokenizer.decode(ids));
    b.bleu = corpus_bleu(hyps, refs).score;
    b.chrf = corpus_chrf(hyps, refs);
  }
  return r;
}

void print_sweep(const SweepResult& r, const std::string& title, std::ostream& out) {
  out << title << "\n\n| target length | examples | tokens | NLL | perplexity | BLEU | chrF |\n"
      << "|---|---|---|---|---|---|---|\n" << std::fixed;
  for (const SweepBucket& b : r.buckets) {
    out << "| " << b.lo + 1 << "-" << b.hi << " | " << b.examples << " | " << b.tokens << " | ";
    if (b.tokens == 0) {
      out << "- | - | - | - |\n";
      continue;
    }
    out << std::setprecision(4) << b.nll << " | " << std::setprecision(2) << b.ppl << " | ";
    if (b.bleu >= 0)
      out << b.bleu << " | " << b.chrf << " |\n";
    else
      out << "- | - |\n";
  }
  if (r.beyond) out << "\n(" << r.beyond << " examples longer than the last bucket left out)\n";
  out << "\n| target positions | tokens | mean NLL |\n|---|---|---|\n";
  for (const SweepBlock& b : r.blocks)
    out << "| " << b.start << "-" << b.start + r.block - 1 << " | " << b.tokens << " | "
        << std::setprecision(4) << b.nll << " |\n";
  out << std::defaultfloat;
}

std::string sweep_csv(const SweepResult& r, const std::string& method) {
  std::ostringstream os;
  os.precision(6);
  os << "method,kind,lo,hi,examples,tokens,nll,ppl,bleu,chrf\n";
  for (const SweepBucket& b : r.buckets)
    os << method << ",length," << b.lo + 1 << "," << b.hi << "," << b.examples << "," << b.tokens
       << "," << b.nll << "," << b.ppl << "," << b.bleu << "," << b.chrf << "\n";
  for (const SweepBlock& b : r.blocks)
    os << method << ",position," << b.start << "," << b.start + r.block - 1 << ",," << b.tokens
       << "," << b.nll << "," << std::exp(b.nll) << ",,\n";
  return os.str();
}

std::string sweep_json(const SweepResult& r, const std::string& method) {
  nlohmann::json j = {{"method", method}, {"beyond", r.beyond}};
  for (const SweepBucket& b : r.buckets) {
    nlohmann::json x = {{"lo", b.lo + 1}, {"hi", b.hi}, {"examples", b.examples},
                        {"tokens", b.tokens}, {"nll", b.nll}, {"ppl", b.ppl}};
    if (b.bleu >= 0) x["bleu"] = b.bleu, x["chrf"] = b.chrf;
    j["buckets"].push_back(x);
  }
  for (const SweepBlock& b : r.blocks)
    j["positions"].push_back({{"start", b.start}, {"tokens", b.tokens}, {"nll", b.nll}});
  return j.dump();
}

}  // namespace loom::recipes
