#include "autograd/tensor.h"

#include <iomanip>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "kernels/pointwise.h"

namespace loom::ag {

int wrap_dim(const char* op, int dim, int rank) {
  const int lo = rank == 0 ? -1 : -rank, hi = rank == 0 ? 0 : rank - 1;
  LOOM_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a tensor of ",
             rank, " dimension", rank == 1 ? "" : "s", " (expected ", lo, "..", hi, ")");
  return dim < 0 ? dim + std::max(rank, 1) : dim;
}

int64_t Tensor::size(int d) const { return sizes()[wrap_dim("size", d, dim())]; }
int64_t Tensor::stride(int d) const { return strides()[wrap_dim("stride", d, dim())]; }

kernels::TensorRef Tensor::ref() const {
  const TensorImpl& t = *impl_;
  return {static_cast<char*>(t.storage->data()) + t.offset * int64_t(kernels::dtype_size(t.dtype)),
          t.dtype, t.storage->device(), t.sizes, t.strides};
}

template <class T> T* Tensor::data() const {
  LOOM_CHECK(dtype() == kernels::dtype_of<T>(), "data: tensor is ", dtype(), ", asked for ",
             kernels::dtype_of<T>());
  return ref().ptr<T>();
}

bool Tensor::requires_grad() const {
  return impl_->node < 0 ? impl_->requires_grad : detail::is_recorded(*impl_);
}

bool Tensor::is_leaf() const { return !detail::is_recorded(*impl_); }

Tensor& Tensor::set_requires_grad(bool on) {
  LOOM_CHECK(is_leaf(), "set_requires_grad: ", dtype(), " ", sizes(),
             ": only leaf tensors can be marked; this one was produced by a recorded op "
             "(use detach() for a leaf copy)");
  LOOM_CHECK(!on || is_floating_point(), "set_requires_grad: ", dtype(), " ", sizes(),
             ": only floating-point tensors can require grad");
  impl_->requires_grad = on;
  impl_->node = -1;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  LOOM_CHECK(!g.defined() || (g.sizes() == sizes() && g.dtype() == dtype()), "set_grad: ",
             g.defined() ? g.sizes() : Dims{}, " gradient for a ", dtype(), " ", sizes(),
             " tensor: shapes and dtypes must match");
  impl_->grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl_->grad = nullptr; }

void Tensor::backward(const Tensor& grad_out) const { ag::backward(*this, grad_out); }

Tensor Tensor::detach() const { return make_view(*this, sizes(), strides(), offset()); }

void Tensor::set_data(const Tensor& src) {
  LOOM_CHECK(is_leaf() && src.defined(), "set_data: only a leaf tensor's data can be replaced");
  TensorImpl& t = *impl_;
  t.storage = src.storage();
  t.offset = src.offset();
  t.sizes = src.sizes();
  t.strides = src.strides();
  t.dtype = src.dtype();
  t.grad = nullptr;
}

Tensor Tensor::view(const Dims& shape) const { return ag::view(*this, shape); }
Tensor Tensor::reshape(const Dims& shape) const { return ag::reshape(*this, shape); }
Tensor Tensor::transpose(int d0, int d1) const { return ag::transpose(*this, d0, d1); }
Tensor Tensor::permute(const Dims& order) const { return ag::permute(*this, order); }
Tensor Tensor::slice(int d, int64_t start, int64_t end, int64_t step) const {
  return ag::slice(*this, d, start, end, step);
}
Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  return ag::slice(*this, d, start, start + length, 1);
}
Tensor Tensor::expand(const Dims& shape) const { return ag::expand(*this, shape); }
Tensor Tensor::squeeze(int d) const { return ag::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int d) const { return ag::unsqueeze(*this, d); }
Tensor Tensor::flatten(int start_dim, int end_dim) const {
  return ag::flatten(*this, start_dim, end_dim);
}
Tensor Tensor::contiguous() const { return is_contiguous() ? *this : ag::clone(*this); }
Tensor Tensor::clone() const { return ag::clone(*this); }
Tensor Tensor::to(DType t) const { return ag::to_dtype(*this, t); }
Tensor Tensor::to(Device d) const { return ag::to_device(*this, d); }

