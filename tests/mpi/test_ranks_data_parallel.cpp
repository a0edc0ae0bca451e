// optim::DataParallel on 2 ranks (run by `mpirun -np 2 test_mpi_ranks`): two ranks with
// batch B each take, step after step, the same AdamW updates (with gradient clipping
// after the averaging) as one process with batch 2B, whatever the bucketing, with
// gradient accumulation, in float32 and float64; every rank ends with bitwise the same
// parameters; and parameters without a gradient on some ranks are handled.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "common/temp_dir.h"
#include "kernels/collectives.h"
#include "nn/linear.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/data_parallel.h"

namespace loom {
namespace {

using ag::Tensor;

// A two-layer perceptron: fc2(tanh(fc1(x))), 5 -> 7 -> 3.
struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  explicit Mlp(uint64_t seed) : Module("Mlp") {
    kernels::Generator init(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(5, 7, init));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(7, 3, init));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(ag::tanh(fc1->forward(x))); }
};

// Mean squared error over rows and outputs: the mean over 2B rows is the mean of the two
// ranks' means over B rows each, which is what averaging the gradients computes.
Tensor mse(const Tensor& y, const Tensor& target) {
  const Tensor d = y - target;
  return ag::mean(d * d);
}

constexpr int64_t kRowsPerRank = 4;
constexpr double kMaxNorm = 0.05;  // small enough that every step clips

struct Run {
  int64_t bucket_bytes = 25 << 20;
  int64_t micro_batches = 1;  // per rank and update
  kernels::DType dtype = kernels::DType::F32;
};

// Steps of AdamW on `model` with this rank's half of each step's batch (or the whole
// batch when `comm` is null: the one-process reference). Returns the number of buckets
// started while backward ran, summed over steps.
int64_t train(Mlp& model, const std::shared_ptr<kernels::Communicator>& comm, const Run& run,
              int steps) {
  model.to(run.dtype);
  optim::AdamW adam(model.named_parameters(), {.lr = 0.02, .weight_decay = 0.1});
  std::unique_ptr<optim::DataParallel> dp;
  if (comm) {
    dp = std::make_unique<optim::DataParallel>(model.named_parameters(), comm,
                                               optim::DataParallelOptions{run.bucket_bytes});
    dp->broadcast_parameters();
  }
  kernels::Generator data(77);  // the same batches on every rank
  int64_t overlapped = 0;
  for (int s = 0; s < steps; ++s) {
    const Tensor x = ag::randn({2 * kRowsPerRank, 5}, data, run.dtype);  // (2B, 5)
    const Tensor t = ag::randn({2 * kRowsPerRank, 3}, data, run.dtype);  // (2B, 3)
    if (!comm) {
      mse(model.forward(x), t).backward();
    } else {
      const int64_t rows = kRowsPerRank / run.micro_batches;
      for (int64_t m = 0; m < run.micro_batches; ++m) {
        const int64_t first = comm->rank() * kRowsPerRank + m * rows;
        const Tensor loss = mse(model.forward(x.narrow(0, first, rows)), t.narrow(0, first, rows));
        dp->backward(loss * (1.0 / double(run.micro_batches)), m + 1 == run.micro_batches);
      }
      overlapped += dp->buckets_started_in_backward();
    }
    CHECK(optim::clip_grad_norm(model.named_parameters(), kMaxNorm) > kMaxNorm);
    adam.step();
    adam.zero_grad();
  }
  return overlapped;
}

// max |a - b| over all parameters.
double max_difference(const Mlp& a, const Mlp& b) {
  double worst = 0;
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const auto va = pa[i].tensor.to_vector<double>(), vb = pb[i].tensor.to_vector<double>();
    for (size_t j = 0; j < va.size(); ++j) worst = std::max(worst, std::abs(va[j] - vb[j]));
  }
  return worst;
}

