// GPU-vs-CPU comparison helpers for the CUDA suite: run the same function on CPU and GPU
// copies of the inputs, compare outputs and input gradients.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "kernels/cuda/runtime.h"

namespace loom::test {

using ag::Tensor;
using kernels::Device;
using kernels::Dims;
using kernels::DType;
using Tensors = std::vector<Tensor>;

inline Device gpu() { return Device::cuda(0); }

// max |got - want| / max(max |want|, floor): error relative to the tensor's scale.
inline double rel_error(const Tensor& got, const Tensor& want, double floor = 1e-6) {
  const auto g = got.to(DType::F64).to_vector<double>();
  const auto w = want.to(DType::F64).to_vector<double>();
  REQUIRE(g.size() == w.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) != std::isnan(w[i])) return INFINITY;
    if (std::isnan(w[i])) continue;
    diff = std::max(diff, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / std::max(scale, floor);
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.to(DType::F64).to_vector<double>() == b.to(DType::F64).to_vector<double>();
}

// t's whole storage copied to dev and viewed with t's sizes, strides and offset: a strided
// input stays strided on the GPU (to() would make it contiguous). A new leaf.
inline Tensor same_layout_on(const Tensor& t, Device dev) {
  if (dev == t.device()) return t.detach();
  const size_t n = t.storage()->nbytes();
  const Tensor flat = ag::empty({int64_t(n / kernels::dtype_size(t.dtype()))}, t.dtype(), dev);
  kernels::cuda::copy_bytes(flat.ref().data, dev, t.storage()->data(), t.device(), n);
  return ag::make_view(flat, t.sizes(), t.strides(), t.offset());
}

// Runs f on cpu inputs and on gpu copies; compares the output and, for inputs that require
// grad, the gradients of sum(out * R) (R random, the same on both). tol: relative. Each
// device runs forward then backward before the other starts (backward releases the tape).
inline void compare_devices(const std::function<Tensor(const Tensors&)>& f, const Tensors& cpu_in,
                            double tol, bool backward = true) {
  // Read before the first backward: it releases the tape, and a recorded view (e.g. a
  // transposed leaf) no longer reports requires_grad after that.
  std::vector<bool> needs_grad;
  for (const Tensor& t : cpu_in) needs_grad.push_back(t.requires_grad());
  auto run = [&](const Tensors& in, Device dev, Tensors& grads) {
    Tensors leaves;
    for (size_t k = 0; k < in.size(); ++k) {
      Tensor l = same_layout_on(in[k], dev);
      if (needs_grad[k]) l.set_requires_grad();
      leaves.push_back(l);
    }
    const Tensor out = f(leaves);
    if (backward && out.requires_grad()) {
      kernels::Generator gen(99);
      const Tensor r = ag::randn(out.sizes(), gen, out.dtype()).to(dev);
      ag::sum(out * r).backward();
      for (const Tensor& l : leaves) grads.push_back(l.requires_grad() ? l.grad() : Tensor());
    }
    return out.detach();
  };
  Tensors grads_c, grads_g;
  const Tensor out_c = run(cpu_in, Device::cpu(), grads_c);
  const Tensor out_g = run(cpu_in, gpu(), grads_g);
  REQUIRE(out_g.device() == gpu());
  REQUIRE(out_g.sizes() == out_c.sizes());
  CHECK(rel_error(out_g, out_c) <= tol);
  REQUIRE(grads_c.size() == grads_g.size());
  for (size_t k = 0; k < grads_c.size(); ++k) {
    if (!grads_c[k].defined()) continue;
    INFO("gradient of input ", k);
    REQUIRE(grads_g[k].defined());
    CHECK(grads_g[k].device() == gpu());
    CHECK(rel_error(grads_g[k], grads_c[k]) <= tol);
  }
}

inline Tensor random(const Dims& shape, uint64_t seed, DType dtype = DType::F32, double low = -1,
                     double high = 1, bool grad = true) {
  kernels::Generator gen(seed);
  Tensor t = ag::rand(shape, gen, DType::F64) * (high - low) + low;
  t = t.to(dtype).detach();
  if (grad) t.set_requires_grad();
  return t;
}

}  // namespace loom::test
