// Shape ops. Views build new (sizes, strides, offset) over the same storage; their
// backward is the inverse view (transpose, permute, reshape), a scatter into zeros
// (slice), or a sum (expand = broadcasting, so sum_to). Copies (clone, to_dtype, concat)
// pass gradients straight through or slice them apart.
#include "autograd/ops/shape.h"

#include <algorithm>
#include <numeric>

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/cuda/runtime.h"
#include "kernels/pointwise.h"

namespace loom::ag {
namespace {

// Strides for viewing (sizes, strides) as new_sizes without a copy, following the rule
// PyTorch documents for Tensor.view: each new dim must lie inside a run of old dims that
// are contiguous with respect to each other. False if impossible.
bool view_strides(const Dims& sizes, const Dims& strides, const Dims& new_sizes, Dims& out) {
  out.resize(new_sizes.size());
  if (sizes.numel() == 0 || sizes.size() == 0) {
    out = kernels::contiguous_strides(new_sizes);
    return true;
  }
  int view_d = new_sizes.size() - 1;
  int64_t chunk_base_stride = strides.back(), tensor_numel = 1, view_numel = 1;
  for (int d = sizes.size() - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    const bool chunk_ends =
        d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
      out[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_sizes[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return false;
    if (d > 0) {
      chunk_base_stride = strides[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  return view_d == -1;
}

// Resolves one -1 entry and checks the element count.
Dims infer_shape(const char* op, const Dims& shape, int64_t numel, const Dims& from) {
  Dims out = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOOM_CHECK(infer < 0, op, ": ", from, " -> ", shape, ": only one dim can be -1");
      infer = i;
    } else {
      LOOM_CHECK(shape[i] >= 0, op, ": ", from, " -> ", shape, ": negative size");
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LOOM_CHECK(known > 0 && numel % known == 0, op, ": ", from, " -> ", shape,
               ": cannot infer the -1 dim (", numel, " elements)");
    out[infer] = numel / known;
  }
  LOOM_CHECK(out.numel() == numel, op, ": ", from, " -> ", shape, ": ", numel,
             " elements do not fit ", out.numel());
  return out;
}

struct ReshapeBackward final : Node {
  Dims x_shape;
  explicit ReshapeBackward(Dims x_shape) : x_shape(x_shape) {}
  const char* name() const override { return "view"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {grad_out.reshape(x_shape)}; }
};

struct PermuteBackward final : Node {
  Dims inverse;
  explicit PermuteBackward(Dims inverse) : inverse(inverse) {}
  const char* name() const override { return "permute"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {grad_out.permute(inverse)}; }
};

struct SliceBackward final : Node {
  Dims x_shape;
  int dim;
  int64_t start, end, step;
  SliceBackward(Dims x_shape, int dim, int64_t start, int64_t end, int64_t step)
      : x_shape(x_shape), dim(dim), start(start), end(end), step(step) {}
  const char* name() const override { return "slice"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    Tensor g = zeros(x_shape, grad_out.dtype(), grad_out.device());
    g.slice(dim, start, end, step).copy_(grad_out);
    return {g};
  }
};

struct ExpandBackward final : Node {
  Dims x_shape;
  explicit ExpandBackward(Dims x_shape) : x_shape(x_shape) {}
  const char* name() const override { return "expand"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {sum_to(grad_out, x_shape)}; }
};

struct CloneBackward final : Node {
  const char* name() const override { return "clone"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {grad_out}; }
};

struct ToDtypeBackward final : Node {
  DType x_dtype;
  explicit ToDtypeBackward(DType x_dtype) : x_dtype(x_dtype) {}
  const char* name() const override { return "to_dtype"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {grad_out.to(x_dtype)}; }
};

struct ToDeviceBackward final : Node {
  Device x_device;
  explicit ToDeviceBackward(Device x_device) : x_device(x_device) {}
  const char* name() const override { return "to_device"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override { return {to_device(grad_out, x_device)}; }
};

struct ConcatBackward final : Node {
  int dim;
  std::vector<int64_t> sizes;
  ConcatBackward(int dim, std::vector<int64_t> sizes) : dim(dim), sizes(std::move(sizes)) {}
  const char* name() const override { return "concat"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    std::vector<Tensor> grads;
    int64_t at = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs_grad(i)) grads.push_back(grad_out.slice(dim, at, at + sizes[i]));
      else grads.emplace_back();
      at += sizes[i];
    }
    return grads;
  }
};

}  // namespace

Tensor view(const Tensor& x, const Dims& shape_in) {
  const Dims shape = infer_shape("view", shape_in, x.numel(), x.sizes());
  Dims strides;
  LOOM_CHECK(view_strides(x.sizes(), x.strides(), shape, strides), "view: ", x.sizes(), " -> ",
             shape, ": the strides ", x.strides(),
             " do not allow a view; use reshape() (copies) or contiguous() first");
  Tensor out = make_view(x, shape, strides, x.offset());
  record<ReshapeBackward>(out, {&x}, x.sizes());
  return out;
}

Tensor reshape(const Tensor& x, const Dims& shape_in) {
  const Dims shape = infer_shape("reshape", shape_in, x.numel(), x.sizes());
  Dims strides;
  if (view_strides(x.sizes(), x.strides(), shape, strides)) return view(x, shape);
  return view(clone(x), shape);
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  Dims order;
  for (int d = 0; d < x.dim(); ++d) order.push_back(d);
  std::swap(order[wrap_dim("transpose", d0, x.dim())], order[wrap_dim("transpose", d1, x.dim())]);
  return permute(x, order);
}

Tensor permute(const Tensor& x, const Dims& order) {
  LOOM_CHECK(order.size() == x.dim(), "permute: ", x.sizes(), " with order ", order,
             ": expected ", x.dim(), " dims");
  Dims sizes, strides, inverse, seen;
  inverse.resize(x.dim());
  seen.resize(x.dim());
  for (int i = 0; i < x.dim(); ++i) {
    const int d = wrap_dim("permute", int(order[i]), x.dim());
    LOOM_CHECK(!seen[d], "permute: ", x.sizes(), " with order ", order, ": dim ", d, " repeats");
    seen[d] = 1;
    sizes.push_back(x.sizes()[d]);
    strides.push_back(x.strides()[d]);
    inverse[d] = i;
  }
  Tensor out = make_view(x, sizes, strides, x.offset());
  record<PermuteBackward>(out, {&x}, inverse);
  return out;
}

Tensor slice(const Tensor& x, int dim_in, int64_t start, int64_t end, int64_t step) {
  const int dim = wrap_dim("slice", dim_in, x.dim());
  LOOM_CHECK(step > 0, "slice: step ", step, ": must be positive");
  const int64_t n = x.sizes()[dim];
  // Python slice semantics: negative indices count from the end, out-of-range clamps.
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Dims sizes = x.sizes(), strides = x.strides();
  sizes[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  Tensor out = make_view(x, sizes, strides, x.offset() + start * x.strides()[dim]);
  record<SliceBackward>(out, {&x}, x.sizes(), dim, start, end, step);
  return out;
}

Tensor expand(const Tensor& x, const Dims& shape) {
  LOOM_CHECK(shape.size() >= x.dim(), "expand: ", x.sizes(), " -> ", shape,
             ": the target has fewer dims");
  const int lead = shape.size() - x.dim();
  Dims sizes, strides;
  for (int d = 0; d < shape.size(); ++d) {
    const int xd = d - lead;
    const int64_t have = xd >= 0 ? x.sizes()[xd] : 1;
    const int64_t want = shape[d] == -1 ? have : shape[d];
    LOOM_CHECK(xd >= 0 || shape[d] >= 0, "expand: ", x.sizes(), " -> ", shape,
               ": -1 is not allowed for new leading dims");
    LOOM_CHECK(have == want || have == 1, "expand: ", x.sizes(), " -> ", shape, ": dim ", d,
               " has size ", have, ", which can only expand from 1");
    sizes.push_back(want);
    strides.push_back(xd >= 0 && have == want ? x.strides()[xd] : 0);
  }
  Tensor out = make_view(x, sizes, strides, x.offset());
  record<ExpandBackward>(out, {&x}, x.sizes());
  return out;
}

Tensor squeeze(const Tensor& x, int dim_in) {
  const int dim = wrap_dim("squeeze", dim_in, x.dim());
  if (x.dim() == 0 || x.sizes()[dim] != 1) return x;  // as PyTorch: a no-op
  Dims sizes = x.sizes(), strides = x.strides();
  sizes.erase(dim);
  strides.erase(dim);
  Tensor out = make_view(x, sizes, strides, x.offset());
  record<ReshapeBackward>(out, {&x}, x.sizes());
  return out;
}

Tensor unsqueeze(const Tensor& x, int dim_in) {
  const int dim = wrap_dim("unsqueeze", dim_in, x.dim() + 1);
  Dims sizes = x.sizes(), strides = x.strides();
  const int64_t stride = dim < x.dim() ? x.sizes()[dim] * x.strides()[dim] : 1;
  sizes.insert(dim, 1);
  strides.insert(dim, stride);
  Tensor out = make_view(x, sizes, strides, x.offset());
  record<ReshapeBackward>(out, {&x}, x.sizes());
  return out;
}

Tensor flatten(const Tensor& x, int start_dim, int end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  const int s = wrap_dim("flatten", start_dim, x.dim()), e = wrap_dim("flatten", end_dim, x.dim());
  LOOM_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Dims shape;
  for (int d = 0; d < s; ++d) shape.push_back(x.sizes()[d]);
  int64_t n = 1;
  for (int d = s; d <= e; ++d) n *= x.sizes()[d];
  shape.push_back(n);
  for (int d = e + 1; d < x.dim(); ++d) shape.push_back(x.sizes()[d]);
  return reshape(x, shape);
}

Tensor clone(const Tensor& x) {
  Tensor out = empty(x.sizes(), x.dtype(), x.device());
  kernels::copy(out.ref(), x.ref());
  record<CloneBackward>(out, {&x});
  return out;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = empty(x.sizes(), dtype, x.device());
  kernels::copy(out.ref(), x.ref());
  if (kernels::is_floating(dtype)) record<ToDtypeBackward>(out, {&x}, x.dtype());
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  // Bytes move as they are stored: a strided view is made contiguous on its own device.
  const Tensor src = x.contiguous();
  Tensor out = empty(x.sizes(), x.dtype(), device);
  kernels::cuda::copy_bytes(out.ref().data, device, src.ref().data, x.device(),
                            size_t(x.numel()) * kernels::dtype_size(x.dtype()));
  if (x.is_floating_point()) record<ToDeviceBackward>(out, {&x}, x.device());
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int dim_in) {
  LOOM_CHECK(!xs.empty(), "concat: expected at least one tensor");
  const Tensor& first = xs[0];
  const int dim = wrap_dim("concat", dim_in, first.dim());
  Dims shape = first.sizes();
  std::vector<int64_t> sizes;
  shape[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    detail::check_same_device_dtype("concat", first, x);
    bool same = x.dim() == first.dim();
    for (int d = 0; same && d < x.dim(); ++d) same = d == dim || x.sizes()[d] == first.sizes()[d];
    LOOM_CHECK(same, "concat: tensor 0 ", first.sizes(), " and tensor ", i, " ", x.sizes(),
               ": sizes must match except in dim ", dim);
    sizes.push_back(x.sizes()[dim]);
    shape[dim] += x.sizes()[dim];
  }
  Tensor out = empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    kernels::TensorRef part = out.ref();
    part.sizes[dim] = sizes[i];
    part.data = static_cast<char*>(part.data) +
                at * out.strides()[dim] * int64_t(kernels::dtype_size(out.dtype()));
    kernels::copy(part, xs[i].ref());
    at += sizes[i];
  }
  bool record_it = false;
  for (const Tensor& x : xs) record_it = record_it || x.requires_grad();
  if (record_it && grad_mode())
    detail::push_node(std::make_unique<ConcatBackward>(dim, sizes), out, xs);
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim_in) {
  const int dim = wrap_dim("split", dim_in, x.dim());
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  LOOM_CHECK(total == x.sizes()[dim], "split: ", x.sizes(), " into sizes summing to ", total,
             " along dim ", dim, " of size ", x.sizes()[dim]);
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t n : sizes) {
    parts.push_back(slice(x, dim, at, at + n));
    at += n;
  }
  return parts;
}

}  // namespace loom::ag
