// Data parallelism over a kernels::Communicator (PyTorch's DistributedDataParallel, on
// named tensors): every rank holds a replica of the parameters and computes gradients on
// its own shard of the data; before each update the gradients are averaged across ranks,
// so every replica takes the same step. N ranks with one batch each train exactly like
// one process accumulating those N batches as micro-batches (to float rounding).
//
// Buckets: the parameters are packed in reverse order (backward produces the last layers'
// gradients first) into flat buffers of up to bucket_bytes, one dtype and device each (a
// larger parameter gets a bucket of its own; the communicator must take tensors of that
// device: MPI takes cpu ones). In a synchronising backward, a hook (Note [Leaf gradient
// ready], autograd/tape.h) copies each gradient into its bucket as soon as it is final,
// and a bucket whose gradients are all in starts its all-reduce while backward goes on
// computing the others. Buckets start in index order on every rank (collectives must be
// issued in the same order everywhere), so a full bucket waits for the ones before it.
// When backward returns, the remaining buckets start, all are waited for, divided by the
// world size and copied back into .grad.
//
// A parameter without a gradient on some rank counts as zeros there; one without a
// gradient on every rank keeps none (each bucket also sums a "had a gradient" flag per
// parameter), so optimizers skip it as they would in one process.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/named_tensor.h"
#include "kernels/collectives.h"

namespace loom::optim {

struct DataParallelOptions {
  int64_t bucket_bytes = 25 << 20;  // PyTorch DDP's bucket_cap_mb = 25
};

class DataParallel {
 public:
  // Checks that every rank passes the same parameters (names, shapes, dtypes), else a
  // loom::Error on the ranks that differ.
  DataParallel(ag::NamedTensors params, std::shared_ptr<kernels::Communicator> comm,
               const DataParallelOptions& options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->size(); }
  // Whether gradients go through the communicator: with several ranks, and with one
  // rank of a launched job (backend other than "single").
  bool averages() const { return comm_->size() > 1 || comm_->backend() != "single"; }

  // Copies rank 0's values of every parameter to every rank: at the start of training,
  // after the weights were initialised or loaded.
  void broadcast_parameters();

  // loss.backward(); with `sync`, also averages every gradient across ranks, overlapping
  // with backward (see above). Without it, gradients only accumulate locally: the
  // micro-batches of an update before its last one. One process: just backward.
  void backward(const ag::Tensor& loss, bool sync = true);

  // Averages the gradients as they are now (computed without backward() above).
  void average_gradients();

  // The parameter names in each bucket, in bucket order.
  std::vector<std::vector<std::string>> bucket_names() const;
  // Buckets whose all-reduce started before backward returned, in the last synchronising
  // backward: 0 means no overlap.
  int64_t buckets_started_in_backward() const { return started_in_backward_; }
  // Seconds spent blocked on all-reduces after backward, over every synchronisation so
  // far: the transfer not hidden behind backward, plus waiting for slower ranks.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Bucket {
    kernels::DType dtype = kernels::DType::F32;  // one dtype and device per bucket
    kernels::Device device;
    std::vector<size_t> params;    // indices into params_
    std::vector<int64_t> offsets;  // of each parameter's values in `flat`
    int64_t values = 0;            // elements of gradient values; then one flag per parameter
    ag::Tensor flat;               // (values + params.size())
    size_t pending = 0;            // parameters not yet copied in during this sync
    std::unique_ptr<kernels::CollectiveWork> work;  // set while its all-reduce runs
  };

  void check_same_parameters_on_all_ranks() const;
  void begin_sync();
  void gradient_ready(size_t param);
  void start_full_buckets();
  void finish_sync();

  ag::NamedTensors params_;
  std::shared_ptr<kernels::Communicator> comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<size_t> slot_of_;    // per parameter: its index within its bucket
  std::vector<bool> copied_;       // per parameter: in its bucket during this sync
  std::unordered_map<const ag::TensorImpl*, size_t> index_;
  size_t next_to_start_ = 0;
  int64_t started_in_backward_ = 0;
  double wait_seconds_ = 0;
};

}  // namespace loom::optim
