#include "optim/optimizer.h"

namespace loom::optim {

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups, double default_lr,
                     double default_weight_decay)
    : name_(name), groups_(std::move(groups)) {
  LOOM_CHECK(default_lr >= 0, name_, ": lr ", default_lr, ": must be non-negative");
  LOOM_CHECK(default_weight_decay >= 0, name_, ": weight_decay ", default_weight_decay,
             ": must be non-negative");
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    if (!group.lr) group.lr = default_lr;
    if (!group.weight_decay) group.weight_decay = default_weight_decay;
    LOOM_CHECK(*group.lr >= 0, name_, ": group ", g, ": lr ", *group.lr, ": must be non-negative");
    LOOM_CHECK(*group.weight_decay >= 0, name_, ": group ", g, ": weight_decay ",
               *group.weight_decay, ": must be non-negative");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const ag::NamedTensor& p = group.params[i];
      LOOM_CHECK(p.tensor.defined(), name_, ": parameter '", p.name, "' is undefined");
      LOOM_CHECK(p.tensor.is_floating_point(), name_, ": parameter '", p.name,
                 "': ", p.tensor.dtype(), " ", p.tensor.sizes(),
                 ": expected a floating-point tensor");
      const auto [it, fresh] = index_.emplace(p.name, flat_.size());
      LOOM_CHECK(fresh, name_, ": parameter '", p.name, "' appears twice (groups ",
                 flat_[it->second].group, " and ", g, ")");
      flat_.push_back({g, i});
    }
  }
}

void Optimizer::zero_grad() {
  for (ParamGroup& group : groups_)
    for (ag::NamedTensor& p : group.params) p.tensor.zero_grad();
}

const ParamGroup& Optimizer::group(size_t g) const {
  LOOM_CHECK(g < groups_.size(), name_, ": group ", g, ": the optimizer has ", groups_.size(),
             " group", groups_.size() == 1 ? "" : "s");
  return groups_[g];
}

double Optimizer::lr(size_t g) const { return *group(g).lr; }

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

void Optimizer::set_lr(size_t g, double lr) {
  group(g);  // checks the index
  LOOM_CHECK(lr >= 0, name_, ": group ", g, ": lr ", lr, ": must be non-negative");
  groups_[g].lr = lr;
}

std::vector<std::string> Optimizer::param_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < flat_.size(); ++i) names.push_back(param(i).name);
  return names;
}

size_t Optimizer::index_of(const std::string& param, const char* op) const {
  const auto it = index_.find(param);
  LOOM_CHECK(it != index_.end(), name_, ".", op, ": unknown parameter '", param, "'");
  return it->second;
}

}  // namespace loom::optim