// Every parameter is bitwise the same on all ranks: the sum over ranks is size x it.
bool same_on_all_ranks(const Mlp& m, kernels::Communicator& comm) {
  bool same = true;
  for (const auto& p : m.named_parameters()) {
    Tensor sum = p.tensor.detach().to(kernels::DType::F64).clone();
    comm.all_reduce_sum(sum.ref());
    const auto mine = p.tensor.to_vector<double>(), all = sum.to_vector<double>();
    for (size_t j = 0; j < mine.size(); ++j) same = same && all[j] == double(comm.size()) * mine[j];
  }
  return same;
}

std::shared_ptr<kernels::Communicator> two_ranks() {
  auto comm = kernels::world_communicator();
  REQUIRE(comm->size() == 2);
  return comm;
}

}  // namespace

TEST_CASE("data parallel: 2 ranks x batch B equal 1 process x batch 2B after AdamW steps") {
  const auto comm = two_ranks();
  Run run;
  int64_t buckets = 1;
  // Float32 sums in another order differ in the last bits; over a few steps of AdamW
  // that stays far below 1e-6 on parameters of order 1.
  double tolerance = 1e-6;
  SUBCASE("one 25 MB bucket") {}
  SUBCASE("a bucket per parameter, started during backward") {
    run.bucket_bytes = 64;
    buckets = 4;  // fc2.bias, fc2.weight, fc1.bias, fc1.weight (reverse order)
  }
  SUBCASE("two micro-batches per rank, averaged only after the last") { run.micro_batches = 2; }
  SUBCASE("float64") {
    run.dtype = kernels::DType::F64;
    tolerance = 1e-13;
  }
  const int steps = 5;
  Mlp reference(11), replica(comm->rank() == 0 ? 11 : 12);  // rank 1 starts elsewhere
  train(reference, nullptr, run, steps);
  const int64_t overlapped = train(replica, comm, run, steps);
  optim::DataParallel layout(replica.named_parameters(), comm, {run.bucket_bytes});
  CHECK(layout.bucket_names().size() == size_t(buckets));
  if (buckets == 4)
    CHECK(layout.bucket_names() == std::vector<std::vector<std::string>>{
                                       {"fc2.bias"}, {"fc2.weight"}, {"fc1.bias"}, {"fc1.weight"}});
  // Every parameter is on the tape of the synchronising backward: every bucket started
  // before backward returned.
  CHECK(overlapped == buckets * steps);
  const double diff = max_difference(replica, reference);
  INFO("max |2 ranks - 1 process| = ", diff);
  CHECK(diff <= tolerance);
  CHECK(diff < max_difference(Mlp(11), reference) * 1e-3);  // the steps did move them
  CHECK(same_on_all_ranks(replica, *comm));
}

TEST_CASE("data parallel: a gradient missing on one rank counts as zeros; missing on all, none") {
  const auto comm = two_ranks();
  auto param = [](float v) {
    Tensor t = ag::full({2}, v);
    t.set_requires_grad();
    return t;
  };
  Tensor a = param(1), b = param(2), c = param(3);
  optim::DataParallel dp({{"a", a}, {"b", b}, {"c", c}}, comm, {.bucket_bytes = 8});
  // Rank 0 uses a and b, rank 1 only a; nobody uses c.
  const Tensor loss = comm->rank() == 0 ? ag::sum(a * 3.0 + b * 5.0) : ag::sum(a * 7.0);
  dp.backward(loss);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{5, 5});      // (3 + 7) / 2
  CHECK(b.grad().to_vector<float>() == std::vector<float>{2.5, 2.5});  // (5 + 0) / 2
  CHECK(!c.grad().defined());
}

TEST_CASE("data parallel: ranks with different parameters are refused") {
  const auto comm = two_ranks();
  Tensor w = ag::zeros({comm->rank() == 0 ? 3 : 4});
  w.set_requires_grad();
  const std::string e = test::error_of([&] { optim::DataParallel dp({{"w", w}}, comm); });
  CHECK(e == "DataParallel: rank " + std::to_string(comm->rank()) + " of 2 has 1 parameters with " +
                 std::to_string(comm->rank() == 0 ? 3 : 4) +
                 " elements, which differ from the other ranks' (names, shapes or dtypes): "
                 "every rank must build the same model");
}

}  // namespace loom
