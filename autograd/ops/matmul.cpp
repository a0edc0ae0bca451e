// Matrix products, on the batched GEMM kernel (kernels/gemm.h).
//
//   matmul: C = A @ B,  dL/dA = dL/dC @ B^T,  dL/dB = A^T @ dL/dC
// with A (..., M, K), B (..., K, N), batch dims broadcast NumPy-style and each gradient
// summed back over the dims its operand was broadcast along; 1-D operands are promoted
// to [1, K] (left) or [K, 1] (right) and the added dim dropped from the result.
// Matches torch.matmul (https://pytorch.org/docs/stable/generated/torch.matmul.html);
// bmm is its strict 3-D case (torch.bmm).
//
//   linear: y = x @ W^T + b,  dL/dx = g @ W,  dL/dW = g^T @ x,  dL/db = sum_rows g
// with x (..., in) flattened to (R, in) rows, W (out, in), b (out); matches
// torch.nn.functional.linear.
//
// No product copies an operand BLAS can read in place: transposes (B^T, A^T, W^T) are
// views passed to BLAS as transposed, and the sums over broadcast batch dims happen
// inside the GEMM (its output has stride 0 there). Other layouts are made contiguous by
// blas_ready(), the one place a product copies.
#include "autograd/ops/matmul.h"

#include <algorithm>
#include <utility>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/gemm.h"
#include "kernels/pointwise.h"

namespace loom::ag {
namespace {

// t when BLAS reads its last two dims in place (row-major or a transposed view), else a
// contiguous copy. Called under NoGrad: the copy is not part of the graph.
Tensor blas_ready(const Tensor& t) {
  return kernels::gemm_operand_ok(t.ref()) ? t : t.contiguous();
}

// A 1-D operand as a matrix view: [K] -> [1, K] on the left, [K] -> [K, 1] on the right.
Tensor as_left_matrix(const Tensor& a) {
  if (a.dim() != 1) return a;
  return make_view(a, {1, a.size(0)}, {a.size(0) * a.stride(0), a.stride(0)}, a.offset());
}
Tensor as_right_matrix(const Tensor& b) {
  if (b.dim() != 1) return b;
  return make_view(b, {b.size(0), 1}, {b.stride(0), 1}, b.offset());
}

Dims with_matrix(Dims batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

// The broadcast batch shape of two matrix operands (their dims before the last two).
Dims broadcast_batch(const char* op, const Tensor& a, const Tensor& b, const Tensor& am,
                     const Tensor& bm) {
  const Dims ba(am.sizes().begin(), am.sizes().end() - 2);
  const Dims bb(bm.sizes().begin(), bm.sizes().end() - 2);
  const int n = std::max(ba.size(), bb.size());
  Dims batch;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - ba.size()), ib = i - (n - bb.size());
    const int64_t sa = ia >= 0 ? ba[ia] : 1, sb = ib >= 0 ? bb[ib] : 1;
    LOOM_CHECK(sa == sb || sa == 1 || sb == 1, op, ": ", a.sizes(), " x ", b.sizes(),
               ": batch dimensions ", ba, " and ", bb, " do not broadcast");
    batch.push_back(sa == 1 ? sb : sa);
  }
  return batch;
}

// A contiguous tensor's data seen with another shape of the same size.
kernels::TensorRef relabel(const Tensor& t, const Dims& shape) {
  kernels::TensorRef r = t.ref();
  r.sizes = shape;
  r.strides = kernels::contiguous_strides(shape);
  return r;
}

// c (batch..., M, N) = a (..., M, K) @ b (..., K, N) for BLAS-ready a and b whose batch
// dims broadcast to c's. Where c has stride 0 on a batch dim the products are summed into
// it (the gradient of a broadcast operand).
void product(const kernels::TensorRef& c, const Tensor& a, const Tensor& b) {
  const Dims batch(c.sizes.begin(), c.sizes.end() - 2);
  kernels::gemm(c, detail::broadcast_ref(a, with_matrix(batch, a.size(-2), a.size(-1))),
                detail::broadcast_ref(b, with_matrix(batch, b.size(-2), b.size(-1))), 1.0, 0.0);
}

// A gradient buffer for an input of `shape` whose matrix form has `matrix_shape` (they
// differ for a promoted 1-D input): the tensor to return and its matrix view.
std::pair<Tensor, Tensor> grad_buffer(const Dims& shape, const Dims& matrix_shape,
                                      const Tensor& like) {
  Tensor grad = empty(shape, like.dtype(), like.device());
  if (shape == matrix_shape) return {grad, grad};
  return {grad, make_view(grad, matrix_shape, kernels::contiguous_strides(matrix_shape), 0)};
}

struct MatmulBackward final : Node {
  const char* op;      // "matmul" or "bmm"
  SavedTensor am, bm;  // the operands as BLAS-ready matrices: (.., M, K), (.., K, N)
  Dims a_shape, b_shape, batch;
  MatmulBackward(const char* op, Tensor am, Tensor bm, Dims a_shape, Dims b_shape, Dims batch)
      : op(op),
        am(std::move(am)),
        bm(std::move(bm)),
        a_shape(a_shape),
        b_shape(b_shape),
        batch(batch) {}
  const char* name() const override { return op; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& a = am.get(op);
    const Tensor& b = bm.get(op);
    const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    const Tensor g = blas_ready(grad_out.reshape(with_matrix(batch, M, N)));  // (batch.., M, N)
    Tensor grad_a, grad_b;
    if (needs_grad(0)) {
      const auto [grad, ga] = grad_buffer(a_shape, a.sizes(), a);
      // ga (.., M, K) = g @ B^T, summed over the batch dims A was broadcast along
      product(detail::broadcast_ref(ga, with_matrix(batch, M, K)), g, b.transpose(-1, -2));
      grad_a = grad;
    }
    if (needs_grad(1)) {
      const auto [grad, gb] = grad_buffer(b_shape, b.sizes(), b);
      // gb (.., K, N) = A^T @ g, summed over the batch dims B was broadcast along
      product(detail::broadcast_ref(gb, with_matrix(batch, K, N)), a.transpose(-1, -2), g);
      grad_b = grad;
    }
    return {grad_a, grad_b};
  }
};

Tensor matmul_impl(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() >= 1 && b.dim() >= 1, op, ": ", a.sizes(), " x ", b.sizes(),
             ": both operands need at least 1 dimension (use mul for scalars)");
  detail::check_same_device_dtype(op, a, b);
  detail::check_floating(op, a);
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  LOOM_CHECK(ka == kb, op, ": ", a.sizes(), " x ", b.sizes(), ": inner dimensions ", ka, " and ",
             kb, " differ");
  Tensor am, bm;  // (.., M, K), (.., K, N)
  {
    NoGrad no_grad;
    am = blas_ready(as_left_matrix(a));
    bm = blas_ready(as_right_matrix(b));
  }
  const Dims batch = broadcast_batch(op, a, b, am, bm);
  const int64_t M = am.size(-2), N = bm.size(-1);
  Dims shape = batch;  // the result drops the dims a 1-D operand was promoted with
  if (a.dim() > 1) shape.push_back(M);
  if (b.dim() > 1) shape.push_back(N);
  Tensor out = empty(shape, a.dtype(), a.device());
  product(relabel(out, with_matrix(batch, M, N)), am, bm);
  record<MatmulBackward>(out, {&a, &b}, op, am, bm, a.sizes(), b.sizes(), batch);
  return out;
}

