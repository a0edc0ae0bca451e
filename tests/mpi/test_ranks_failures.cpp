// Failing ranks, for test_mpi_launch to run (skipped unless asked for by name with
// --no-skip): each case fails on purpose on one rank, and the launch test checks that
// the whole job ends with an error within seconds instead of hanging.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "autograd/ops.h"
#include "kernels/collectives.h"
#include "optim/data_parallel.h"

namespace loom {

// Rank 1 throws between two training steps while rank 0 is already averaging the next
// gradients: rank 1's doctest records the failure and ranks_main aborts the job.
TEST_CASE("failure: rank 1 throws during training" * doctest::skip()) {
  const auto comm = kernels::world_communicator();
  ag::Tensor w = ag::full({64}, 1.0);
  w.set_requires_grad();
  optim::DataParallel dp({{"w", w}}, comm);
  for (int step = 0; step < 100; ++step) {
    if (comm->rank() == 1 && step == 3) throw Error("injected failure on rank 1 at step 3");
    dp.backward(ag::sum(w * w));
    w.zero_grad();
  }
}

// Rank 1 stops taking part (stuck, not dead) while rank 0 waits in an all-reduce: with
// LOOM_COLLECTIVE_TIMEOUT=1, rank 0's wait gives up with an error after a second.
TEST_CASE("failure: rank 1 stalls and rank 0's collective times out" * doctest::skip()) {
  const auto comm = kernels::world_communicator();
  if (comm->rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(60));
    return;
  }
  ag::Tensor t = ag::ones({8});
  comm->all_reduce_sum(t.ref());
}

}  // namespace loom
