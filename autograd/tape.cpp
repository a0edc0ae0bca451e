#include "autograd/tape.h"

#include <algorithm>
#include <unordered_set>

#include "autograd/ops.h"
#include "kernels/pointwise.h"

namespace loom::ag {
namespace {

struct Tape {
  std::vector<std::unique_ptr<Node>> nodes;
  uint64_t id = 1;  // bumped whenever the tape is consumed or cleared
};

thread_local Tape tape;
thread_local bool grad_enabled = true;
thread_local const LeafGradReadyHook::Fn* leaf_ready_hook = nullptr;  // see the Note

// Whether t was produced by a node that is still on this thread's tape.
bool on_tape(const TensorImpl& t) {
  return t.node >= 0 && t.tape_id == tape.id && size_t(t.node) < tape.nodes.size() &&
         tape.nodes[size_t(t.node)] != nullptr;
}

Edge make_edge(const Tensor& input) {
  Edge e;
  TensorImpl& t = *input.impl();
  if (on_tape(t)) e.node = t.node;
  else if (t.node < 0 && t.requires_grad) e.leaf = input.impl_ptr();
  if (e.needs_grad()) e.sizes = t.sizes;
  return e;
}

void push(std::unique_ptr<Node> node, const Tensor& output) {
  TensorImpl& out = *output.impl();
  out.node = int64_t(tape.nodes.size());
  out.tape_id = tape.id;
  out.requires_grad = true;
  tape.nodes.push_back(std::move(node));
}

void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  if (!leaf.grad) {
    // Keep g itself only when nothing else can see its memory: optimizers and clipping
    // write gradients in place.
    const bool unique = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1;
    leaf.grad = (unique && g.is_contiguous() ? g : g.clone()).impl_ptr();
    return;
  }
  Tensor acc(leaf.grad);
  kernels::binary(acc.ref(), acc.ref(), g.ref(), kernels::BinaryOp::Add);
  acc.storage()->bump_version();
}

// Runs node i with its output gradient and routes the input gradients: to the slots of
// the nodes that produced them, or into leaves. The node is destroyed on return, which
// releases its saved tensors now rather than at the end of backward.
void run_node(int64_t i, std::vector<Tensor>& grads) {
  std::unique_ptr<Node> node = std::move(tape.nodes[size_t(i)]);
  const Tensor grad_output = std::move(grads[size_t(i)]);
  std::vector<Tensor> grad_inputs = node->backward(grad_output);
  LOOM_ASSERT(grad_inputs.size() == node->inputs.size());
  for (size_t j = 0; j < grad_inputs.size(); ++j) {
    const Edge& e = node->inputs[j];
    Tensor& gi = grad_inputs[j];
    if (!e.needs_grad() || !gi.defined()) continue;
    LOOM_CHECK(gi.sizes() == e.sizes, node->name(), " backward: gradient ", gi.sizes(),
               " for input ", j, " of shape ", e.sizes, " (this is a bug in loom)");
    if (e.node >= 0) {
      Tensor& slot = grads[size_t(e.node)];
      slot = slot.defined() ? add(slot, gi) : std::move(gi);
    } else {
      accumulate_into_leaf(*e.leaf, gi);
    }
  }
}

// Each leaf fed by nodes 0..last with the lowest index of a node feeding it, in
// increasing index order: after that node, the leaf's gradient is final (see the Note).
// backward() takes them from the back; a node's own leaves are stored in reverse input
// order, so they are reported in input order.
std::vector<std::pair<int64_t, std::shared_ptr<TensorImpl>>> leaf_ready_schedule(int64_t last) {
  std::vector<std::pair<int64_t, std::shared_ptr<TensorImpl>>> schedule;
  std::unordered_set<const TensorImpl*> seen;
  for (int64_t i = 0; i <= last; ++i) {
    if (!tape.nodes[size_t(i)]) continue;
    const std::vector<Edge>& inputs = tape.nodes[size_t(i)]->inputs;
    const size_t first = schedule.size();
    for (const Edge& e : inputs)
      if (e.leaf && seen.insert(e.leaf.get()).second) schedule.emplace_back(i, e.leaf);
    std::reverse(schedule.begin() + std::ptrdiff_t(first), schedule.end());
  }
  return schedule;
}

}  // namespace

