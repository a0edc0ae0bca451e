#include "optim/adamw.h"

#include "autograd/tape.h"
#include "kernels/adamw.h"

namespace loom::optim {

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Optimizer("AdamW", std::move(groups), options.lr, options.weight_decay), options_(options) {
  LOOM_CHECK(options.beta1 >= 0 && options.beta1 < 1, "AdamW: beta1 ", options.beta1,
             ": must be in [0, 1)");
  LOOM_CHECK(options.beta2 >= 0 && options.beta2 < 1, "AdamW: beta2 ", options.beta2,
             ": must be in [0, 1)");
  LOOM_CHECK(options.eps >= 0, "AdamW: eps ", options.eps, ": must be non-negative");
  state_.resize(num_params());
}

AdamW::AdamW(const ag::NamedTensors& params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

void AdamW::step() {
  ag::NoGrad no_grad;
  // Check everything before changing anything, so a failed step leaves no trace.
  struct Item {
    size_t i;
    ag::Tensor grad;  // contiguous
  };
  std::vector<Item> items;
  for (size_t i = 0; i < num_params(); ++i) {
    const ag::NamedTensor& p = param(i);
    const ag::Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    LOOM_CHECK(p.tensor.is_contiguous(), "AdamW.step: parameter '", p.name, "' ", p.tensor.sizes(),
               ": not contiguous (parameters must own contiguous memory)");
    LOOM_CHECK(g.device() == p.tensor.device(), "AdamW.step: parameter '", p.name, "' on ",
               p.tensor.device(), " has its gradient on ", g.device());
    items.push_back({i, g.contiguous()});
  }
  std::vector<kernels::AdamWTensor> batch;
  batch.reserve(items.size());
  for (const Item& it : items) {
    const ag::Tensor& p = param(it.i).tensor;
    const ParamGroup& group = groups_[flat_[it.i].group];
    State& s = state_[it.i];
    if (s.step == 0) {
      s.exp_avg = ag::zeros_like(p);
      s.exp_avg_sq = ag::zeros_like(p);
    }
    ++s.step;
    batch.push_back({p.ref(), s.exp_avg.ref(), s.exp_avg_sq.ref(), it.grad.ref(), *group.lr,
                     *group.weight_decay, s.step});
  }
  kernels::adamw_step(batch, options_.beta1, options_.beta2, options_.eps);
  // The kernel wrote in place: tensors saved for a backward must notice.
  for (const Item& it : items) param(it.i).tensor.storage()->bump_version();
}

bool AdamW::has_state(const std::string& name) const {
  return state_[index_of(name, "has_state")].step > 0;
}

const AdamW::State& AdamW::state(const std::string& name) const {
  const State& s = state_[index_of(name, "state")];
  LOOM_CHECK(s.step > 0, "AdamW.state: parameter '", name,
             "' has no state yet (it has not been stepped)");
  return s;
}

void AdamW::set_state(const std::string& name, const State& state) {
  const size_t i = index_of(name, "set_state");
  const ag::Tensor& p = param(i).tensor;
  LOOM_CHECK(state.step >= 1, "AdamW.set_state: parameter '", name, "': step ", state.step,
             ": must be at least 1");
  for (const auto& [what, t] :
       {std::pair{"exp_avg", &state.exp_avg}, std::pair{"exp_avg_sq", &state.exp_avg_sq}}) {
    LOOM_CHECK(t->defined(), "AdamW.set_state: parameter '", name, "': ", what, " is undefined");
    LOOM_CHECK(t->sizes() == p.sizes(), "AdamW.set_state: parameter '", name, "' ", p.sizes(), ": ",
               what, " has shape ", t->sizes());
    LOOM_CHECK(t->dtype() == p.dtype(), "AdamW.set_state: parameter '", name, "' ", p.dtype(),
               ": ", what, " is ", t->dtype());
  }
  ag::NoGrad no_grad;
  // Own contiguous copies on the parameter's device (a checkpoint's state is on the host):
  // the caller's tensors are not updated by later steps.
  auto own = [&](const ag::Tensor& t) { return t.detach().to(p.device()).clone(); };
  state_[i] = State{state.step, own(state.exp_avg), own(state.exp_avg_sq)};
}

}  // namespace loom::optim