// linear under Autocast(BF16) (autograd/autocast.h), float32 cuda tensors: the GEMMs
// read bfloat16 copies of x, W and the incoming gradient and write float32, so
//   y = b + bf16(x) @ bf16(W)^T,  dL/dx = bf16(g) @ bf16(W),  dL/dW = bf16(g)^T @ bf16(x),
// dL/db = sum_rows g in float32. The copies are what backward keeps: half the bytes of
// the float32 input.
struct LinearBf16Backward final : Node {
  SavedTensor x16, w16;  // (R, in), (out, in), bfloat16
  Dims x_shape;
  LinearBf16Backward(Tensor x16, Tensor w16, Dims x_shape)
      : x16(std::move(x16)), w16(std::move(w16)), x_shape(x_shape) {}
  const char* name() const override { return "linear (bf16)"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& x = x16.get("linear");
    const Tensor& w = w16.get("linear");
    const int64_t rows = x.size(0), in = x.size(1), out = w.size(0);
    // One converting copy, also from a strided grad_out (e.g. a head-split view's): the
    // bfloat16 copy is contiguous, so the reshape to rows is a view.
    const Tensor g16 = grad_out.to(DType::BF16).reshape({rows, out});
    Tensor grad_x, grad_w, grad_b;
    if (needs_grad(0)) {
      grad_x = empty(x_shape, DType::F32, x.device());
      kernels::gemm(relabel(grad_x, {rows, in}), g16.ref(), w.ref(), 1.0, 0.0);
    }
    if (needs_grad(1)) {
      grad_w = empty(w.sizes(), DType::F32, w.device());
      kernels::gemm(grad_w.ref(), g16.transpose(0, 1).ref(), x.ref(), 1.0, 0.0);
    }
    if (needs_grad(2)) {  // sum over every dim but the last, in float32 (strided is fine)
      std::vector<int> rows_dims(size_t(grad_out.dim() - 1));
      for (size_t d = 0; d < rows_dims.size(); ++d) rows_dims[d] = int(d);
      grad_b = rows_dims.empty() ? grad_out.clone() : sum(grad_out, rows_dims);
    }
    return {grad_x, grad_w, grad_b};
  }
};

