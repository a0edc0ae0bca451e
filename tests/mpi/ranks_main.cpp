// main() of test_mpi_ranks, the doctest suite that runs as every rank of
// `mpirun -np 2 test_mpi_ranks`. A test that fails on one rank would leave the others
// waiting in a collective; so a failed run ends with Communicator::abort, which ends
// every rank, and the launcher reports the failure instead of hanging.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "kernels/collectives.h"

int main(int argc, char** argv) {
  const auto comm = loom::kernels::world_communicator();
  doctest::Context context(argc, argv);
  if (comm->rank() != 0) context.setOption("minimal", true);  // rank 0 tells the story
  const int failed = context.run();
  if (failed != 0) comm->abort(failed);
  return failed;
}
