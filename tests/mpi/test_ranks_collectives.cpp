// The MPI communicator on 2 ranks (run by `mpirun -np 2 test_mpi_ranks`): broadcast,
// all-reduce in float32 and float64 (blocking, averaged, and several in flight at once),
// barrier, and the refusals, which come before any MPI call so the ranks stay in step.
#include <doctest/doctest.h>

#include <string>

#include "autograd/ops.h"
#include "common/temp_dir.h"
#include "kernels/collectives.h"

namespace loom {
namespace {

using ag::Tensor;

std::shared_ptr<kernels::Communicator> two_ranks() {
  auto comm = kernels::world_communicator();
  REQUIRE(comm->backend() == "mpi");
  REQUIRE(comm->size() == 2);
  return comm;
}

}  // namespace

TEST_CASE("collectives: broadcast from either root, in place") {
  const auto comm = two_ranks();
  const int r = comm->rank();
  for (int root : {0, 1}) {
    Tensor t = ag::full({2, 3}, r == root ? 7.25 : -1.0);
    comm->broadcast(t.ref(), root);
    CHECK(t.to_vector<float>() == std::vector<float>(6, 7.25f));
  }
  Tensor d = ag::from_vector<double>({double(r) + 0.1, 1e300}, {2});
  comm->broadcast(d.ref(), 1);
  CHECK(d.to_vector<double>() == std::vector<double>{1.1, 1e300});
  CHECK(comm->local_rank() == r);  // both ranks run on this machine
}

TEST_CASE("collectives: all-reduce sums float32 and float64 on every rank, and averages") {
  const auto comm = two_ranks();
  const double r = comm->rank();
  Tensor f = ag::from_vector<float>({float(r + 1), float(10 * (r + 1)), -0.5f}, {3});
  comm->all_reduce_sum(f.ref());
  CHECK(f.to_vector<float>() == std::vector<float>{3, 30, -1});
  Tensor d = ag::from_vector<double>({1e-12 * (r + 1), r}, {1, 2});
  comm->all_reduce_sum(d.ref());
  CHECK(d.to_vector<double>() == std::vector<double>{1e-12 + 2e-12, 1});
  Tensor m = ag::from_vector<double>({r == 0 ? 1.0 : 4.0}, {1});
  comm->all_reduce_mean(m.ref());
  CHECK(m.item<double>() == 2.5);
  Tensor empty = ag::zeros({0});
  comm->all_reduce_sum(empty.ref());
}

TEST_CASE("collectives: several all-reduces in flight, completed in any order") {
  const auto comm = two_ranks();
  const float r = float(comm->rank());
  Tensor a = ag::full({1000}, 1.0 + r), b = ag::full({3}, 100.0 * (r + 1));
  auto wa = comm->start_all_reduce_sum(a.ref());
  auto wb = comm->start_all_reduce_sum(b.ref());
  wb->wait();
  while (!wa->test()) {
  }
  CHECK(wa->test());  // stays done
  wa->wait();
  CHECK(a.to_vector<float>() == std::vector<float>(1000, 3));
  CHECK(b.to_vector<float>() == std::vector<float>(3, 300));
  comm->barrier();
}

TEST_CASE("collectives: refusals name the tensor and the fix") {
  const auto comm = two_ranks();
  const Tensor ids = ag::arange(4);
  CHECK(test::error_of([&] { comm->start_all_reduce_sum(ids.ref()); }) ==
        "all_reduce_sum: cpu int64 [4]: the MPI communicator takes float32 and float64 "
        "tensors only; convert with .to()");
  const Tensor strided = ag::zeros({2, 3}).transpose(0, 1);
  CHECK(test::error_of([&] { comm->all_reduce_sum(strided.ref()); }) ==
        "all_reduce_sum: cpu float32 [3,2] with strides [1,3]: the tensor must be contiguous "
        "(the result is written in place); call .contiguous() first and copy the result back");
  const Tensor x = ag::zeros({1});
  CHECK(test::error_of([&] { comm->broadcast(x.ref(), 2); }) ==
        "broadcast: root 2: not a rank of 2");
  comm->barrier();  // still in step
}

}  // namespace loom