struct LinearBackward final : Node {
  SavedTensor x2d, weight;  // x2d: (R, in), x flattened to rows (a view of x when possible)
  Dims x_shape;
  LinearBackward(Tensor x2d, Tensor weight, Dims x_shape)
      : x2d(std::move(x2d)), weight(std::move(weight)), x_shape(x_shape) {}
  const char* name() const override { return "linear"; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& x = x2d.get("linear");
    const Tensor& w = weight.get("linear");
    const int64_t rows = x.size(0), in = x.size(1), out = w.size(0);
    const Tensor g = blas_ready(grad_out.reshape({rows, out}));  // (R, out)
    Tensor grad_x, grad_w, grad_b;
    if (needs_grad(0)) {  // (R, in) = g (R, out) @ W (out, in)
      grad_x = empty(x_shape, x.dtype(), x.device());
      kernels::gemm(relabel(grad_x, {rows, in}), g.ref(), blas_ready(w).ref(), 1.0, 0.0);
    }
    if (needs_grad(1)) {  // (out, in) = g^T (out, R) @ x (R, in): one GEMM over all rows
      grad_w = empty(w.sizes(), w.dtype(), w.device());
      kernels::gemm(grad_w.ref(), g.transpose(0, 1).ref(), x.ref(), 1.0, 0.0);
    }
    if (needs_grad(2)) grad_b = sum(g, {0});
    return {grad_x, grad_w, grad_b};
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul_impl("matmul", a, b); }

Tensor bmm(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: ", a.sizes(), " x ", b.sizes(),
             ": expected two 3-D tensors [B, M, K] and [B, K, N]");
  LOOM_CHECK(a.size(0) == b.size(0), "bmm: ", a.sizes(), " x ", b.sizes(), ": batch sizes ",
             a.size(0), " and ", b.size(0), " differ (bmm does not broadcast; matmul does)");
  return matmul_impl("bmm", a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  LOOM_CHECK(x.dim() >= 1 && weight.dim() == 2, "linear: input ", x.sizes(), ", weight ",
             weight.sizes(),
             ": expected input [..., in_features] and weight "
             "[out_features, in_features]");
  detail::check_same_device_dtype("linear", x, weight);
  detail::check_floating("linear", x);
  const int64_t in = weight.size(1), out = weight.size(0);
  LOOM_CHECK(x.size(-1) == in, "linear: input ", x.sizes(), ", weight ", weight.sizes(),
             ": input last dim ", x.size(-1), " != in_features ", in);
  if (bias.defined()) {
    detail::check_same_device_dtype("linear", x, bias);
    LOOM_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: weight ", weight.sizes(), ", bias ",
               bias.sizes(), ": bias must be [out_features] = [", out, "]");
  }
  const int64_t rows = Dims(x.sizes().begin(), x.sizes().end() - 1).numel();
  Dims shape = x.sizes();
  shape[shape.size() - 1] = out;
  Tensor y = empty(shape, x.dtype(), x.device());
  if (autocast_dtype() == DType::BF16 && x.dtype() == DType::F32 && x.device().is_cuda()) {
    Tensor x16, w16;
    {
      NoGrad no_grad;
      x16 = x.to(DType::BF16).reshape({rows, in});  // one copy, also from a strided x
      w16 = weight.to(DType::BF16);
      const kernels::TensorRef y2d = relabel(y, {rows, out});
      if (bias.defined()) kernels::copy(y2d, detail::broadcast_ref(bias, {rows, out}));
      kernels::gemm(y2d, x16.ref(), w16.transpose(0, 1).ref(), 1.0, bias.defined() ? 1.0 : 0.0);
    }
    record<LinearBf16Backward>(y, {&x, &weight, &bias}, x16, w16, x.sizes());
    return y;
  }
  Tensor x2d;
  {
    NoGrad no_grad;
    x2d = blas_ready(x.reshape({rows, in}));  // (R, in): a view when x's strides allow
    const kernels::TensorRef y2d = relabel(y, {rows, out});
    // y (R, out) = bias (broadcast over rows) + x2d @ W^T, W^T a transposed view
    if (bias.defined()) kernels::copy(y2d, detail::broadcast_ref(bias, {rows, out}));
    kernels::gemm(y2d, x2d.ref(), blas_ready(weight).transpose(0, 1).ref(), 1.0,
                  bias.defined() ? 1.0 : 0.0);
  }
  record<LinearBackward>(y, {&x, &weight, &bias}, x2d, weight, x.sizes());
  return y;
}

}  // namespace loom::ag
