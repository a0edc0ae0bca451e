// Embedding: out[..., :] = weight[ids[...], :], a gather of rows.
// dL/dweight[v, :] = sum of dL/dout[i, :] over the positions i where ids[i] == v (a
// scatter-add; repeated ids add up); ids get no gradient.
// Matches torch.nn.functional.embedding
// (https://pytorch.org/docs/stable/generated/torch.nn.functional.embedding.html).
#include "autograd/ops/embedding.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/embedding.h"

namespace loom::ag {
namespace {

struct EmbeddingBackward final : Node {
  SavedTensor ids;
  Dims weight_shape;  // (V, C)
  EmbeddingBackward(Tensor ids, Dims weight_shape)
      : ids(std::move(ids)), weight_shape(weight_shape) {}
  const char* name() const override { return "embedding"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& id = ids.get("embedding");
    const int64_t n = id.numel(), c = weight_shape[1];
    Tensor grad_weight = zeros(weight_shape, grad_out.dtype(), grad_out.device());  // (V, C)
    const Tensor g = grad_out.reshape({n, c});  // (N, C), a view when strides allow
    kernels::embedding_backward(grad_weight.ref(), g.ref(), id.ref());
    return {Tensor(), grad_weight};
  }
};

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  LOOM_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, "embedding: ids ",
             detail::describe(ids), ": expected an int32 or int64 tensor of row indices");
  LOOM_CHECK(weight.dim() == 2 && weight.is_floating_point(), "embedding: weight ",
             detail::describe(weight), ": expected a 2-D floating-point [V, C] tensor");
  LOOM_CHECK(ids.device() == weight.device(), "embedding: ids on ", ids.device(), ", weight on ",
             weight.device(), ": tensors are on different devices; move one with to()");
  const int64_t n = ids.numel(), c = weight.size(1);
  Dims shape = ids.sizes();
  shape.push_back(c);
  Tensor out = empty(shape, weight.dtype(), weight.device());  // (..., C)
  kernels::embedding_forward(detail::rows_ref(out, n, c), ids.ref(), weight.ref());
  record<EmbeddingBackward>(out, {&ids, &weight}, ids, weight.sizes());
  return out;
}

}  // namespace loom::ag
