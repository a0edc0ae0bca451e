#include "autograd/tape.h"

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

}  // namespace

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
  if (r.node < 0) {
    accumulate_into_leaf(*root.impl(), g);
    return;
  }
  try {
    std::vector<Tensor> grads(size_t(r.node) + 1);
    grads[size_t(r.node)] = g;
    g = Tensor();
    for (int64_t i = r.node; i >= 0; --i) {
      if (!grads[size_t(i)].defined()) continue;
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
      // node goes out of scope here: its saved tensors are released now, not at the end.
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
