// The interface AdamW and SGD share (torch.optim.Optimizer): parameter groups with their
// own learning rate and weight decay, step(), zero_grad(), and per-parameter state kept
// by parameter name, so a checkpoint can store and restore it by the state_dict names.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "optim/param_groups.h"

namespace loom::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters whose grad is undefined
  // are skipped (their state does not advance). Runs under NoGrad.
  virtual void step() = 0;
  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  size_t num_groups() const { return groups_.size(); }
  const ParamGroup& group(size_t g) const;  // lr and weight_decay are set
  double lr(size_t g = 0) const;
  void set_lr(double lr);  // every group, e.g. from an LrSchedule
  void set_lr(size_t g, double lr);
  // Every parameter's name, groups in order, parameters in group order.
  std::vector<std::string> param_names() const;
  const char* name() const { return name_; }

 protected:
  // Fills unset group lr / weight_decay from the defaults and checks everything: lr and
  // weight decay non-negative, parameters defined, floating-point, named once.
  Optimizer(const char* name, std::vector<ParamGroup> groups, double default_lr,
            double default_weight_decay);
  // The flat index (groups in order) of parameter `param`, or an error naming `op`.
  size_t index_of(const std::string& param, const char* op) const;
  size_t num_params() const { return flat_.size(); }

  struct Flat {
    size_t group, index;  // groups_[group].params[index]
  };
  const ag::NamedTensor& param(size_t i) const {
    return groups_[flat_[i].group].params[flat_[i].index];
  }

  const char* name_;
  std::vector<ParamGroup> groups_;
  std::vector<Flat> flat_;

 private:
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace loom::optim
