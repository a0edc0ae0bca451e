// Elementwise kernels on strided operands. All operands of one call have the same sizes;
// broadcasting is done by the caller, which passes stride-0 views (expand). Outputs come
// first, then inputs, then scalars.
#pragma once

#include "kernels/pointwise_ops.h"
#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Maximum, Minimum };
enum class CompareOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge };

const char* binary_op_name(BinaryOp op);
const char* compare_op_name(CompareOp op);

namespace cpu {
template <class Op> void unary_forward(TensorRef y, TensorRef x, Op op);
template <class Op>
void unary_backward(TensorRef grad_x, TensorRef grad_out, TensorRef x, TensorRef y, Op op);
void binary(TensorRef out, TensorRef a, TensorRef b, BinaryOp op);
void compare(TensorRef out, TensorRef a, TensorRef b, CompareOp op);
void where(TensorRef out, TensorRef cond, TensorRef a, TensorRef b);
void copy(TensorRef out, TensorRef x);  // converts dtype when they differ
void fill(TensorRef out, double value);
}  // namespace cpu

namespace cuda {
template <class Op> void unary_forward(TensorRef y, TensorRef x, Op op);
template <class Op>
void unary_backward(TensorRef grad_x, TensorRef grad_out, TensorRef x, TensorRef y, Op op);
void binary(TensorRef out, TensorRef a, TensorRef b, BinaryOp op);
void compare(TensorRef out, TensorRef a, TensorRef b, CompareOp op);
void where(TensorRef out, TensorRef cond, TensorRef a, TensorRef b);
void copy(TensorRef out, TensorRef x);  // both on one device; converts dtype when they differ
void fill(TensorRef out, double value);
}  // namespace cuda

// y = op(x)
template <class Op> void unary_forward(TensorRef y, TensorRef x, Op op) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (x.device.is_cpu()) return cpu::unary_forward(y, x, op);
  LOOM_ON_CUDA(cuda::unary_forward(y, x, op));
}

// grad_x = grad_out * op'(x)
template <class Op>
void unary_backward(TensorRef grad_x, TensorRef grad_out, TensorRef x, TensorRef y, Op op) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (x.device.is_cpu()) return cpu::unary_backward(grad_x, grad_out, x, y, op);
  LOOM_ON_CUDA(cuda::unary_backward(grad_x, grad_out, x, y, op));
}

// out = a (op) b
inline void binary(TensorRef out, TensorRef a, TensorRef b, BinaryOp op) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (a.device.is_cpu()) return cpu::binary(out, a, b, op);
  LOOM_ON_CUDA(cuda::binary(out, a, b, op));
}

// out (bool) = a (op) b
inline void compare(TensorRef out, TensorRef a, TensorRef b, CompareOp op) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (a.device.is_cpu()) return cpu::compare(out, a, b, op);
  LOOM_ON_CUDA(cuda::compare(out, a, b, op));
}

// out = cond ? a : b  (cond is bool)
inline void where(TensorRef out, TensorRef cond, TensorRef a, TensorRef b) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (a.device.is_cpu()) return cpu::where(out, cond, a, b);
  LOOM_ON_CUDA(cuda::where(out, cond, a, b));
}

// out = x, element by element, converting the dtype if it differs
inline void copy(TensorRef out, TensorRef x) {
  profile::Scope scope(profile::Kind::Copy);
  if (x.device.is_cpu() && out.device.is_cpu()) return cpu::copy(out, x);
  LOOM_ON_CUDA(cuda::copy(out, x));
}

inline void fill(TensorRef out, double value) {
  profile::Scope scope(profile::Kind::Elementwise);
  if (out.device.is_cpu()) return cpu::fill(out, value);
  LOOM_ON_CUDA(cuda::fill(out, value));
}

}  // namespace loom::kernels
