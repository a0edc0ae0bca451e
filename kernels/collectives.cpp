// The single-process communicator, the checks every CPU backend shares, and the factory
// that picks a backend from the launcher's environment (see collectives.h).
#include "kernels/collectives.h"

#include <cstdlib>
#include <mutex>

#include "kernels/error.h"
#if LOOM_WITH_MPI
#include "kernels/mpi/communicator.h"
#endif
#if LOOM_WITH_NCCL
#include "kernels/nccl/communicator.h"
#endif

namespace loom::kernels {
namespace {

class DoneWork final : public CollectiveWork {
 public:
  bool test() override { return true; }
  void wait() override {}
};

// One rank: a sum or broadcast over one rank is the tensor itself. The inputs are still
// checked, so a wrong call fails the same way with one process as with many.
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }

  void broadcast(const TensorRef& t, int root) override {
    check_collective_tensor("broadcast", t, "single-process");
    LOOM_CHECK(root == 0, "broadcast: root ", root, ": a single process has only rank 0");
  }
  std::unique_ptr<CollectiveWork> start_all_reduce_sum(const TensorRef& t) override {
    check_collective_tensor("all_reduce_sum", t, "single-process");
    return std::make_unique<DoneWork>();
  }
  void barrier() override {}
  void abort(int) override {}
};

// The first of the launchers' "how many ranks" variables that is set: Open MPI's mpirun,
// then PMI (MPICH's hydra, Slurm's srun --mpi=pmi2). 0 when none is: not launched.
int launched_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  // srun --mpi=pmix sets no size variable but the rank; MPI itself knows the size.
  if (std::getenv("PMIX_RANK") && std::getenv("SLURM_STEP_NUM_TASKS"))
    return std::atoi(std::getenv("SLURM_STEP_NUM_TASKS"));
  return 0;
}

}  // namespace

void Communicator::all_reduce_mean(const TensorRef& t) {
  LOOM_CHECK(t.device.is_cpu(), "all_reduce_mean: ", t.device, " ", t.dtype, " ", t.sizes,
             ": this communicator averages cpu tensors only");
  all_reduce_sum(t);
  dispatch_floating(t.dtype, "all_reduce_mean", [&]<class T>() {
    const T scale = T(1) / T(size());
    T* p = t.ptr<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] *= scale;
  });
}

void check_collective_tensor(const char* op, const TensorRef& t, const char* backend) {
  LOOM_CHECK(t.device.is_cpu(), op, ": ", t.device, " ", t.dtype, " ", t.sizes, ": the ", backend,
             " communicator takes cpu tensors; GPU tensors need the NCCL communicator");
  LOOM_CHECK(t.dtype == DType::F32 || t.dtype == DType::F64, op, ": ", t.device, " ", t.dtype, " ",
             t.sizes, ": the ", backend,
             " communicator takes float32 and float64 tensors only; convert with .to()");
  LOOM_CHECK(t.is_contiguous(), op, ": ", t.device, " ", t.dtype, " ", t.sizes, " with strides ",
             t.strides,
             ": the tensor must be contiguous (the result is written in place); "
             "call .contiguous() first and copy the result back");
}

double collective_timeout_s() {
  const char* v = std::getenv("LOOM_COLLECTIVE_TIMEOUT");
  if (!v || !*v) return 600;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  LOOM_CHECK(end && *end == '\0' && s > 0, "LOOM_COLLECTIVE_TIMEOUT=", v,
             ": expected a positive number of seconds");
  return s;
}

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

std::shared_ptr<Communicator> world_communicator() {
  static std::mutex mutex;
  static std::shared_ptr<Communicator> world;  // finalised (MPI) at exit
  const std::lock_guard<std::mutex> lock(mutex);
  if (world) return world;
  const int launched = launched_world_size();
  if (launched <= 1) {
    world = make_single_process_communicator();
    return world;
  }
#if LOOM_WITH_MPI
  world = mpi::make_world_communicator(collective_timeout_s());
#else
  throw Error(detail::cat("communicator: launched as one of ", launched,
                          " ranks, but this loom was built without MPI (LOOM_WITH_MPI is off); "
                          "install libopenmpi-dev and rebuild, or run a single process "
                          "without mpirun"));
#endif
  return world;
}

std::shared_ptr<Communicator> world_communicator(Device device) {
  std::shared_ptr<Communicator> host = world_communicator();
  if (device.is_cpu() || launched_world_size() == 0) return host;
  static std::mutex mutex;
  static std::shared_ptr<Communicator> gpu_world;
  static Device gpu_device;
  const std::lock_guard<std::mutex> lock(mutex);
  if (gpu_world) {
    LOOM_CHECK(device == gpu_device, "communicator: this process already communicates on ",
               gpu_device, ", not ", device, "; one rank uses one GPU");
    return gpu_world;
  }
#if LOOM_WITH_NCCL
  gpu_world = nccl::make_communicator(host, device.index, collective_timeout_s());
  gpu_device = device;
  return gpu_world;
#else
  LOOM_CHECK(host->size() == 1, "communicator: ", host->size(), " ranks train on ", device,
             ", but this loom was built without NCCL (LOOM_WITH_NCCL is off); build where "
             "CUDA and libnccl are installed, or train on the cpu");
  return host;
#endif
}

}  // namespace loom::kernels
