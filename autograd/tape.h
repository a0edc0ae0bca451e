// The tape: a thread-local list of nodes, one per differentiable op run while grad mode
// is on and some input requires grad. backward() walks it in reverse, hands each node
// the gradient of its output, routes the returned input gradients to the nodes that
// produced those inputs (or accumulates them into leaves' .grad), destroys each node as
// soon as it has run (freeing its saved tensors) and finally clears the tape. One
// backward per recorded forward: the tape is consumed.
//
// Note [Saved tensor versions]: a node saves tensors through SavedTensor, which
// remembers the storage version at save time; in-place writes bump the version, and
// unpacking a saved tensor whose storage changed throws instead of producing a wrong
// gradient.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "autograd/tensor.h"

namespace loom::ag {

// Where one input's gradient goes.
struct Edge {
  int64_t node = -1;                  // >= 0: the tape node that produced the input
  std::shared_ptr<TensorImpl> leaf;   // else, when set: a leaf to accumulate into
  Dims sizes;                         // the input's shape (checked against its gradient)
  bool needs_grad() const { return node >= 0 || leaf != nullptr; }
};

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Gradients for each input, in input order; an undefined Tensor for inputs that need
  // none (see needs_grad).
  virtual std::vector<Tensor> backward(const Tensor& grad_out) = 0;

  bool needs_grad(size_t input) const { return inputs[input].needs_grad(); }
  std::vector<Edge> inputs;
};

class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(Tensor t);  // NOLINT: implicit on purpose, nodes list saved members plainly
  // The saved tensor, after checking its storage was not modified since it was saved.
  const Tensor& get(const char* op) const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

// Grad mode (thread-local, on by default) and the guard that turns it off for a scope.
bool grad_mode();
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and some input requires grad: the op should record a node.
bool should_record(std::initializer_list<const Tensor*> inputs);

namespace detail {
bool is_recorded(const TensorImpl& t);  // produced by a node still on this thread's tape
void push_node(std::unique_ptr<Node> node, const Tensor& output,
               std::initializer_list<const Tensor*> inputs);
void push_node(std::unique_ptr<Node> node, const Tensor& output,
               const std::vector<Tensor>& inputs);
}  // namespace detail

// Appends a NodeT (constructed from args) producing `output` from `inputs`, if the op
// needs recording. Callers that must compute saved state first check should_record().
template <class NodeT, class... Args>
void record(const Tensor& output, std::initializer_list<const Tensor*> inputs, Args&&... args) {
  if (!should_record(inputs)) return;
  detail::push_node(std::make_unique<NodeT>(std::forward<Args>(args)...), output, inputs);
}

// Runs backward from `root` (see the file comment). grad_out defaults to 1 for scalars.
void backward(const Tensor& root, const Tensor& grad_out = Tensor());

// Note [Leaf gradient ready]: while a LeafGradReadyHook lives, backward() on its thread
// calls it once for every leaf the walked part of the tape feeds, as soon as that leaf's
// .grad is final for the pass: right after the last node with an edge to the leaf has run
// or been skipped (nodes run in reverse recording order, so it is the lowest-indexed
// one). Data parallelism uses it to start averaging gradients across ranks while backward
// is still computing the others (optim/data_parallel.h). Without a hook, backward does
// nothing extra; with one it first scans the tape's edges once to schedule the calls.
// Hooks nest: the innermost one is called, and the previous one is back on destruction.
class LeafGradReadyHook {
 public:
  using Fn = std::function<void(const Tensor& leaf)>;
  explicit LeafGradReadyHook(Fn fn);
  ~LeafGradReadyHook();
  LeafGradReadyHook(const LeafGradReadyHook&) = delete;
  LeafGradReadyHook& operator=(const LeafGradReadyHook&) = delete;

 private:
  Fn fn_;
  const Fn* previous_;
};

// Number of nodes on this thread's tape (tests, and a leak check for eval loops that
// forgot NoGrad), and a way to drop them without running backward.
size_t tape_size();
void clear_tape();

}  // namespace loom::ag
