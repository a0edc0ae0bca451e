// Module: the base of every layer. It keeps three ordered lists — parameters, buffers
// (persistent or not) and child modules — filled by register_*() in constructors, and
// walks them in registration order joining names with '.', so
// named_parameters()/state_dict() keys are PyTorch's state_dict keys
// (`encoder.layers.0.self_attn.q_proj.weight`). Each module has its own typed forward();
// there is no virtual forward.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/named_tensor.h"
#include "autograd/tensor.h"

namespace loom::nn {

using ag::NamedTensor;
using ag::NamedTensors;
using ag::Tensor;
using kernels::Device;
using kernels::Dims;
using kernels::DType;
using kernels::Generator;

// What load_state_dict found. strict loading throws when any list is non-empty.
struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected,
      wrong_shape;  // "name: given [a], the model has [b]"
  bool ok() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
  std::string summary() const;  // "2 missing keys (a, b), 0 unexpected, 0 wrong-shape"
};

// "a, b, c": names as summary() lists them.
std::string join_names(const std::vector<std::string>& names);

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // Parameters (each tensor once, even if registered under two names), in order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers(bool persistent_only = false) const;
  // Parameters then persistent buffers, each under every name it is registered as.
  NamedTensors state_dict() const;
  // Copies values into the existing tensors (member handles stay valid). strict: every
  // key must match by name and shape, else one loom::Error lists every problem.
  LoadReport load_state_dict(const NamedTensors& state, bool strict = true);

  // Converts every parameter and buffer to dtype in place (e.g. float64 for gradient
  // checks); member handles stay valid.
  void to(DType dtype);
  // Moves every parameter and buffer to device (cpu, cuda:N) in place; handles stay valid
  // and gradients are dropped.
  void to(Device device);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

  // Children in registration order, with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  // Registers a trainable tensor (marks it requires_grad) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
  };
  void check_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void collect(const std::string& prefix, NamedTensors& params, NamedTensors& buffers,
               bool persistent_only) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  std::vector<Buffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Children named "0", "1", ... (PyTorch's nn.ModuleList).
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return children().size(); }
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    return std::static_pointer_cast<M>(children()[i].second);
  }
};

}  // namespace loom::nn
