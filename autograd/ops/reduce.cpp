// sum, mean and max (torch.sum / torch.mean / torch.amax) over any axes.
// d sum / dx = broadcast(grad_out); mean = sum / N (a composite);
// d amax / dx = grad_out * [x == max] / (number of maxima), PyTorch's amax rule.
#include "autograd/ops/reduce.h"

#include <algorithm>

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/reduce.h"

namespace loom::ag {
namespace {

// Sorted, de-duplicated, non-negative reduction axes; empty input means all axes.
std::vector<int> normalize_dims(const char* op, const std::vector<int>& dims, int rank) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int d : dims) out.push_back(wrap_dim(op, d, rank));
  std::sort(out.begin(), out.end());
  LOOM_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
             ": a dim appears more than once in the reduction list");
  return out;
}

Dims keepdim_shape(const Dims& sizes, const std::vector<int>& dims) {
  Dims s = sizes;
  for (int d : dims) s[d] = 1;
  return s;
}

Dims squeezed_shape(const Dims& sizes, const std::vector<int>& dims) {
  Dims s;
  for (int d = 0; d < sizes.size(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) s.push_back(sizes[d]);
  return s;
}

// The reduced result, keepdim layout, contiguous.
Tensor reduce_keepdim(const char* op, const Tensor& x, const std::vector<int>& dims,
                      kernels::ReduceOp kind) {
  detail::check_floating(op, x);
  Tensor out = empty(keepdim_shape(x.sizes(), dims), x.dtype(), x.device());
  kernels::reduce(out.ref(), x.ref(), kind);
  return out;
}

// A fresh contiguous result re-labelled with another shape of the same numel.
Tensor relabel(const Tensor& t, const Dims& shape) {
  return make_view(t, shape, kernels::contiguous_strides(shape), t.offset());
}

struct SumBackward final : Node {
  Dims x_shape, keep_shape;
  SumBackward(Dims x_shape, Dims keep_shape) : x_shape(x_shape), keep_shape(keep_shape) {}
  const char* name() const override { return "sum"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    return {grad_out.reshape(keep_shape).expand(x_shape)};
  }
};

struct MaxBackward final : Node {
  SavedTensor x, y_keep;  // y_keep: the maxima in keepdim layout
  std::vector<int> dims;
  MaxBackward(Tensor x, Tensor y_keep, std::vector<int> dims)
      : x(std::move(x)), y_keep(std::move(y_keep)), dims(std::move(dims)) {}
  const char* name() const override { return "max"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& xv = x.get("max");
    const Tensor& yv = y_keep.get("max");
    const Tensor is_max = eq(xv, yv).to(xv.dtype());
    const Tensor count = sum(is_max, dims, /*keepdim=*/true);
    return {is_max * (grad_out.reshape(yv.sizes()) / count)};
  }
};

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  const std::vector<int> dims = normalize_dims("sum", dims_in, x.dim());
  const Tensor keep = reduce_keepdim("sum", x, dims, kernels::ReduceOp::Sum);
  Tensor out = keepdim ? keep : relabel(keep, squeezed_shape(x.sizes(), dims));
  record<SumBackward>(out, {&x}, x.sizes(), keep.sizes());
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  const std::vector<int> dims = normalize_dims("mean", dims_in, x.dim());
  int64_t n = 1;
  for (int d : dims) n *= x.sizes()[d];
  return div(sum(x, dims, keepdim), double(n));
}

Tensor max(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  const std::vector<int> dims = normalize_dims("max", dims_in, x.dim());
  for (int d : dims)
    LOOM_CHECK(x.sizes()[d] > 0, "max: ", detail::describe(x), ": cannot reduce over empty dim ", d);
  const Tensor keep = reduce_keepdim("max", x, dims, kernels::ReduceOp::Max);
  Tensor out = keepdim ? keep : relabel(keep, squeezed_shape(x.sizes(), dims));
  if (should_record({&x})) record<MaxBackward>(out, {&x}, x, keep, dims);
  return out;
}

Tensor sum_to(const Tensor& x, const Dims& shape) {
  if (x.sizes() == shape) return x;
  const int lead = x.dim() - shape.size();
  bool broadcasts = lead >= 0;
  for (int d = 0; broadcasts && d < shape.size(); ++d)
    broadcasts = shape[d] == 1 || shape[d] == x.sizes()[d + lead];
  LOOM_CHECK(broadcasts, "sum_to: ", x.sizes(), " cannot be summed to ", shape, " (", shape,
             " does not broadcast to it)");
  std::vector<int> dims;
  for (int d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.sizes()[d] != 1)) dims.push_back(d);
  Tensor s = sum(x, dims, /*keepdim=*/true);
  return s.sizes() == shape ? s : s.view(shape);
}

}  // namespace loom::ag