LeafGradReadyHook::LeafGradReadyHook(Fn fn) : fn_(std::move(fn)), previous_(leaf_ready_hook) {
  leaf_ready_hook = &fn_;
}
LeafGradReadyHook::~LeafGradReadyHook() { leaf_ready_hook = previous_; }

bool detail::is_recorded(const TensorImpl& t) { return on_tape(t); }

SavedTensor::SavedTensor(Tensor t) : t_(std::move(t)) {
  if (t_.defined()) version_ = t_.storage()->version();
}

const Tensor& SavedTensor::get(const char* op) const {
  LOOM_CHECK(!t_.defined() || t_.storage()->version() == version_, op,
             " backward: a tensor saved for backward was modified in place (version ",
             version_, " at save, ", t_.storage()->version(),
             " now); do in-place writes (fill_, copy_, optimizer steps) before the forward "
             "pass or after backward()");
  return t_;
}

bool grad_mode() { return grad_enabled; }
NoGrad::NoGrad() : previous_(grad_enabled) { grad_enabled = false; }
NoGrad::~NoGrad() { grad_enabled = previous_; }

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

namespace detail {

void push_node(std::unique_ptr<Node> node, const Tensor& output,
               std::initializer_list<const Tensor*> inputs) {
  node->inputs.reserve(inputs.size());
  for (const Tensor* t : inputs) node->inputs.push_back(t->defined() ? make_edge(*t) : Edge{});
  push(std::move(node), output);
}

void push_node(std::unique_ptr<Node> node, const Tensor& output,
               const std::vector<Tensor>& inputs) {
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) node->inputs.push_back(t.defined() ? make_edge(t) : Edge{});
  push(std::move(node), output);
}

}  // namespace detail

void backward(const Tensor& root, const Tensor& grad_out) {
  LOOM_CHECK(root.defined(), "backward: called on an undefined tensor");
  const TensorImpl& r = *root.impl();
  LOOM_CHECK(r.node < 0 || on_tape(r), "backward: ", root.dtype(), " ", root.sizes(),
             ": the tape that recorded this tensor was already consumed by an earlier "
             "backward() or cleared; run the forward pass again to record a new one");
  LOOM_CHECK(root.requires_grad(), "backward: ", root.dtype(), " ", root.sizes(),
             ": tensor does not require grad (no recorded op produced it); mark the leaves "
             "with set_requires_grad() before the forward pass, outside NoGrad");
  Tensor g = grad_out;
  if (!g.defined()) {
    LOOM_CHECK(root.numel() == 1, "backward: ", root.sizes(),
               ": a gradient can be created implicitly only for a one-element output; "
               "pass grad_out");
    g = ones_like(root);
  }
  LOOM_CHECK(g.sizes() == root.sizes() && g.dtype() == root.dtype(), "backward: grad_out ",
             g.dtype(), " ", g.sizes(), " does not match the output ", root.dtype(), " ",
             root.sizes());

  NoGrad no_grad;  // the backward pass itself is not recorded
  const LeafGradReadyHook::Fn* hook = leaf_ready_hook;
  if (r.node < 0) {
    accumulate_into_leaf(*root.impl(), g);
    if (hook) (*hook)(root);
    return;
  }
  try {
    std::vector<Tensor> grads(size_t(r.node) + 1);
    grads[size_t(r.node)] = g;
    g = Tensor();
    auto ready = hook ? leaf_ready_schedule(r.node) : decltype(leaf_ready_schedule(0)){};
    for (int64_t i = r.node; i >= 0; --i) {
      if (grads[size_t(i)].defined()) run_node(i, grads);
      for (; !ready.empty() && ready.back().first == i; ready.pop_back())
        (*hook)(Tensor(ready.back().second));
    }
  } catch (...) {
    clear_tape();
    throw;
  }
  clear_tape();
}

size_t tape_size() {
  size_t n = 0;
  for (const auto& node : tape.nodes) n += node != nullptr;
  return n;
}

void clear_tape() {
  tape.nodes.clear();
  ++tape.id;
}

}  // namespace loom::ag
