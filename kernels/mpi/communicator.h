// The MPI backend of kernels::Communicator (CPU tensors), built when CMake finds MPI
// (cmake/mpi.cmake). Only kernels/collectives.cpp's factory makes one.
#pragma once

#include <memory>

#include "kernels/collectives.h"

namespace loom::kernels::mpi {

// Initialises MPI (once per process) and returns the communicator over all ranks of the
// job; MPI is finalised when it is destroyed, unless abort() ran. Each collective throws
// loom::Error after `timeout_s` seconds without completing.
std::unique_ptr<Communicator> make_world_communicator(double timeout_s);

}  // namespace loom::kernels::mpi
