// layer_norm (torch.nn.functional.layer_norm; Ba et al. 2016, "Layer Normalization"):
// each row x of the trailing N = prod(normalized_shape) elements becomes
//   y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps),
// var biased (divided by N). One fused kernel saves mean and rstd per row; the backward,
// with xhat = (x - mean) * rstd and gxhat = grad_out * weight, is
//   grad_x      = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))   (per row)
//   grad_weight = sum over rows of grad_out * xhat,  grad_bias = sum over rows of grad_out.
#include "autograd/ops/norm.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/layer_norm.h"

namespace loom::ag {
namespace {

// The tensor's ref, or an absent one (data == nullptr) for an undefined Tensor.
kernels::TensorRef optional_ref(const Tensor& t) {
  return t.defined() ? t.ref() : kernels::TensorRef{};
}

struct LayerNormBackward final : Node {
  SavedTensor x;           // x: contiguous input, seen as (M, N)
  SavedTensor mean, rstd;  // mean, rstd: (M)
  SavedTensor weight;      // weight: normalized_shape, or undefined
  Dims normalized_shape;
  int64_t rows, cols;      // M, N

  LayerNormBackward(Tensor x, Tensor mean, Tensor rstd, Tensor weight, Dims normalized_shape,
                    int64_t rows, int64_t cols)
      : x(std::move(x)), mean(std::move(mean)), rstd(std::move(rstd)), weight(std::move(weight)),
        normalized_shape(normalized_shape), rows(rows), cols(cols) {}
  const char* name() const override { return "layer_norm"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& xv = x.get(name());
    const Tensor& wv = weight.get(name());
    const Tensor g = grad_out.contiguous();  // grad_out may be an expanded view
    Tensor grad_x, grad_weight, grad_bias;
    if (needs_grad(0)) grad_x = empty_like(xv);
    if (needs_grad(1)) grad_weight = empty(normalized_shape, xv.dtype(), xv.device());
    if (needs_grad(2)) grad_bias = empty(normalized_shape, xv.dtype(), xv.device());
    const kernels::TensorRef gx =
        grad_x.defined() ? detail::rows_ref(grad_x, rows, cols) : kernels::TensorRef{};
    kernels::layer_norm_backward(gx, optional_ref(grad_weight), optional_ref(grad_bias),
                                 detail::rows_ref(g, rows, cols), detail::rows_ref(xv, rows, cols),
                                 mean.get(name()).ref(), rstd.get(name()).ref(), optional_ref(wv));
    return {grad_x, grad_weight, grad_bias};
  }
};

void check_affine(const char* what, const Tensor& p, const Tensor& x,
                  const Dims& normalized_shape) {
  if (!p.defined()) return;
  detail::check_same_device_dtype("layer_norm", x, p);
  LOOM_CHECK(p.sizes() == normalized_shape, "layer_norm: ", what, " ", p.sizes(),
             ", normalized_shape ", normalized_shape, ": ", what,
             " must have shape normalized_shape");
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Dims& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  detail::check_floating("layer_norm", x);
  const int k = normalized_shape.size(), lead = x.dim() - k;
  LOOM_CHECK(k > 0, "layer_norm: input ", x.sizes(),
             ", normalized_shape []: expected at least one normalized dim");
  bool trailing = lead >= 0;
  for (int d = 0; trailing && d < k; ++d) trailing = x.sizes()[lead + d] == normalized_shape[d];
  LOOM_CHECK(trailing, "layer_norm: input ", x.sizes(), ", normalized_shape ", normalized_shape,
             ": the input's trailing dims must equal normalized_shape");
  check_affine("weight", weight, x, normalized_shape);
  check_affine("bias", bias, x, normalized_shape);

  const int64_t N = normalized_shape.numel();
  int64_t M = 1;
  for (int d = 0; d < lead; ++d) M *= x.sizes()[d];
  // The kernel reads whole rows: copies only for strided inputs.
  const Tensor xc = x.contiguous();
  const Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  Tensor mean = empty({M}, x.dtype(), x.device());  // mean: (M)
  Tensor rstd = empty({M}, x.dtype(), x.device());  // rstd: (M)
  kernels::layer_norm_forward(detail::rows_ref(y, M, N), mean.ref(), rstd.ref(), detail::rows_ref(xc, M, N),
                              optional_ref(wc), optional_ref(bc), eps);
  record<LayerNormBackward>(y, {&xc, &wc, &bc}, xc, mean, rstd, wc, normalized_shape, M, N);
  return y;
}

}  // namespace loom::ag
