// NCCL communicator for cuda tensors (see communicator.h).
//
// Stream order: loom queues all its kernels on the legacy default stream. A collective
// records an event there, makes the communicator's stream wait for it, and runs on that
// stream, so it sees every write queued before it (a bucket's gradients) while later
// kernels (the rest of backward) run beside it. Its completion event is polled by
// test()/wait(); once the host has seen it complete, later work may read the result.
// NCCL reports a failed peer asynchronously: the polls check ncclCommGetAsyncError too.
#include "kernels/nccl/communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include "kernels/error.h"

namespace loom::kernels::nccl {
namespace {

using Clock = std::chrono::steady_clock;

void check(ncclResult_t r, const char* call) {
  LOOM_CHECK(r == ncclSuccess, call, " failed: ", ncclGetErrorString(r));
}

void check(cudaError_t e, const char* call) {
  LOOM_CHECK(e == cudaSuccess, call, " failed: ", cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    default: break;
  }
  LOOM_ASSERT(false);
  return ncclFloat32;
}

// Makes the current device `device` for the lifetime of the scope (NCCL and the event
// calls act on the current device).
class OnDevice {
 public:
  explicit OnDevice(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~OnDevice() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

class NcclCommunicator;

class NcclWork final : public CollectiveWork {
 public:
  NcclWork(NcclCommunicator& comm, cudaEvent_t done, const char* op)
      : comm_(comm), done_event_(done), op_(op) {}
  ~NcclWork() override { cudaEventDestroy(done_event_); }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  cudaEvent_t done_event_;
  const char* op_;
  bool done_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> host, int device, double timeout_s)
      : host_(std::move(host)), device_(device), timeout_s_(timeout_s) {
    OnDevice on(device_);
    // The id is 128 opaque bytes; the host communicator moves float64 tensors, and a
    // broadcast copies their bytes unchanged.
    static_assert(sizeof(ncclUniqueId) % sizeof(double) == 0);
    double id_words[sizeof(ncclUniqueId) / sizeof(double)] = {};
    ncclUniqueId id;
    if (host_->rank() == 0) {
      check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      std::memcpy(id_words, &id, sizeof id);
    }
    TensorRef words{id_words, DType::F64, Device::cpu(),
                    Dims{int64_t(sizeof id_words / sizeof(double))}, Dims{1}};
    host_->broadcast(words, 0);
    std::memcpy(&id, id_words, sizeof id);
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
  }

  ~NcclCommunicator() override {
    OnDevice on(device_);
    if (comm_ && !aborted_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  std::string backend() const override { return "nccl"; }

  void broadcast(const TensorRef& t, int root) override {
    if (t.device.is_cpu()) return host_->broadcast(t, root);
    check_tensor("broadcast", t);
    LOOM_CHECK(root >= 0 && root < size(), "broadcast: root ", root, ": not a rank of ", size());
    start("broadcast", [&] {
      return ncclBroadcast(t.data, t.data, size_t(t.numel()), nccl_type(t.dtype), root, comm_,
                           stream_);
    })->wait();
  }

  std::unique_ptr<CollectiveWork> start_all_reduce_sum(const TensorRef& t) override {
    if (t.device.is_cpu()) return host_->start_all_reduce_sum(t);
    check_tensor("all_reduce_sum", t);
    return start("all_reduce_sum", [&] {
      return ncclAllReduce(t.data, t.data, size_t(t.numel()), nccl_type(t.dtype), ncclSum, comm_,
                           stream_);
    });
  }

  void all_reduce_mean(const TensorRef& t) override {
    if (t.device.is_cpu()) return host_->all_reduce_mean(t);
    check_tensor("all_reduce_mean", t);
    start("all_reduce_mean", [&] {
      return ncclAllReduce(t.data, t.data, size_t(t.numel()), nccl_type(t.dtype), ncclAvg, comm_,
                           stream_);
    })->wait();
  }

  void barrier() override { host_->barrier(); }

  void abort(int code) override {
    if (comm_ && !aborted_) ncclCommAbort(comm_);
    aborted_ = true;
    host_->abort(code);
  }

  // Throws when NCCL has reported an asynchronous error (a peer failed).
  void check_async(const char* op) {
    ncclResult_t async = ncclSuccess;
    check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    LOOM_CHECK(async == ncclSuccess, op, ": rank ", rank(), " of ", size(),
               ": NCCL reported ", ncclGetErrorString(async), " (a peer failed or the network broke)");
  }

  // After the timeout: the communicator is aborted (NCCL cannot cancel one collective).
  [[noreturn]] void time_out(const char* op) {
    ncclCommAbort(comm_);
    aborted_ = true;
    throw Error(detail::cat(op, ": rank ", rank(), " of ", size(), " waited ", timeout_s_,
                            " s without the other ranks completing it: one failed, hangs, or "
                            "runs a different collective; raise LOOM_COLLECTIVE_TIMEOUT "
                            "(seconds) if a rank legitimately needs longer between collectives"));
  }

  int device() const { return device_; }
  double timeout_s() const { return timeout_s_; }

 private:
  void check_tensor(const char* op, const TensorRef& t) const {
    LOOM_CHECK(!aborted_, op, ": the NCCL communicator was aborted after an earlier failure");
    LOOM_CHECK(t.device == Device::cuda(device_), op, ": ", t.device, " ", t.dtype, " ", t.sizes,
               ": this rank's NCCL communicator works on cuda:", device_,
               "; move the tensor there with .to()");
    LOOM_CHECK(t.dtype == DType::F32 || t.dtype == DType::F64 || t.dtype == DType::BF16, op, ": ",
               t.device, " ", t.dtype, " ", t.sizes,
               ": the NCCL communicator takes float32, float64 and bfloat16 tensors; convert with "
               ".to()");
    LOOM_CHECK(t.is_contiguous(), op, ": ", t.device, " ", t.dtype, " ", t.sizes, " with strides ",
               t.strides,
               ": the tensor must be contiguous (the result is written in place); call "
               ".contiguous() first and copy the result back");
  }

  // Queues `call` on the communicator's stream after the work already queued on loom's
  // stream, and returns the work that completes with it.
  template <class Call>
  std::unique_ptr<CollectiveWork> start(const char* op, Call call) {
    OnDevice on(device_);
    cudaEvent_t ready = nullptr, done = nullptr;
    check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(ready, cudaStreamLegacy), "cudaEventRecord");
    check(cudaStreamWaitEvent(stream_, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);  // released once the wait is satisfied
    check(call(), op);
    check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(done, stream_), "cudaEventRecord");
    return std::make_unique<NcclWork>(*this, done, op);
  }

  std::shared_ptr<Communicator> host_;
  int device_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool aborted_ = false;
};

bool NcclWork::test() {
  if (done_) return true;
  OnDevice on(comm_.device());
  const cudaError_t e = cudaEventQuery(done_event_);
  if (e == cudaErrorNotReady) {
    comm_.check_async(op_);
    return false;
  }
  check(e, op_);
  done_ = true;
  return true;
}

void NcclWork::wait() {
  // Spin briefly, then sleep between polls: a peer seconds behind costs no CPU.
  constexpr std::chrono::microseconds kSpin{2000}, kSleep{50};
  const auto start = Clock::now();
  while (!test()) {
    const auto waited = Clock::now() - start;
    if (std::chrono::duration<double>(waited).count() >= comm_.timeout_s()) comm_.time_out(op_);
    if (waited > kSpin) std::this_thread::sleep_for(kSleep);
  }
}

}  // namespace

std::unique_ptr<Communicator> make_communicator(std::shared_ptr<Communicator> host, int device,
                                                double timeout_s) {
  LOOM_CHECK(host != nullptr, "nccl::make_communicator: no host communicator");
  return std::make_unique<NcclCommunicator>(std::move(host), device, timeout_s);
}

}  // namespace loom::kernels::nccl
