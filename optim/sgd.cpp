#include "optim/sgd.h"

#include "autograd/ops.h"

namespace loom::optim {

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("SGD", std::move(groups), options.lr, options.weight_decay), options_(options) {
  LOOM_CHECK(options.momentum >= 0, "SGD: momentum ", options.momentum, ": must be non-negative");
  buffers_.resize(num_params());
}

SGD::SGD(const ag::NamedTensors& params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

void SGD::step() {
  ag::NoGrad no_grad;
  for (size_t i = 0; i < num_params(); ++i) {
    const ag::NamedTensor& p = param(i);
    const ag::Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    const ParamGroup& group = groups_[flat_[i].group];
    ag::Tensor d = *group.weight_decay != 0 ? g + p.tensor * *group.weight_decay : g;
    if (options_.momentum != 0) {
      ag::Tensor& b = buffers_[i];
      if (!b.defined())
        b = d.clone();
      else
        b.mul_(options_.momentum).add_(d);
      d = b;
    }
    ag::Tensor t = p.tensor;
    t.add_(d, -*group.lr);  // bumps the storage version
  }
}

bool SGD::has_momentum_buffer(const std::string& name) const {
  return buffers_[index_of(name, "has_momentum_buffer")].defined();
}

const ag::Tensor& SGD::momentum_buffer(const std::string& name) const {
  const ag::Tensor& b = buffers_[index_of(name, "momentum_buffer")];
  LOOM_CHECK(b.defined(), "SGD.momentum_buffer: parameter '", name,
             "' has no momentum buffer (not stepped yet, or momentum is 0)");
  return b;
}

void SGD::set_momentum_buffer(const std::string& name, const ag::Tensor& buffer) {
  const size_t i = index_of(name, "set_momentum_buffer");
  const ag::Tensor& p = param(i).tensor;
  LOOM_CHECK(buffer.defined() && buffer.sizes() == p.sizes(),
             "SGD.set_momentum_buffer: parameter '", name, "' ", p.sizes(), ": buffer has shape ",
             buffer.defined() ? buffer.sizes() : ag::Dims{});
  LOOM_CHECK(buffer.dtype() == p.dtype() && buffer.device() == p.device(),
             "SGD.set_momentum_buffer: parameter '", name, "' ", p.device(), " ", p.dtype(),
             ": buffer is ", buffer.device(), " ", buffer.dtype());
  ag::NoGrad no_grad;
  buffers_[i] = buffer.detach().clone();
}

}  // namespace loom::optim
