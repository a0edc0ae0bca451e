// Sequence losses: label-smoothed loss, plain NLL and token accuracy on hand values.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/loss.h"

namespace loom::test {
namespace {

TEST_CASE("sequence_loss: smoothed loss, NLL over non-pad tokens, token count") {
  // Two positions with logits [0, 0, ln 3] (p = 0.2, 0.2, 0.6) and one pad position.
  const double l3 = std::log(3.0);
  const ag::Tensor logits = ag::from_vector<double>({0, 0, l3, 0, 0, l3, 5, 5, 5}, {1, 3, 3});
  const ag::Tensor target = ag::from_vector<int64_t>({2, 1, 0}, {1, 3});
  const nn::SequenceLoss l = nn::sequence_loss(logits, target, 0.1, /*pad=*/0);
  CHECK(l.tokens == 2);
  const double nll = (-std::log(0.6) - std::log(0.2)) / 2;
  CHECK(l.nll == doctest::Approx(nll).epsilon(1e-12));
  // (1-e) nll + e * mean_v(-log p_v), the same smoothing term at both positions
  const double smooth = (-2 * std::log(0.2) - std::log(0.6)) / 3;
  CHECK(l.loss.item<double>() == doctest::Approx(0.9 * nll + 0.1 * smooth).epsilon(1e-12));
  // argmax is class 2 at both positions: right for the first target only
  CHECK(nn::token_accuracy(logits, target, 0) == 0.5);
}

}  // namespace
}  // namespace loom::test

namespace loom::test {
namespace {

TEST_CASE("sequence_loss without the NLL pass gives the same loss and tokens") {
  const ag::Tensor logits = ag::from_vector<double>({0, 1, 2, 3, 0, 1}, {1, 2, 3});
  const ag::Tensor target = ag::from_vector<int64_t>({2, 1}, {1, 2});
  const nn::SequenceLoss a = nn::sequence_loss(logits, target, 0.1, 0, true);
  const nn::SequenceLoss b = nn::sequence_loss(logits, target, 0.1, 0, false);
  CHECK(a.loss.item<double>() == b.loss.item<double>());
  CHECK(a.tokens == b.tokens);
  CHECK(a.nll > 0);
  CHECK(b.nll == 0);
}

}  // namespace
}  // namespace loom::test
