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

// dropout: `saved` holds the int32 words of keep bits (kernels/dropout.h); relu_dropout:
// the output y (y > 0 where the gradient passes).
struct DropoutBackward final : Node {
  SavedTensor saved;
  double scale;
  bool relu;
  DropoutBackward(Tensor saved, double scale, bool relu)
      : saved(std::move(saved)), scale(scale), relu(relu) {}
  const char* name() const override { return relu ? "relu_dropout" : "dropout"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor gy = grad_out.contiguous();
    Tensor grad_x = empty(gy.sizes(), gy.dtype(), gy.device());
    const kernels::TensorRef s = saved.get(name()).ref();
    if (relu)
      kernels::relu_dropout_backward(grad_x.ref(), gy.ref(), s, scale);
    else
      kernels::dropout_backward(grad_x.ref(), gy.ref(), s, scale);
    return {grad_x};
  }
};

void check_p(double p) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, "dropout: p = ", p, ": expected a probability in [0, 1]");
}

// The fused forward for 0 < p < 1 in training: dropout keeps bits, relu_dropout its output.
Tensor fused(const char* op, const Tensor& x, double p, Generator& gen, bool relu) {
  detail::check_floating(op, x);
  const Tensor xc = x.contiguous();
  const double scale = 1.0 / (1.0 - p);
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  if (relu) {
    kernels::relu_dropout_forward(y.ref(), xc.ref(), gen, 1.0 - p, scale);
    record<DropoutBackward>(y, {&x}, y, scale, true);
  } else {
    Tensor keep = empty({kernels::dropout_mask_words(x.numel())}, DType::I32, x.device());
    kernels::dropout_forward(y.ref(), keep.ref(), xc.ref(), gen, 1.0 - p, scale);
    record<DropoutBackward>(y, {&x}, keep, scale, false);
  }
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_p(p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  return fused("dropout", x, p, gen, false);
}

Tensor relu_dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_p(p);
  if (!training || p == 0.0 || p == 1.0) return dropout(relu(x), p, training, gen);
  return fused("relu_dropout", x, p, gen, true);
}

}  // namespace loom::ag
