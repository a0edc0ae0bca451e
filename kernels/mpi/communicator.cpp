// MPI communicator for cpu tensors (Open MPI from Debian; any MPI-3 library works).
//
// Every collective is started non-blocking (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) and
// completed by polling MPI_Test, for two reasons: the wait can give up after the timeout
// with a loom::Error instead of hanging when a peer is gone or stuck, and after a short
// spin it sleeps between polls, so a rank waiting for a slower one (evaluating, saving a
// checkpoint) leaves its core to the others; MPI's blocking calls spin at full speed.
// Errors come back as codes (MPI_ERRORS_RETURN) and become loom::Error with MPI's text.
#include "kernels/mpi/communicator.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <thread>

#include "kernels/error.h"

namespace loom::kernels::mpi {
namespace {

using Clock = std::chrono::steady_clock;

// Polls spin this long before sleeping kSleep between polls: a peer that is a few
// microseconds behind is caught at full speed, one that is seconds behind costs no CPU.
constexpr std::chrono::microseconds kSpin{2000}, kSleep{50};

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, size_t(length));
}

// Throws loom::Error naming the MPI call and MPI's message when it fails.
#define LOOM_MPI_CHECK(call)                                                                     \
  do {                                                                                           \
    const int loom_mpi_code = (call);                                                            \
    if (loom_mpi_code != MPI_SUCCESS) [[unlikely]]                                               \
      throw ::loom::Error(::loom::detail::cat(#call, " failed: ", mpi_error_text(loom_mpi_code), \
                                              " (", __FILE__, ":", __LINE__, ")"));              \
  } while (0)

MPI_Datatype mpi_type(DType t) { return t == DType::F64 ? MPI_DOUBLE : MPI_FLOAT; }

int mpi_count(const char* op, const TensorRef& t) {
  LOOM_CHECK(t.numel() <= INT_MAX, op, ": ", t.dtype, " ", t.sizes, ": ", t.numel(),
             " elements are more than one MPI call takes (", INT_MAX, "); reduce it in parts");
  return int(t.numel());
}

class MpiWork final : public CollectiveWork {
 public:
  MpiWork(MPI_Request request, const char* op, int rank, int size, double timeout_s)
      : request_(request), op_(op), rank_(rank), size_(size), timeout_s_(timeout_s) {}
  // An unfinished request is left to MPI (it cannot be cancelled): see CollectiveWork.
  ~MpiWork() override = default;

  bool test() override {
    if (done_) return true;
    int flag = 0;
    LOOM_MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    done_ = flag != 0;
    return done_;
  }

  void wait() override {
    const auto start = Clock::now();
    while (!test()) {
      const auto waited = Clock::now() - start;
      LOOM_CHECK(std::chrono::duration<double>(waited).count() < timeout_s_, op_, ": rank ", rank_,
                 " of ", size_, " waited ", timeout_s_,
                 " s without the other ranks completing it: one failed, hangs, or runs a "
                 "different collective; raise LOOM_COLLECTIVE_TIMEOUT (seconds) if a rank "
                 "legitimately needs longer between collectives");
      if (waited > kSpin) std::this_thread::sleep_for(kSleep);
    }
  }

 private:
  MPI_Request request_;
  const char* op_;
  int rank_, size_;
  double timeout_s_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      // Serialized: loom calls MPI from one thread at a time (the training thread), while
      // OpenMP threads run the kernels.
      int provided = 0;
      LOOM_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided));
      owns_mpi_ = true;
    }
    LOOM_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    // A communicator of our own, so loom's traffic can never match another library's.
    LOOM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    LOOM_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    LOOM_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    LOOM_MPI_CHECK(MPI_Comm_size(comm_, &size_));
    MPI_Comm node;
    LOOM_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    LOOM_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
    LOOM_MPI_CHECK(MPI_Comm_free(&node));
  }

  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }

  void broadcast(const TensorRef& t, int root) override {
    check_collective_tensor("broadcast", t, "MPI");
    LOOM_CHECK(root >= 0 && root < size_, "broadcast: root ", root, ": not a rank of ", size_);
    MPI_Request request;
    LOOM_MPI_CHECK(
        MPI_Ibcast(t.data, mpi_count("broadcast", t), mpi_type(t.dtype), root, comm_, &request));
    MpiWork(request, "broadcast", rank_, size_, timeout_s_).wait();
  }

  std::unique_ptr<CollectiveWork> start_all_reduce_sum(const TensorRef& t) override {
    check_collective_tensor("all_reduce_sum", t, "MPI");
    MPI_Request request;
    LOOM_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.data, mpi_count("all_reduce_sum", t),
                                  mpi_type(t.dtype), MPI_SUM, comm_, &request));
    return std::make_unique<MpiWork>(request, "all_reduce_sum", rank_, size_, timeout_s_);
  }

  void barrier() override {
    MPI_Request request;
    LOOM_MPI_CHECK(MPI_Ibarrier(comm_, &request));
    MpiWork(request, "barrier", rank_, size_, timeout_s_).wait();
  }

  void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  double timeout_s_;
  bool owns_mpi_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace loom::kernels::mpi
