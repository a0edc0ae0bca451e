// Per-op overhead on tiny tensors ([4] float32), where the arithmetic is free and what is
// measured is the framework: argument checks, shape logic, the tensor allocation (caching
// allocator), the kernel dispatch and, with grad recording, the tape node (its creation,
// and its destruction when the tape is cleared, which is included).
//
// Rows: each op under NoGrad and with inputs requiring grad; a raw kernel call and a bare
// empty() as floors; and a forward + backward chain sum(relu(x * w + b)).
//
// Usage: bench_op_overhead [ops_per_trial]   (default 200000; median of 7 trials)
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "common.h"
#include "kernels/pointwise.h"

namespace {

using namespace loom;
using ag::Tensor;

uintptr_t sink = 0;  // results feed this, so no call is optimised away

// Median over trials of the mean ns per call of f; with a tape, it is cleared every
// 1000 calls (inside the timed region: node destruction is part of a recorded op's cost).
double ns_per_call(const std::function<Tensor()>& f, int64_t calls, bool clear_tape) {
  std::vector<double> trials;
  for (int t = 0; t < 8; ++t) {
    const double t0 = bench::now_ns();
    for (int64_t i = 0; i < calls; ++i) {
      sink ^= reinterpret_cast<uintptr_t>(f().impl());
      if (clear_tape && i % 1000 == 999) ag::clear_tape();
    }
    if (clear_tape) ag::clear_tape();
    if (t > 0) trials.push_back((bench::now_ns() - t0) / double(calls));  // trial 0 warms up
  }
  return bench::median(trials);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t calls = argc > 1 ? std::atoll(argv[1]) : 200000;
  bench::print_settings("bench_op_overhead");
  std::printf("tensors of shape [4], float32; ns per op, median of 7 trials of %lld ops\n\n",
              static_cast<long long>(calls));

  kernels::Generator gen(1);
  const Tensor a = ag::randn({4}, gen), b = ag::randn({4}, gen);
  const Tensor ga = a.detach().set_requires_grad(), gb = b.detach().set_requires_grad();

  struct Row {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
  };
  const std::vector<Row> rows = {
      {"add(a, b)", [](const Tensor& x, const Tensor& y) { return ag::add(x, y); }},
      {"mul(a, b)", [](const Tensor& x, const Tensor& y) { return ag::mul(x, y); }},
      {"relu(a)", [](const Tensor& x, const Tensor&) { return ag::relu(x); }},
      {"sum(a)", [](const Tensor& x, const Tensor&) { return ag::sum(x); }},
      {"a.view({2, 2})",
       [](const Tensor& x, const Tensor&) {
         return x.view({2, 2});
       }},
  };
  std::printf("| op | NoGrad ns | recording ns |\n|---|---|---|\n");
  for (const Row& r : rows) {
    double no_grad;
    {
      ag::NoGrad guard;
      no_grad = ns_per_call([&] { return r.op(ga, gb); }, calls, false);
    }
    const double rec = ns_per_call([&] { return r.op(ga, gb); }, calls, true);
    std::printf("| %s | %.0f | %.0f |\n", r.name, no_grad, rec);
  }

  // Floors: the kernel alone on preallocated tensors, and the allocation alone.
  const Tensor out = ag::empty({4});
  const double kernel_only = ns_per_call(
      [&] {
        kernels::binary(out.ref(), a.ref(), b.ref(), kernels::BinaryOp::Add);
        return out;
      },
      calls, false);
  const double alloc_only = ns_per_call([] { return ag::empty({4}); }, calls, false);
  std::printf("| floor: kernels::binary add, preallocated | %.0f | |\n", kernel_only);
  std::printf("| floor: empty({4}) | %.0f | |\n", alloc_only);

  // A tiny training step: 4 recorded ops forward, their backward, and dropping the grads.
  Tensor x = ag::randn({4}, gen).set_requires_grad();
  Tensor w = ag::randn({4}, gen).set_requires_grad();
  Tensor c = ag::randn({4}, gen).set_requires_grad();
  const double chain = ns_per_call(
      [&] {
        Tensor loss = ag::sum(ag::relu(x * w + c));
        loss.backward();
        x.zero_grad();
        w.zero_grad();
        c.zero_grad();
        return loss;
      },
      calls / 4, false);
  std::printf(
      "\nforward + backward of sum(relu(x * w + c)), 4 ops: %.0f ns per step, %.0f ns per op\n",
      chain, chain / 4);
  return sink == 42 ? 1 : 0;
}
