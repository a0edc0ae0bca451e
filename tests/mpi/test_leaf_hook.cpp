// Note [Leaf gradient ready] (autograd/tape.h): the hook data parallelism starts its
// gradient all-reduces from. It must see each leaf once, only after the last
// accumulation into it, and in the order backward finishes the leaves.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "autograd/ops.h"

namespace loom::ag {
namespace {

Tensor leaf(const std::vector<float>& v) {
  Tensor t = from_vector(v, {int64_t(v.size())});
  t.set_requires_grad();
  return t;
}

struct Seen {
  std::string name;
  std::vector<float> grad;  // the gradient when the hook ran ({} if none)
};

}  // namespace

TEST_CASE("leaf hook: each leaf once, after its last accumulation, latest-used leaves first") {
  Tensor w1 = leaf({1, 2}), w2 = leaf({3, 4}), unused = leaf({5});
  // w1 feeds the first and the last op, w2 only the middle one: backward finishes w2
  // first, and w1 only after the first op's node (its second accumulation).
  const Tensor h = w1 * 2.0;             // node 0: w1
  const Tensor z = h * w2;               // node 1: w2 (and h)
  const Tensor loss = sum(z + w1 * w1);  // w1 again, then the add and the sum
  std::vector<Seen> seen;
  {
    const LeafGradReadyHook hook([&](const Tensor& t) {
      const std::string name = t.impl() == w1.impl()   ? "w1"
                               : t.impl() == w2.impl() ? "w2"
                                                       : "other";
      seen.push_back(
          {name, t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>{}});
    });
    loss.backward();
  }
  REQUIRE(seen.size() == 2);  // `unused` is on no node: not reported
  CHECK(seen[0].name == "w2");
  CHECK(seen[1].name == "w1");
  // d/dw2 = 2 w1; d/dw1 = 2 w2 + 2 w1: the hook saw the final values.
  CHECK(seen[0].grad == std::vector<float>{2, 4});
  CHECK(seen[1].grad == std::vector<float>{8, 12});
  CHECK(w1.grad().to_vector<float>() == seen[1].grad);
  CHECK(!unused.grad().defined());
}

TEST_CASE("leaf hook: a leaf as the root, nesting, and nothing once the hook is gone") {
  Tensor a = leaf({1}), b = leaf({2});
  std::vector<std::string> outer, inner;
  const LeafGradReadyHook outer_hook(
      [&](const Tensor& t) { outer.push_back(t.impl() == a.impl() ? "a" : "b"); });
  {
    const LeafGradReadyHook inner_hook(
        [&](const Tensor& t) { inner.push_back(t.impl() == a.impl() ? "a" : "b"); });
    a.backward(ones_like(a));  // the root is a leaf: reported after its accumulation
    CHECK(a.grad().item<float>() == 1);
  }
  CHECK(inner == std::vector<std::string>{"a"});
  CHECK(outer.empty());  // the innermost hook only
  sum(a * b).backward();
  CHECK(outer == std::vector<std::string>{"a", "b"});  // equal position: input order
  CHECK(a.grad().item<float>() == 3);                  // 1 + b: accumulation is unchanged by hooks
  CHECK(tape_size() == 0);
}

TEST_CASE("leaf hook: a leaf of a recorded branch that gets no gradient is still reported") {
  Tensor x = leaf({1, 2}), w = leaf({3});
  const Tensor dead = x * 2.0;  // recorded before the root's ops, not on the root's path
  std::vector<bool> had_grad;
  const LeafGradReadyHook hook([&](const Tensor& t) {
    if (t.impl() == x.impl()) had_grad.push_back(t.grad().defined());
  });
  sum(w * 3.0).backward();
  CHECK(had_grad == std::vector<bool>{false});  // final (nothing came), and said so once
  CHECK(dead.defined());
}

TEST_CASE("leaf hook: an error in the hook propagates and clears the tape") {
  Tensor a = leaf({1});
  const LeafGradReadyHook hook([](const Tensor&) { throw Error("hook failed"); });
  CHECK_THROWS_WITH_AS(sum(a * 2.0).backward(), "hook failed", Error);
  CHECK(tape_size() == 0);
}

}  // namespace loom::ag
