// softmax and log_softmax (torch.nn.functional.softmax / log_softmax), along the last dim:
//   softmax:     y_i = exp(x_i - m) / sum_j exp(x_j - m),   m = max_j x_j
//   log_softmax: y_i = x_i - m - log(sum_j exp(x_j - m))
// Backward from the saved output y, per row:
//   softmax:     grad_x = y * (grad_out - sum(grad_out * y))
//   log_softmax: grad_x = grad_out - exp(y) * sum(grad_out)
#include "autograd/ops/softmax.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/softmax.h"

namespace loom::ag {
namespace {

const char* op_name(bool log) { return log ? "log_softmax" : "softmax"; }

struct SoftmaxBackward final : Node {
  bool log;
  SavedTensor y;  // the forward output, contiguous: both rules need only y
  SoftmaxBackward(bool log, Tensor y) : log(log), y(std::move(y)) {}
  const char* name() const override { return op_name(log); }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& yv = y.get(name());
    const Tensor g = grad_out.contiguous();  // grad_out may be an expanded view
    Tensor grad_x = empty_like(yv);
    kernels::softmax_backward(grad_x.ref(), g.ref(), yv.ref(), log);
    return {grad_x};
  }
};

Tensor softmax_impl(const Tensor& x, int dim, bool log) {
  const char* name = op_name(log);
  detail::check_floating(name, x);
  const int d = wrap_dim(name, dim, x.dim());
  if (x.dim() > 0 && d != x.dim() - 1) {
    // Move `dim` last (a view), use the fast path, move it back: the result is a
    // transposed view of a contiguous tensor; gradients flow through both transposes.
    return softmax_impl(x.transpose(d, -1), -1, log).transpose(d, -1);
  }
  const Tensor xc = x.contiguous();  // the kernel reads rows; a copy only for strided x
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  kernels::softmax_forward(y.ref(), xc.ref(), log);
  record<SoftmaxBackward>(y, {&xc}, log, y);
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_impl(x, dim, false); }

Tensor log_softmax(const Tensor& x, int dim) { return softmax_impl(x, dim, true); }

}  // namespace loom::ag
