// Pointwise functors: the value and the derivative of each unary elementwise op, written
// once for every backend (LOOM_HOST_DEVICE lets nvcc compile them for the GPU too).
// derivative(x, y) receives both the input x and the output y = value(x) so each op uses
// whichever is cheaper (exp: y; gelu: x). `reads` names the ones it uses: the autograd saves
// only those for the backward, so e.g. relu keeps its output alone (which the next layer
// keeps anyway) and scalar affine maps keep nothing.
//
// Adding a unary op: one functor here + its name in LOOM_UNARY_OPS (the one X-macro the
// backends instantiate from) + one line in autograd/ops/pointwise.cpp.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/host_device.h"

namespace loom::kernels {

// Which of x and y a functor's derivative reads.
enum class DerivativeReads : uint8_t { None, X, Y, Both };

struct Neg {
  static constexpr DerivativeReads reads = DerivativeReads::None;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return -x; }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T) const { return T(-1); }
};

struct Exp {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return std::exp(x); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return y; }
};

struct Log {
  static constexpr DerivativeReads reads = DerivativeReads::X;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return std::log(x); }
  template <class T> LOOM_HOST_DEVICE T derivative(T x, T) const { return T(1) / x; }
};

struct Sqrt {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return std::sqrt(x); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return T(0.5) / y; }
};

// rsqrt(x) = x^(-1/2); d/dx = -1/2 x^(-3/2) = -1/2 y^3
struct Rsqrt {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return T(1) / std::sqrt(x); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return T(-0.5) * y * y * y; }
};

struct Tanh {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return std::tanh(x); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return T(1) - y * y; }
};

// relu'(0) = 0, as PyTorch; y > 0 exactly when x > 0, so the derivative reads y.
struct Relu {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return x > T(0) ? x : T(0); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return y > T(0) ? T(1) : T(0); }
};

// GELU, exact form (torch.nn.functional.gelu, approximate="none"):
// y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); dy/dx = Phi(x) + x * phi(x).
struct Gelu {
  static constexpr DerivativeReads reads = DerivativeReads::X;
  template <class T> LOOM_HOST_DEVICE T value(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  }
  template <class T> LOOM_HOST_DEVICE T derivative(T x, T) const {
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    return cdf + x * pdf;
  }
};

// sigmoid(x) = 1 / (1 + e^-x); d/dx = y (1 - y)
struct Sigmoid {
  static constexpr DerivativeReads reads = DerivativeReads::Y;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return T(1) / (T(1) + std::exp(-x)); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T y) const { return y * (T(1) - y); }
};

// x^p for a scalar exponent p; d/dx = p x^(p-1)
struct PowScalar {
  static constexpr DerivativeReads reads = DerivativeReads::X;
  double p = 1.0;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return std::pow(x, T(p)); }
  template <class T> LOOM_HOST_DEVICE T derivative(T x, T) const {
    return T(p) * std::pow(x, T(p - 1.0));
  }
};

// a * x + b for scalars a, b: tensor-scalar add, sub, mul and div in one op.
struct Affine {
  static constexpr DerivativeReads reads = DerivativeReads::None;
  double a = 1.0, b = 0.0;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return T(a) * x + T(b); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T) const { return T(a); }
};

// x / s for a scalar s (true division, as PyTorch's x / 2.0; not x * (1/s)).
struct DivScalar {
  static constexpr DerivativeReads reads = DerivativeReads::None;
  double s = 1.0;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return x / T(s); }
  template <class T> LOOM_HOST_DEVICE T derivative(T, T) const { return T(1) / T(s); }
};

// s / x for a scalar s; d/dx = -s / x^2 = -y / x
struct RDivScalar {
  static constexpr DerivativeReads reads = DerivativeReads::Both;
  double s = 1.0;
  template <class T> LOOM_HOST_DEVICE T value(T x) const { return T(s) / x; }
  template <class T> LOOM_HOST_DEVICE T derivative(T x, T y) const { return -y / x; }
};

}  // namespace loom::kernels

// Every unary functor, for the backends' explicit instantiations.
#define LOOM_UNARY_OPS(X) \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Rsqrt) X(Tanh) X(Relu) X(Gelu) X(Sigmoid) X(PowScalar) X(Affine) \
  X(DivScalar) X(RDivScalar)
