#include "nn/module.h"

#include <map>
#include <sstream>
#include <unordered_set>

#include "autograd/ops.h"

namespace loom::nn {

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}

std::string LoadReport::summary() const {
  std::ostringstream os;
  os << missing.size() << " missing key" << (missing.size() == 1 ? "" : "s");
  if (!missing.empty()) os << " (" << join_names(missing) << ")";
  os << ", " << unexpected.size() << " unexpected";
  if (!unexpected.empty()) os << " (" << join_names(unexpected) << ")";
  os << ", " << wrong_shape.size() << " wrong-shape";
  if (!wrong_shape.empty()) os << " (" << join_names(wrong_shape) << ")";
  return os.str();
}

void Module::check_name(const std::string& name) const {
  bool ok = !name.empty();
  for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  LOOM_CHECK(ok, type_name_, ": name \"", name, "\": names are [a-z0-9_]+ (no dots)");
  for (const auto& p : params_)
    LOOM_CHECK(p.name != name, type_name_, ": \"", name, "\" registered twice");
  for (const auto& b : buffers_)
    LOOM_CHECK(b.name != name, type_name_, ": \"", name, "\" registered twice");
  for (const auto& c : children_)
    LOOM_CHECK(c.first != name, type_name_, ": \"", name, "\" registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_name(name);
  LOOM_CHECK(t.defined() && t.is_floating_point(), type_name_, ": parameter \"", name,
             "\" must be a defined floating-point tensor");
  if (!t.requires_grad()) t.set_requires_grad(true);
  params_.push_back({name, t});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_name(name);
  buffers_.push_back({name, t, persistent});
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name);
  LOOM_CHECK(m != nullptr, type_name_, ": module \"", name, "\" is null");
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, NamedTensors& params, NamedTensors& buffers,
                     bool persistent_only) const {
  for (const auto& p : params_) params.push_back({prefix + p.name, p.tensor});
  for (const auto& b : buffers_)
    if (b.persistent || !persistent_only) buffers.push_back({prefix + b.name, b.tensor});
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", params, buffers, persistent_only);
}

NamedTensors Module::named_parameters() const {
  NamedTensors params, buffers;
  collect("", params, buffers, true);
  NamedTensors unique;
  std::unordered_set<const ag::TensorImpl*> seen;
  for (auto& p : params)
    if (seen.insert(p.tensor.impl()).second) unique.push_back(std::move(p));
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

NamedTensors Module::named_buffers(bool persistent_only) const {
  NamedTensors params, buffers;
  collect("", params, buffers, persistent_only);
  return buffers;
}

NamedTensors Module::state_dict() const {
  NamedTensors params, buffers;
  collect("", params, buffers, true);
  for (auto& b : buffers) params.push_back(std::move(b));
  return params;
}

LoadReport Module::load_state_dict(const NamedTensors& state, bool strict) {
  LoadReport report;
  std::map<std::string, const Tensor*> given;
  for (const auto& s : state) given[s.name] = &s.tensor;
  const NamedTensors own = state_dict();
  std::unordered_set<std::string> own_names;
  for (const auto& [name, t] : own) {
    own_names.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
    } else if (it->second->sizes() != t.sizes()) {
      std::ostringstream os;
      os << name << ": given " << it->second->sizes() << ", the model has " << t.sizes();
      report.wrong_shape.push_back(os.str());
    } else {
      report.loaded.push_back(name);
    }
  }
  for (const auto& s : state)
    if (!own_names.count(s.name)) report.unexpected.push_back(s.name);
  LOOM_CHECK(!strict || report.ok(), "load_state_dict: ", report.summary());
  ag::NoGrad no_grad;
  for (const auto& [name, t] : own) {
    auto it = given.find(name);
    if (it == given.end() || it->second->sizes() != t.sizes()) continue;
    Tensor dst = t;
    dst.copy_(it->second->to(t.dtype()).to(t.device()));  // as PyTorch: across devices too
  }
  return report;
}

void Module::to(DType dtype) {
  ag::NoGrad no_grad;
  for (auto& [name, t] : state_dict()) {
    if (t.dtype() == dtype) continue;
    Tensor target = t;
    target.set_data(t.to(dtype).contiguous());
  }
}

void Module::to(Device device) {
  ag::NoGrad no_grad;
  for (auto& [name, t] : state_dict()) {
    if (t.device() == device) continue;
    Tensor target = t;
    target.set_data(t.to(device));
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.tensor.zero_grad();
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(size()), std::move(m));
}

}  // namespace loom::nn
