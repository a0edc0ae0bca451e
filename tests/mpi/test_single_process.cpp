// The single-process side of data parallelism: what `loom train` uses without mpirun.
// The communicator's collectives are identities that still check their inputs, and
// DataParallel is plain backward.
#include <doctest/doctest.h>

#include <cstdlib>

#include "autograd/ops.h"
#include "common/temp_dir.h"
#include "kernels/collectives.h"
#include "optim/data_parallel.h"

namespace loom {
namespace {

using ag::Tensor;

}  // namespace

TEST_CASE("communicator: without a launcher the world is one process") {
  REQUIRE(std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr);
  const auto comm = kernels::world_communicator();
  CHECK(comm == kernels::world_communicator());  // one per process
  CHECK(comm->backend() == "single");
  CHECK(comm->rank() == 0);
  CHECK(comm->size() == 1);
  CHECK(comm->local_rank() == 0);
  Tensor t = ag::from_vector<double>({1.5, -2}, {2});
  comm->all_reduce_sum(t.ref());
  comm->all_reduce_mean(t.ref());
  comm->broadcast(t.ref(), 0);
  CHECK(comm->start_all_reduce_sum(t.ref())->test());
  comm->barrier();
  comm->abort(1);  // one process: returns, the caller's error path goes on
  CHECK(t.to_vector<double>() == std::vector<double>{1.5, -2});
}

TEST_CASE("communicator: bad tensors and roots are refused with the fix") {
  const auto comm = kernels::make_single_process_communicator();
  const Tensor ids = ag::arange(3);
  CHECK(test::error_of([&] { comm->all_reduce_sum(ids.ref()); }) ==
        "all_reduce_sum: cpu int64 [3]: the single-process communicator takes float32 and "
        "float64 tensors only; convert with .to()");
  const Tensor strided = ag::zeros({2, 3}).transpose(0, 1);
  CHECK(test::error_of([&] { comm->broadcast(strided.ref(), 0); }) ==
        "broadcast: cpu float32 [3,2] with strides [1,3]: the tensor must be contiguous (the "
        "result is written in place); call .contiguous() first and copy the result back");
  const Tensor x = ag::zeros({2});
  CHECK(test::error_of([&] { comm->broadcast(x.ref(), 1); }) ==
        "broadcast: root 1: a single process has only rank 0");
}

TEST_CASE("communicator: LOOM_COLLECTIVE_TIMEOUT is read as seconds") {
  CHECK(kernels::collective_timeout_s() == 600);
  setenv("LOOM_COLLECTIVE_TIMEOUT", "2.5", 1);
  CHECK(kernels::collective_timeout_s() == 2.5);
  setenv("LOOM_COLLECTIVE_TIMEOUT", "soon", 1);
  CHECK(test::error_of([] { kernels::collective_timeout_s(); }) ==
        "LOOM_COLLECTIVE_TIMEOUT=soon: expected a positive number of seconds");
  unsetenv("LOOM_COLLECTIVE_TIMEOUT");
}

TEST_CASE("DataParallel: with one process it is plain backward and keeps no buffers") {
  auto make = [] {
    Tensor w = ag::from_vector<float>({0.5f, -1, 2}, {3});
    w.set_requires_grad();
    return w;
  };
  Tensor w = make(), reference = make();
  const Tensor x = ag::from_vector<float>({1, 2, 3}, {3});
  optim::DataParallel dp({{"w", w}}, kernels::world_communicator(), {.bucket_bytes = 4});
  CHECK(dp.world_size() == 1);
  CHECK(dp.bucket_names().empty());
  dp.broadcast_parameters();
  dp.backward(ag::sum(w * w * x), /*sync=*/false);
  dp.backward(ag::sum(w * w * x), /*sync=*/true);
  dp.average_gradients();
  ag::sum(reference * reference * x).backward();
  ag::sum(reference * reference * x).backward();
  CHECK(w.grad().to_vector<float>() == reference.grad().to_vector<float>());
  CHECK(w.grad().to_vector<float>() == std::vector<float>{2, -8, 24});
}

TEST_CASE("DataParallel: a parameter listed twice is refused") {
  Tensor w = ag::zeros({2});
  w.set_requires_grad();
  CHECK(test::error_of([&] {
          optim::DataParallel dp({{"a", w}, {"b", w}}, kernels::world_communicator());
        }) == "DataParallel: parameter 'b' is listed twice");
}

}  // namespace loom
