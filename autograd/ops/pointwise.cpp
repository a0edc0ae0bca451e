// Elementwise ops. Unary ops are one functor each in kernels/pointwise_ops.h (value and
// derivative), wrapped here by unary() and UnaryBackward. Binary ops broadcast NumPy-style
// (stride-0 views, no copies); their backward sums each gradient back to its input's
// shape (sum_to). References: torch.add/sub/mul/div/maximum/minimum/where docs.
#include "autograd/ops/pointwise.h"

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/pointwise.h"

namespace loom::ag {

namespace detail {

kernels::TensorRef broadcast_ref(const Tensor& t, const Dims& shape) {
  kernels::TensorRef r = t.ref();
  const int lead = shape.size() - t.dim();
  LOOM_ASSERT(lead >= 0);
  Dims strides;
  strides.resize(shape.size());
  for (int d = 0; d < shape.size(); ++d) {
    const int sd = d - lead;
    strides[d] = (sd < 0 || (t.sizes()[sd] == 1 && shape[d] != 1)) ? 0 : t.strides()[sd];
  }
  r.sizes = shape;
  r.strides = strides;
  return r;
}

void check_same_device_dtype(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.device() == b.device(), op, ": ", a.device(), " ", describe(a), " and ",
             b.device(), " ", describe(b), ": tensors are on different devices; move one with to()");
  LOOM_CHECK(a.dtype() == b.dtype(), op, ": ", describe(a), " and ", describe(b),
             ": dtypes differ; convert one with to()");
}

void check_floating(const char* op, const Tensor& x) {
  LOOM_CHECK(x.is_floating_point(), op, ": ", describe(x), ": expected a floating-point tensor");
}

kernels::TensorRef rows_ref(const Tensor& t, int64_t rows, int64_t cols) {
  LOOM_ASSERT(t.is_contiguous() && t.numel() == rows * cols);
  kernels::TensorRef r = t.ref();
  r.sizes = {rows, cols};
  r.strides = {cols, 1};
  return r;
}

std::string describe(const Tensor& t) { return loom::detail::cat(t.dtype(), " ", t.sizes()); }

}  // namespace detail

