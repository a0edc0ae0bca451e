#include "nn/loss.h"

#include <algorithm>

#include "autograd/ops.h"

namespace loom::nn {

SequenceLoss sequence_loss(const Tensor& logits, const Tensor& target_ids, double label_smoothing,
                           int64_t pad, bool with_nll) {
  const Tensor target = target_ids.to(logits.device());  // ids made on the host
  SequenceLoss out;
  out.loss = ag::cross_entropy(logits, target, pad, label_smoothing);
  ag::NoGrad no_grad;
  const Tensor pad_id = ag::full({}, double(pad), target.dtype(), target.device());
  out.tokens = ag::sum(ag::ne(target, pad_id).to(DType::F64)).item<double>();
  if (label_smoothing == 0)
    out.nll = out.loss.item<double>();
  else if (with_nll)
    out.nll = ag::cross_entropy(logits, target, pad, 0.0).item<double>();
  return out;
}

double token_accuracy(const Tensor& logits, const Tensor& target, int64_t pad) {
  ag::NoGrad no_grad;
  const int64_t V = logits.size(-1);
  const std::vector<float> l = logits.to(DType::F32).to_vector<float>();
  const std::vector<int64_t> t = target.to(DType::I64).to_vector<int64_t>();
  int64_t correct = 0, total = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == pad) continue;
    const float* row = &l[i * size_t(V)];
    correct += std::max_element(row, row + V) - row == t[i];
    ++total;
  }
  return total ? double(correct) / double(total) : 0.0;
}

}  // namespace loom::nn
