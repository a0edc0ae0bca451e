#include "common/op_spec.h"

#include <cmath>

namespace loom::test {

Tensors make_spec_inputs(const OpSpec& spec, DType dtype, bool non_contiguous, uint64_t seed) {
  Tensors inputs;
  if (spec.make_inputs) {
    inputs = spec.make_inputs(dtype);
  } else {
    kernels::Generator gen(seed);
    for (const Dims& shape : spec.shapes) {
      Tensor base = ag::rand(shape, gen, DType::F64) * (spec.high - spec.low) + spec.low;
      inputs.push_back(base.to(dtype));
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.defined()) continue;  // an optional operand left out
    if (non_contiguous && x.is_floating_point() && x.numel() > 1) {
      if (x.dim() >= 2 && x.size(-1) > 1 && x.size(-2) > 1) {
        // Same values, transposed strides: materialise x^T, view it back as x's shape.
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2);
      } else {
        // Same values every other element along the last dim longer than 1.
        int d = x.dim() - 1;
        while (x.size(d) == 1) --d;
        Dims wide_shape = x.sizes();
        wide_shape[d] *= 2;
        Tensor wide = ag::zeros(wide_shape, x.dtype());
        wide.slice(d, 0, wide_shape[d], 2).copy_(x);
        x = wide.slice(d, 0, wide_shape[d], 2);
      }
      CHECK_FALSE(x.is_contiguous());
    }
    const bool diff = spec.differentiable.empty() || spec.differentiable[i];
    x = x.detach();
    if (diff && x.is_floating_point()) x.set_requires_grad(true);
  }
  return inputs;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const auto va = a.to(DType::F64).to_vector<double>();
  const auto vb = b.to(DType::F64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
    if (!std::isnan(va[i])) m = std::max(m, std::abs(va[i] - vb[i]));
  }
  return m;
}

void check_op(const OpSpec& spec) {
  INFO("op: ", spec.name);
  if (spec.reference) {
    for (DType dtype : {DType::F64, DType::F32}) {
      ag::NoGrad no_grad;
      const Tensors in = make_spec_inputs(spec, dtype, false, 7);
      const Tensor got = spec.op(in), want = spec.reference(in);
      INFO("forward ", dtype, " ", got.sizes());
      CHECK(got.dtype() == want.dtype());
      const double tol = dtype == DType::F64 ? 1e-12 : 1e-5;
      CHECK(max_abs_diff(got, want) <= tol * (1.0 + max_abs_diff(want, ag::zeros_like(want))));
    }
  }
  for (bool non_contiguous : {false, true}) {
    const Tensors in = make_spec_inputs(spec, DType::F64, non_contiguous, 11);
    const ag::GradcheckResult r = ag::gradcheck(spec.op, in);
    INFO("gradcheck", std::string(non_contiguous ? " (non-contiguous inputs)" : ""), ": ", r.message);
    CHECK(r.ok);
  }
  CHECK(ag::tape_size() == 0);
}

void check_error(const std::function<void()>& fn, const std::string& text) {
  try {
    fn();
  } catch (const loom::Error& e) {
    INFO("message: ", std::string(e.what()));
    CHECK(std::string(e.what()).find(text) != std::string::npos);
    return;
  }
  FAIL("expected loom::Error containing \"", text, "\", nothing was thrown");
}

}  // namespace loom::test
