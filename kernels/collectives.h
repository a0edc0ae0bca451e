// Collectives across the ranks of a data-parallel job: the Communicator interface and
// its factory. Backends: one process (no MPI at all), MPI for cpu tensors
// (kernels/mpi/communicator.cpp), and NCCL for cuda tensors (kernels/nccl/, which hands
// cpu tensors to MPI). Everything takes
// kernels::TensorRef, so this layer knows nothing of autograd.
//
// Launch: `mpirun -np N loom ...` (or srun under Slurm) sets the launcher's environment
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK ...); only then does world_communicator()
// initialise MPI. A plain `loom ...` never touches MPI, so a single process needs no MPI
// at run time.
//
// Failures: a collective that makes no progress for timeout_s (LOOM_COLLECTIVE_TIMEOUT,
// seconds, default 600) throws loom::Error naming the operation, so a rank whose peer
// hangs or died in an unexpected way does not wait forever. A rank that fails must call
// abort() on its error path: it ends every rank's process at once (MPI_Abort), where
// returning normally would leave the others blocked in their next collective.
#pragma once

#include <memory>
#include <string>

#include "kernels/tensor_ref.h"

namespace loom::kernels {

// An asynchronous collective in flight. The tensor it was started on must stay alive and
// untouched until wait() returns. Destroying an unfinished work is only safe on the way
// to abort(): MPI can neither cancel nor free a started collective.
class CollectiveWork {
 public:
  virtual ~CollectiveWork() = default;
  // Lets the operation progress without blocking; true once it has completed.
  virtual bool test() = 0;
  // Blocks until it completes; throws loom::Error after the communicator's timeout.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The rank among the processes of this machine (which GPU a rank uses).
  virtual int local_rank() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"

  // t <- root's t on every rank (in place).
  virtual void broadcast(const TensorRef& t, int root) = 0;
  // t <- the elementwise sum of t over all ranks (in place); every rank gets the same
  // values. Returns at once; see CollectiveWork.
  virtual std::unique_ptr<CollectiveWork> start_all_reduce_sum(const TensorRef& t) = 0;
  // Blocking forms.
  void all_reduce_sum(const TensorRef& t) { start_all_reduce_sum(t)->wait(); }
  // The sum divided by size(); this default divides in cpu memory (a GPU backend
  // overrides it, e.g. with ncclAvg).
  virtual void all_reduce_mean(const TensorRef& t);
  // Returns once every rank has called it.
  virtual void barrier() = 0;
  // The error path of a rank that failed: with several ranks, ends every rank's process
  // at once with exit status `code` (the job's launcher reports it); with one process it
  // does nothing and the caller goes on with its normal error handling.
  virtual void abort(int code) = 0;
};

// The communicator of this process's job, made on the first call and shared after
// (MPI is initialised once and finalised at exit): the MPI one when a launcher started
// several ranks, else the single-process one. Launched as several ranks by a loom built
// without MPI, it throws loom::Error saying so.
std::shared_ptr<Communicator> world_communicator();

// The communicator for a job whose tensors live on `device`. For cpu, world_communicator().
// For a cuda device in a job started by a launcher (mpirun, even with one rank), the NCCL
// communicator over the world's ranks on that device (made once; later calls must name
// the same device). A single process started without a launcher gets the single-process
// one. Launched as several ranks by a loom built without NCCL, it throws loom::Error.
std::shared_ptr<Communicator> world_communicator(Device device);

// The single-process communicator (rank 0 of 1): collectives are identities.
std::unique_ptr<Communicator> make_single_process_communicator();

// Checks what every CPU backend accepts: a contiguous float32 or float64 tensor in cpu
// memory; otherwise a loom::Error naming `op`, the tensor and the fix.
void check_collective_tensor(const char* op, const TensorRef& t, const char* backend);

// The timeout of one collective, in seconds (LOOM_COLLECTIVE_TIMEOUT, default 600).
double collective_timeout_s();

}  // namespace loom::kernels