namespace {
void check_in_place(const Tensor& t, const char* op) {
  LOOM_CHECK(!(grad_mode() && t.requires_grad()), op, ": ", t.dtype(), " ", t.sizes(),
             ": in-place write to a tensor that requires grad; do it under NoGrad (as "
             "optimizers do) or on a detach()ed copy");
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_in_place(*this, "fill_");
  kernels::fill(ref(), value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_in_place(*this, "copy_");
  LOOM_CHECK(src.device() == device(), "copy_: ", src.device(), " source into a ", device(),
             " tensor: devices differ; move one with to()");
  const Tensor s = src.sizes() == sizes() ? src : ag::expand(src.detach(), sizes());
  kernels::copy(ref(), s.ref());
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_in_place(*this, "add_");
  NoGrad no_grad;
  const Tensor o = alpha == 1.0 ? other : mul(other, alpha);
  const Tensor e = o.sizes() == sizes() ? o : ag::expand(o, sizes());
  LOOM_CHECK(e.dtype() == dtype(), "add_: ", e.dtype(), " into ", dtype(), ": dtypes differ");
  kernels::binary(ref(), ref(), e.ref(), kernels::BinaryOp::Add);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(double value) {
  check_in_place(*this, "mul_");
  kernels::unary_forward(ref(), ref(), kernels::Affine{value, 0.0});
  storage()->bump_version();
  return *this;
}

namespace {
// Random fills write contiguous memory; a strided tensor is filled through a temporary.
template <class Fill> void fill_random(Tensor& t, const char* op, Fill fill) {
  check_in_place(t, op);
  Tensor dst = t.is_contiguous() ? t : empty(t.sizes(), t.dtype(), t.device());
  fill(dst.ref());
  if (dst.impl() != t.impl()) kernels::copy(t.ref(), dst.ref());
  t.storage()->bump_version();
}
}  // namespace

Tensor& Tensor::uniform_(Generator& gen, double low, double high) {
  fill_random(*this, "uniform_", [&](kernels::TensorRef r) { kernels::fill_uniform(r, gen, low, high); });
  return *this;
}

Tensor& Tensor::normal_(Generator& gen, double mean, double std) {
  fill_random(*this, "normal_", [&](kernels::TensorRef r) { kernels::fill_normal(r, gen, mean, std); });
  return *this;
}

template <class T> std::vector<T> Tensor::to_vector() const {
  if (!device().is_cpu()) return detach().to(Device::cpu()).to_vector<T>();
  Tensor c = empty(sizes(), kernels::dtype_of<T>());
  kernels::copy(c.ref(), ref());
  const T* p = c.ref().ptr<T>();
  return std::vector<T>(p, p + numel());
}

template <class T> T Tensor::item() const {
  LOOM_CHECK(numel() == 1, "item: ", sizes(), ": expected a one-element tensor");
  return to_vector<T>()[0];
}

#define LOOM_INSTANTIATE(T)                          \
  template T* Tensor::data<T>() const;               \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
LOOM_INSTANTIATE(float)
LOOM_INSTANTIATE(double)
LOOM_INSTANTIATE(int32_t)
LOOM_INSTANTIATE(int64_t)
LOOM_INSTANTIATE(bool)
#undef LOOM_INSTANTIATE

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << t.dtype() << ' ' << t.sizes();
  if (t.numel() > 64) return os << " (" << t.numel() << " values)";
  const std::vector<double> v = t.to(DType::F64).to_vector<double>();
  os << " {";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << std::setprecision(6) << v[i];
  return os << '}';
}

Tensor empty(const Dims& shape, DType dtype, Device device) {
  for (int64_t s : shape)
    LOOM_CHECK(s >= 0, "empty: shape ", shape, ": sizes must be non-negative");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<kernels::Storage>(
      size_t(shape.numel()) * kernels::dtype_size(dtype), device);
  impl->sizes = shape;
  impl->strides = kernels::contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor empty_like(const Tensor& t) { return empty(t.sizes(), t.dtype(), t.device()); }
Tensor full(const Dims& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::fill(t.ref(), value);
  return t;
}
Tensor zeros(const Dims& shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor ones(const Dims& shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype) { return full(Dims{}, value, dtype); }

Tensor arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, DType::I64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  return dtype == DType::I64 ? t : t.to(dtype);
}

Tensor rand(const Dims& shape, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  kernels::fill_uniform(t.ref(), gen, 0.0, 1.0);
  return t;
}

Tensor randn(const Dims& shape, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  kernels::fill_normal(t.ref(), gen, 0.0, 1.0);
  return t;
}

template <class T> Tensor from_vector(const std::vector<T>& values, const Dims& shape) {
  LOOM_CHECK(int64_t(values.size()) == shape.numel(), "from_vector: ", values.size(),
             " values for shape ", shape, " (", shape.numel(), " elements)");
  Tensor t = empty(shape, kernels::dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Dims&);
template Tensor from_vector<double>(const std::vector<double>&, const Dims&);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Dims&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Dims&);

Tensor make_view(const Tensor& t, const Dims& sizes, const Dims& strides, int64_t offset) {
  LOOM_ASSERT(sizes.size() == strides.size());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->offset = offset;
  impl->sizes = sizes;
  impl->strides = strides;
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

}  // namespace loom::ag
