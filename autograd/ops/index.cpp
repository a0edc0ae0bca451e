// index_select: out[..., k, ...] = x[..., index[k], ...] along dim.
// dL/dx[..., j, ...] = sum of dL/dout[..., k, ...] over the k where index[k] == j (a
// scatter-add into zeros; repeated indices add up); index gets no gradient.
// Matches torch.index_select
// (https://pytorch.org/docs/stable/generated/torch.index_select.html).
#include "autograd/ops/index.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/index.h"

namespace loom::ag {
namespace {

struct IndexSelectBackward final : Node {
  SavedTensor index;
  Dims x_shape;
  int dim;
  IndexSelectBackward(Tensor index, Dims x_shape, int dim)
      : index(std::move(index)), x_shape(x_shape), dim(dim) {}
  const char* name() const override { return "index_select"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    Tensor grad_x = zeros(x_shape, grad_out.dtype(), grad_out.device());
    kernels::index_select_backward(grad_x.ref(), grad_out.ref(), dim,
                                   index.get("index_select").ref());
    return {grad_x, Tensor()};
  }
};

}  // namespace

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  LOOM_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32, "index_select: index ",
             detail::describe(index), ": expected an int32 or int64 tensor of indices");
  LOOM_CHECK(index.dim() == 1, "index_select: index ", detail::describe(index),
             ": expected a 1-D tensor of indices; flatten() it first");
  LOOM_CHECK(x.dim() >= 1, "index_select: x ", detail::describe(x),
             ": expected at least one dimension");
  LOOM_CHECK(index.device() == x.device(), "index_select: x on ", x.device(), ", index on ",
             index.device(), ": tensors are on different devices; move one with to()");
  const int d = wrap_dim("index_select", dim, x.dim());
  Dims shape = x.sizes();
  shape[d] = index.numel();
  Tensor out = empty(shape, x.dtype(), x.device());
  kernels::index_select_forward(out.ref(), x.ref(), d, index.ref());
  record<IndexSelectBackward>(out, {&x, &index}, index, x.sizes(), d);
  return out;
}

}  // namespace loom::ag
