// Inverted dropout (torch.nn.functional.dropout): y = x * m, m = Bernoulli(1-p) / (1-p).
// One fused kernel (kernels/dropout.h) draws the mask from the counter-based generator,
// writes y and keeps the mask as bits; the backward is grad_x = grad_y * m from those bits.
// Values and gradients are bit for bit x * fill_bernoulli(...) and its product rule, at
// 1/32 of the saved memory. relu_dropout = dropout(relu(x)) keeps only its output.
#include "autograd/ops/dropout.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/dropout.h"

namespace loom::ag {
namespace {

struct DropoutBackward final : Node {
  SavedTensor keep;  // int32 words of keep bits (kernels/dropout.h)
  double scale;
  DropoutBackward(Tensor keep, double scale) : keep(std::move(keep)), scale(scale) {}
  const char* name() const override { return "dropout"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor gy = grad_out.contiguous();
    Tensor grad_x = empty(gy.sizes(), gy.dtype(), gy.device());
    kernels::dropout_backward(grad_x.ref(), gy.ref(), keep.get(name()).ref(), scale);
    return {grad_x};
  }
};

struct ReluDropoutBackward final : Node {
  SavedTensor y;  // the output: y > 0 where the gradient passes
  double scale;
  ReluDropoutBackward(Tensor y, double scale) : y(std::move(y)), scale(scale) {}
  const char* name() const override { return "relu_dropout"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor gy = grad_out.contiguous();
    Tensor grad_x = empty(gy.sizes(), gy.dtype(), gy.device());
    kernels::relu_dropout_backward(grad_x.ref(), gy.ref(), y.get(name()).ref(), scale);
    return {grad_x};
  }
};

void check_p(double p) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, "dropout: p = ", p, ": expected a probability in [0, 1]");
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_p(p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  detail::check_floating("dropout", x);
  const Tensor xc = x.contiguous();
  const double scale = 1.0 / (1.0 - p);
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  Tensor keep = empty({kernels::dropout_mask_words(x.numel())}, DType::I32, x.device());
  kernels::dropout_forward(y.ref(), keep.ref(), xc.ref(), gen, 1.0 - p, scale);
  record<DropoutBackward>(y, {&x}, keep, scale);
  return y;
}

Tensor relu_dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_p(p);
  if (!training || p == 0.0 || p == 1.0) return dropout(relu(x), p, training, gen);
  detail::check_floating("relu_dropout", x);
  const Tensor xc = x.contiguous();
  const double scale = 1.0 / (1.0 - p);
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  kernels::relu_dropout_forward(y.ref(), xc.ref(), gen, 1.0 - p, scale);
  record<ReluDropoutBackward>(y, {&x}, y, scale);
  return y;
}

}  // namespace loom::ag
