// cross_entropy (torch.nn.functional.cross_entropy with class indices, ignore_index,
// label_smoothing and reduction; classes on the last dim). With lse = log(sum_v exp(x_v)),
// eps = label_smoothing, V classes, each row that is not ignored has
//   loss = (1 - eps) * (lse - x_t) + eps * (lse - mean_v x_v)
//        = (1 - eps) * nll + eps * mean_v(-log p_v)            (DESIGN.md "Loss")
// and its gradient is
//   grad_x = w * (softmax(x) - (1 - eps) * onehot(t) - eps / V),
// w = grad_out / count for "mean" (count: rows not ignored), grad_out for "sum",
// grad_out[row] for "none"; ignored rows get 0. One fused kernel computes the row losses
// and saves lse per row; the backward recomputes softmax from x and lse (in x's memory
// when nothing else refers to it).
#include "autograd/ops/loss.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/cross_entropy.h"

namespace loom::ag {
namespace {

enum class Reduction : uint8_t { Mean, Sum, None };

Reduction parse_reduction(std::string_view r) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  LOOM_CHECK(r == "none", "cross_entropy: reduction \"", r,
             "\": expected \"mean\", \"sum\" or \"none\"");
  return Reduction::None;
}

struct CrossEntropyBackward final : Node {
  SavedTensor logits;  // logits: contiguous (M, V)
  SavedTensor lse;     // lse: (M), 0 at ignored rows
  SavedTensor target;  // target: contiguous, M elements
  int64_t ignore_index;
  double label_smoothing;
  Reduction reduction;
  int64_t count;  // rows not ignored

  CrossEntropyBackward(Tensor logits, Tensor lse, Tensor target, int64_t ignore_index,
                       double label_smoothing, Reduction reduction, int64_t count)
      : logits(std::move(logits)), lse(std::move(lse)), target(std::move(target)),
        ignore_index(ignore_index), label_smoothing(label_smoothing), reduction(reduction),
        count(count) {}
  const char* name() const override { return "cross_entropy"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& x = logits.get(name());
    const Tensor& l = lse.get(name());
    const int64_t M = l.numel(), V = x.size(-1);
    // Per-row weights: grad_out itself for "none", else the scalar broadcast (stride 0).
    const Tensor g = reduction == Reduction::None ? grad_out.contiguous() : grad_out;
    kernels::TensorRef grad_rows = g.ref();
    grad_rows.sizes = {M};
    grad_rows.strides = {reduction == Reduction::None ? 1 : 0};
    // count == 0 only when every row is ignored, and then no row reads the scale.
    const double scale = reduction == Reduction::Mean ? 1.0 / double(count) : 1.0;
    // When the saved logits are the last handle on their memory (the model's output passed
    // as a temporary, as the trainer does), the gradient overwrites them in place: the
    // backward then holds one (M, V) tensor instead of two at its peak. The kernel reads
    // each element before writing it.
    const bool last_handle = x.impl_ptr().use_count() == 1 && x.storage().use_count() == 1;
    Tensor grad_logits = last_handle ? x.detach() : empty_like(x);
    kernels::cross_entropy_backward(detail::rows_ref(grad_logits, M, V), grad_rows, scale,
                                    detail::rows_ref(x, M, V), l.ref(), target.get(name()).ref(),
                                    ignore_index, label_smoothing);
    return {grad_logits};
  }
};

void check_inputs(const Tensor& logits, const Tensor& target, double label_smoothing) {
  detail::check_floating("cross_entropy", logits);
  LOOM_CHECK(logits.dim() >= 1, "cross_entropy: logits ", detail::describe(logits),
             ": expected at least one dim (the classes, last)");
  LOOM_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
             "cross_entropy: target ", detail::describe(target),
             ": expected int64 or int32 class indices");
  LOOM_CHECK(logits.device() == target.device(), "cross_entropy: logits ", logits.device(), " ",
             detail::describe(logits), " and target ", target.device(), " ",
             detail::describe(target), ": tensors are on different devices; move one with to()");
  const Dims rows_shape(logits.sizes().begin(), logits.sizes().end() - 1);
  LOOM_CHECK(target.sizes() == rows_shape, "cross_entropy: logits ", logits.sizes(),
             " and target ", target.sizes(), ": target must have logits' shape without the "
             "last (class) dim, ", rows_shape);
  LOOM_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "cross_entropy: label_smoothing ",
             label_smoothing, ": expected a value in [0, 1]");
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                     double label_smoothing, std::string_view reduction) {
  const Reduction red = parse_reduction(reduction);
  check_inputs(logits, target, label_smoothing);
  const int64_t V = logits.size(-1), M = target.numel();
  const Tensor xc = logits.contiguous();  // xc: (..., V); a copy only for strided logits
  const Tensor tc = target.contiguous();
  Tensor losses = empty(target.sizes(), logits.dtype(), logits.device());  // like target
  Tensor lse = empty({M}, logits.dtype(), logits.device());                // lse: (M)
  const int64_t count = kernels::cross_entropy_forward(losses.ref(), lse.ref(), detail::rows_ref(xc, M, V),
                                                       tc.ref(), ignore_index, label_smoothing);
  Tensor out = losses;
  if (red != Reduction::None) {
    NoGrad no_grad;  // the reduction is part of this op's backward rule
    out = sum(losses);
    if (red == Reduction::Mean) out = div(out, double(count));  // 0 / 0 = NaN when count == 0
  }
  record<CrossEntropyBackward>(out, {&xc}, xc, lse, tc, ignore_index, label_smoothing, red, count);
  return out;
}

}  // namespace loom::ag
