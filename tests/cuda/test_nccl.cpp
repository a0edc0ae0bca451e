// The NCCL communicator on the GPU, world size 1 (one GPU here): collectives on cuda
// tensors (float32, float64, bfloat16) through NCCL and cpu tensors through the host
// communicator, the refusals, and optim::DataParallel over NCCL: buckets started during
// backward, and training bitwise equal to plain training (a sum over one rank and a
// division by 1 change nothing). Several ranks need several GPUs: not testable here.
#include <doctest/doctest.h>

#if LOOM_WITH_NCCL

#include "autograd/ops.h"
#include "common/temp_dir.h"
#include "cuda/compare.h"
#include "kernels/nccl/communicator.h"
#include "nn/linear.h"
#include "optim/adamw.h"
#include "optim/data_parallel.h"

namespace loom::test {
namespace {

std::shared_ptr<kernels::Communicator> nccl_world() {
  return kernels::nccl::make_communicator(kernels::make_single_process_communicator(), 0, 60);
}

struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  explicit Mlp(uint64_t seed) : Module("Mlp") {
    kernels::Generator init(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(64, 256, init));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 256, init));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(256, 8, init));
  }
  Tensor forward(const Tensor& x) const {
    return fc3->forward(ag::tanh(fc2->forward(ag::tanh(fc1->forward(x)))));
  }
};

// Steps of AdamW on cuda:0; through DataParallel when `comm` is given. Returns the buckets
// started while backward ran, over all steps.
int64_t train(Mlp& model, const std::shared_ptr<kernels::Communicator>& comm, int steps) {
  model.to(gpu());
  optim::AdamW adam(model.named_parameters(), {.lr = 0.01, .weight_decay = 0.1});
  std::unique_ptr<optim::DataParallel> dp;
  if (comm) {
    dp = std::make_unique<optim::DataParallel>(model.named_parameters(), comm,
                                               optim::DataParallelOptions{.bucket_bytes = 4096});
    dp->broadcast_parameters();
  }
  kernels::Generator data(5);
  int64_t overlapped = 0;
  for (int s = 0; s < steps; ++s) {
    const Tensor x = ag::randn({32, 64}, data).to(gpu());
    const Tensor t = ag::randn({32, 8}, data).to(gpu());
    const Tensor d = model.forward(x) - t;
    const Tensor loss = ag::mean(d * d);
    if (dp) {
      dp->backward(loss);
      overlapped += dp->buckets_started_in_backward();
    } else {
      loss.backward();
    }
    adam.step();
    adam.zero_grad();
  }
  return overlapped;
}

}  // namespace

TEST_CASE("nccl: world size 1 collectives on cuda tensors, cpu tensors through the host") {
  const auto comm = nccl_world();
  CHECK(comm->backend() == "nccl");
  CHECK(comm->size() == 1);
  CHECK(comm->rank() == 0);
  for (DType dtype : {DType::F32, DType::F64, DType::BF16}) {
    CAPTURE(dtype);
    kernels::Generator gen(3);
    Tensor t = ag::randn({1000, 37}, gen).to(gpu()).to(dtype);  // bfloat16 exists on cuda only
    const Tensor want = (t * 2.0).to(DType::F64).to(Device::cpu());
    // Queued right before the collective on loom's stream: NCCL's stream must wait for it.
    t.mul_(2.0);
    comm->all_reduce_sum(t.ref());
    comm->broadcast(t.ref(), 0);
    comm->all_reduce_mean(t.ref());
    auto work = comm->start_all_reduce_sum(t.ref());
    work->wait();
    CHECK(work->test());
    CHECK(bitwise_equal(t.to(DType::F64).to(Device::cpu()), want));
  }
  Tensor c = ag::from_vector<double>({1.5, -2}, {2});
  comm->all_reduce_sum(c.ref());  // the host communicator's (single process)
  CHECK(c.to_vector<double>() == std::vector<double>{1.5, -2});
  comm->barrier();

  const Tensor ids = ag::arange(3).to(gpu());
  CHECK(error_of([&] { comm->all_reduce_sum(ids.ref()); }) ==
        "all_reduce_sum: cuda:0 int64 [3]: the NCCL communicator takes float32, float64 and "
        "bfloat16 tensors; convert with .to()");
  const Tensor strided = ag::zeros({2, 3}).to(gpu()).transpose(0, 1);
  CHECK(error_of([&] { comm->broadcast(strided.ref(), 0); }) ==
        "broadcast: cuda:0 float32 [3,2] with strides [1,3]: the tensor must be contiguous (the "
        "result is written in place); call .contiguous() first and copy the result back");
  const Tensor x = ag::zeros({2}).to(gpu());
  CHECK(error_of([&] { comm->broadcast(x.ref(), 1); }) == "broadcast: root 1: not a rank of 1");
  // Without a launcher the world is one process even on a GPU: no NCCL at all.
  CHECK(kernels::world_communicator(gpu())->backend() == "single");
}

TEST_CASE("nccl: DataParallel over NCCL (world size 1) starts buckets in backward, trains bitwise as one process") {
  const auto comm = nccl_world();
  Mlp plain(21), parallel(21);
  train(plain, nullptr, 4);
  const int64_t overlapped = train(parallel, comm, 4);
  optim::DataParallel layout(parallel.named_parameters(), comm, {.bucket_bytes = 4096});
  CHECK(layout.averages());
  const int64_t buckets = int64_t(layout.bucket_names().size());
  CHECK(buckets >= 4);
  CHECK(overlapped == 4 * buckets);  // every bucket's all-reduce started inside backward
  const auto a = plain.named_parameters(), b = parallel.named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(a[i].tensor.to_vector<float>() == b[i].tensor.to_vector<float>());
  }
}

}  // namespace loom::test

#endif  // LOOM_WITH_NCCL
