// The NCCL backend of kernels::Communicator, for the tensors of one CUDA device; built
// when CMake finds CUDA and libnccl (LOOM_WITH_NCCL). Only kernels/collectives.cpp's
// factory and the GPU tests make one.
#pragma once

#include <memory>

#include "kernels/collectives.h"

namespace loom::kernels::nccl {

// A communicator over the ranks of `host` in which this rank owns cuda:`device`. Tensors
// on that device go through NCCL, on a stream of the communicator's own that waits for
// the work queued before each collective (so an all-reduce started during backward runs
// beside it); cpu tensors, barrier and abort go through `host` (the MPI communicator, or
// the single-process one: NCCL with world size 1). The NCCL id made on rank 0 travels
// to the others by a broadcast on `host`. Each collective throws loom::Error after
// `timeout_s` seconds without completing (and aborts the NCCL communicator, which must
// not be used after that).
std::unique_ptr<Communicator> make_communicator(std::shared_ptr<Communicator> host, int device,
                                                double timeout_s);

}  // namespace loom::kernels::nccl