Dims broadcast_shapes(const char* op, const Dims& a, const Dims& b) {
  const int n = std::max(a.size(), b.size());
  Dims out;
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    const int ia = a.size() - n + i, ib = b.size() - n + i;
    const int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    LOOM_CHECK(sa == sb || sa == 1 || sb == 1, op, ": ", a, " and ", b,
               ": shapes do not broadcast (dim ", i - n, ": ", sa, " vs ", sb, ")");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

namespace {

template <class Op> struct UnaryBackward final : Node {
  const char* op_name;
  Op op;
  SavedTensor x, y;  // only those Op::derivative reads (Op::reads); the others stay empty
  UnaryBackward(const char* op_name, Op op, Tensor x, Tensor y)
      : op_name(op_name), op(op), x(std::move(x)), y(std::move(y)) {}
  const char* name() const override { return op_name; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    // An operand the derivative ignores is passed as any same-shaped tensor.
    const Tensor& any = x.defined() ? x.get(op_name) : y.defined() ? y.get(op_name) : grad_out;
    const Tensor& xs = x.defined() ? x.get(op_name) : any;
    const Tensor& ys = y.defined() ? y.get(op_name) : any;
    Tensor grad_x = empty(grad_out.sizes(), grad_out.dtype(), grad_out.device());
    kernels::unary_backward(grad_x.ref(), grad_out.ref(), xs.ref(), ys.ref(), op);
    return {grad_x};
  }
};

template <class Op> Tensor unary(const char* name, const Tensor& x, Op op) {
  detail::check_floating(name, x);
  Tensor y = empty(x.sizes(), x.dtype(), x.device());
  kernels::unary_forward(y.ref(), x.ref(), op);
  using R = kernels::DerivativeReads;
  constexpr bool keep_x = Op::reads == R::X || Op::reads == R::Both;
  constexpr bool keep_y = Op::reads == R::Y || Op::reads == R::Both;
  record<UnaryBackward<Op>>(y, {&x}, name, op, keep_x ? x : Tensor(), keep_y ? y : Tensor());
  return y;
}

Tensor binary_forward(kernels::BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_op_name(op);
  detail::check_same_device_dtype(name, a, b);
  detail::check_floating(name, a);
  const Dims shape = broadcast_shapes(name, a.sizes(), b.sizes());
  Tensor out = empty(shape, a.dtype(), a.device());
  kernels::binary(out.ref(), detail::broadcast_ref(a, shape), detail::broadcast_ref(b, shape), op);
  return out;
}

// add and sub: d/da = 1, d/db = +-1; only the shapes are needed.
struct AddSubBackward final : Node {
  bool subtract;
  Dims a_shape, b_shape;
  AddSubBackward(bool subtract, Dims a_shape, Dims b_shape)
      : subtract(subtract), a_shape(a_shape), b_shape(b_shape) {}
  const char* name() const override { return subtract ? "sub" : "add"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(grad_out, a_shape);
    if (needs_grad(1)) gb = subtract ? neg(sum_to(grad_out, b_shape)) : sum_to(grad_out, b_shape);
    return {ga, gb};
  }
};

// Each gradient reads the other operand, so an operand is saved only when the other one
// needs a gradient (dropout-style x * mask keeps the mask alone).
struct MulBackward final : Node {
  SavedTensor a, b;
  Dims a_shape, b_shape;
  MulBackward(Tensor a, Tensor b, Dims a_shape, Dims b_shape)
      : a(std::move(a)), b(std::move(b)), a_shape(a_shape), b_shape(b_shape) {}
  const char* name() const override { return "mul"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(grad_out * b.get("mul"), a_shape);
    if (needs_grad(1)) gb = sum_to(grad_out * a.get("mul"), b_shape);
    return {ga, gb};
  }
};

// d(a/b)/da = 1/b, d(a/b)/db = -a/b^2: a is saved only when b needs a gradient.
struct DivBackward final : Node {
  SavedTensor a, b;
  Dims a_shape;
  DivBackward(Tensor a, Tensor b, Dims a_shape)
      : a(std::move(a)), b(std::move(b)), a_shape(a_shape) {}
  const char* name() const override { return "div"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& bv = b.get("div");
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(grad_out / bv, a_shape);
    if (needs_grad(1)) gb = sum_to(neg(grad_out * a.get("div") / (bv * bv)), bv.sizes());
    return {ga, gb};
  }
};

// maximum: the gradient goes to a where a >= b, else to b (ties to a); minimum mirrors.
struct MaxMinBackward final : Node {
  bool is_max;
  SavedTensor a, b;
  MaxMinBackward(bool is_max, Tensor a, Tensor b) : is_max(is_max), a(std::move(a)), b(std::move(b)) {}
  const char* name() const override { return is_max ? "maximum" : "minimum"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& av = a.get(name());
    const Tensor& bv = b.get(name());
    const Tensor to_a = is_max ? ge(av, bv) : le(av, bv);
    const Tensor zero = zeros({}, grad_out.dtype(), grad_out.device());
    Tensor ga, gb;
    if (needs_grad(0)) ga = sum_to(where(to_a, grad_out, zero), av.sizes());
    if (needs_grad(1)) gb = sum_to(where(to_a, zero, grad_out), bv.sizes());
    return {ga, gb};
  }
};

struct WhereBackward final : Node {
  SavedTensor cond;
  Dims a_shape, b_shape;
  WhereBackward(Tensor cond, Dims a_shape, Dims b_shape)
      : cond(std::move(cond)), a_shape(a_shape), b_shape(b_shape) {}
  const char* name() const override { return "where"; }
  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& c = cond.get("where");
    const Tensor zero = zeros({}, grad_out.dtype(), grad_out.device());
    Tensor ga, gb;
    if (needs_grad(1)) ga = sum_to(where(c, grad_out, zero), a_shape);
    if (needs_grad(2)) gb = sum_to(where(c, zero, grad_out), b_shape);
    return {Tensor(), ga, gb};
  }
};

Tensor compare(kernels::CompareOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::compare_op_name(op);
  detail::check_same_device_dtype(name, a, b);
  const Dims shape = broadcast_shapes(name, a.sizes(), b.sizes());
  Tensor out = empty(shape, DType::Bool, a.device());
  kernels::compare(out.ref(), detail::broadcast_ref(a, shape), detail::broadcast_ref(b, shape), op);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Add, a, b);
  record<AddSubBackward>(out, {&a, &b}, false, a.sizes(), b.sizes());
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Sub, a, b);
  record<AddSubBackward>(out, {&a, &b}, true, a.sizes(), b.sizes());
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Mul, a, b);
  record<MulBackward>(out, {&a, &b}, b.requires_grad() ? a : Tensor(),
                      a.requires_grad() ? b : Tensor(), a.sizes(), b.sizes());
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Div, a, b);
  record<DivBackward>(out, {&a, &b}, b.requires_grad() ? a : Tensor(), b, a.sizes());
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Maximum, a, b);
  record<MaxMinBackward>(out, {&a, &b}, true, a, b);
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Minimum, a, b);
  record<MaxMinBackward>(out, {&a, &b}, false, a, b);
  return out;
}

