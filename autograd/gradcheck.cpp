#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "kernels/cuda/runtime.h"

namespace loom::ag {
namespace {

// L = sum(f(inputs) * R), evaluated without recording.
double projected(const TensorFn& f, const std::vector<Tensor>& inputs, const Tensor& r) {
  NoGrad no_grad;
  return sum(f(inputs) * r).item<double>();
}

// Pointer to element `i` (row-major logical index) of a possibly strided view.
double* element(const Tensor& t, int64_t i) {
  double* base = t.data<double>();
  int64_t off = 0;
  for (int d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.sizes()[d]) * t.strides()[d];
    i /= t.sizes()[d];
  }
  return base + off;
}

// Reads / writes one element of x wherever x lives (a CUDA tensor is perturbed in place on
// the device, one element at a time).
double get(const Tensor& x, const double* p) {
  if (x.device().is_cpu()) return *p;
  double v = 0;
  kernels::cuda::copy_bytes(&v, Device::cpu(), p, x.device(), sizeof v);
  return v;
}
void set(const Tensor& x, double* p, double v) {
  if (x.device().is_cpu()) {
    *p = v;
    return;
  }
  kernels::cuda::copy_bytes(p, x.device(), &v, Device::cpu(), sizeof v);
}

}  // namespace

GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  GradcheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    LOOM_CHECK(x.dtype() == DType::F64, "gradcheck: input ", k, " is ", x.dtype(),
               "; finite differences need float64 inputs");
    for (int d = 0; d < x.dim(); ++d)
      LOOM_CHECK(x.strides()[d] != 0 || x.sizes()[d] <= 1, "gradcheck: input ", k,
                 " is an expanded view (stride 0); pass a materialised tensor");
    x.impl()->grad = nullptr;
  }

  Tensor out = f(inputs);
  LOOM_CHECK(out.dtype() == DType::F64, "gradcheck: the function returned ", out.dtype(),
             "; expected float64");
  Generator gen(opt.seed);
  const Tensor r = randn(out.sizes(), gen, DType::F64).to(out.device());
  Tensor loss = sum(out * r);
  if (!loss.requires_grad()) {
    result.ok = false;
    result.message = "the output does not depend on any input that requires grad";
    return result;
  }
  loss.backward();

  for (size_t k = 0; k < inputs.size() && result.ok; ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
    for (int64_t i = 0; i < x.numel(); ++i) {
      double* p = element(x, i);
      const double saved = get(x, p);
      set(x, p, saved + opt.eps);
      const double plus = projected(f, inputs, r);
      set(x, p, saved - opt.eps);
      const double minus = projected(f, inputs, r);
      set(x, p, saved);
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double err = std::abs(analytic[size_t(i)] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= opt.atol + opt.rtol * std::abs(numeric))) {
        std::ostringstream os;
        os << "input " << k << " " << x.sizes() << ", element " << i << ": analytic "
           << analytic[size_t(i)] << ", numeric " << numeric << " (|diff| " << err << ")";
        result.ok = false;
        result.message = os.str();
        break;
      }
    }
  }
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.impl()->grad = nullptr;
  return result;
}

}  // namespace loom::ag