Tensor add(const Tensor& x, double s) { return unary("add", x, kernels::Affine{1.0, s}); }
Tensor sub(const Tensor& x, double s) { return unary("sub", x, kernels::Affine{1.0, -s}); }
Tensor mul(const Tensor& x, double s) { return unary("mul", x, kernels::Affine{s, 0.0}); }
Tensor div(const Tensor& x, double s) { return unary("div", x, kernels::DivScalar{s}); }
Tensor rsub(double s, const Tensor& x) { return unary("rsub", x, kernels::Affine{-1.0, s}); }
Tensor rdiv(double s, const Tensor& x) { return unary("rdiv", x, kernels::RDivScalar{s}); }

Tensor neg(const Tensor& x) { return unary("neg", x, kernels::Neg{}); }
Tensor exp(const Tensor& x) { return unary("exp", x, kernels::Exp{}); }
Tensor log(const Tensor& x) { return unary("log", x, kernels::Log{}); }
Tensor sqrt(const Tensor& x) { return unary("sqrt", x, kernels::Sqrt{}); }
Tensor rsqrt(const Tensor& x) { return unary("rsqrt", x, kernels::Rsqrt{}); }
Tensor pow(const Tensor& x, double p) { return unary("pow", x, kernels::PowScalar{p}); }
Tensor tanh(const Tensor& x) { return unary("tanh", x, kernels::Tanh{}); }
Tensor relu(const Tensor& x) { return unary("relu", x, kernels::Relu{}); }
Tensor gelu(const Tensor& x) { return unary("gelu", x, kernels::Gelu{}); }
Tensor sigmoid(const Tensor& x) { return unary("sigmoid", x, kernels::Sigmoid{}); }
Tensor silu(const Tensor& x) { return x * sigmoid(x); }  // gradient flows through mul, sigmoid

Tensor eq(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(kernels::CompareOp::Ge, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(cond.dtype() == DType::Bool, "where: condition ", detail::describe(cond),
             ": expected a bool tensor (e.g. from eq/lt)");
  detail::check_same_device_dtype("where", a, b);
  LOOM_CHECK(cond.device() == a.device(), "where: condition on ", cond.device(), ", values on ",
             a.device(), ": tensors are on different devices; move one with to()");
  const Dims shape =
      broadcast_shapes("where", cond.sizes(), broadcast_shapes("where", a.sizes(), b.sizes()));
  Tensor out = empty(shape, a.dtype(), a.device());
  kernels::where(out.ref(), detail::broadcast_ref(cond, shape), detail::broadcast_ref(a, shape),
                 detail::broadcast_ref(b, shape));
  record<WhereBackward>(out, {&cond, &a, &b}, cond, a.sizes(), b.sizes());
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  LOOM_CHECK(mask.dtype() == DType::Bool, "masked_fill: mask ", detail::describe(mask),
             ": expected a bool tensor");
  LOOM_CHECK(broadcast_shapes("masked_fill", x.sizes(), mask.sizes()) == x.sizes(),
             "masked_fill: mask ", mask.sizes(), " does not broadcast to x ", x.sizes());
  return where(mask, full({}, value, x.dtype(), x.device()), x);
}

}  // namespace loom::ag
