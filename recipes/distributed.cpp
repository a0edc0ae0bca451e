#include "recipes/distributed.h"

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <vector>

#include "autograd/tensor.h"

namespace loom::recipes {

Distributed start_distributed(const DeviceConfig& device) {
  Distributed d;
  d.comm = kernels::world_communicator();  // the host's, until the device's exists
  d.rank = d.comm->rank();
  d.world = d.comm->size();
  // A rank whose GPU is missing (or whose NCCL start fails) ends the job, not only itself.
  return or_abort_all_ranks(d, [&] {
    d.device = device.type == "cuda" && d.world > 1
                   ? DeviceConfig{"cuda:" + std::to_string(d.comm->local_rank())}.open()
                   : device.open();
    d.comm = kernels::world_communicator(d.device);
    return d;
  });
}

std::ostream& null_stream() {
  static std::ostream null(nullptr);  // no buffer: every write is dropped
  return null;
}

void print_rank_error(const Distributed& d, const char* what) {
  // The one place a library prints: after abort() nothing else could. One write, so the
  // message is not interleaved with the other ranks' output.
  const std::string message = detail::cat("loom: error: rank ", d.rank, " of ", d.world, ": ", what,
                                          "\nloom: stopping every rank of the job\n");
  std::cerr.write(message.data(), std::streamsize(message.size())).flush();
}

StepTotals agree_on_step(const Distributed& d, double loss_sum, double tokens, bool stop,
                         bool out_of_time, kernels::Generator& dropout, uint64_t offset_before) {
  if (d.world == 1) return {loss_sum, tokens, stop, out_of_time};
  // Counters are below 2^53, so their sum is exact in a double.
  const double drawn = double(dropout.offset - offset_before);
  ag::Tensor v = ag::from_vector<double>(
      {loss_sum, tokens, stop ? 1.0 : 0.0, d.root() && out_of_time ? 1.0 : 0.0, drawn}, {5});
  d.comm->all_reduce_sum(v.ref());
  const std::vector<double> s = v.to_vector<double>();
  // Each rank's next draws start past every rank's draws of this step: no counter
  // range is used twice under one key, and all offsets are equal again.
  dropout.offset = offset_before + uint64_t(s[4]);
  return {s[0], s[1], s[2] > 0, s[3] > 0};
}

void use_rank_dropout_stream(kernels::Generator& dropout, int rank) {
  if (rank == 0) return;
  // SplitMix64's finalizer over (key, rank): unrelated keys for neighbouring ranks.
  uint64_t z = dropout.seed + 0x9E3779B97F4A7C15ULL * uint64_t(rank);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  dropout.seed = z ^ (z >> 31);
}

double rank0_value(const Distributed& d, double v) {
  if (d.world == 1) return v;
  ag::Tensor t = ag::from_vector<double>({v}, {1});
  d.comm->broadcast(t.ref(), 0);
  return t.item<double>();
}

void check_resume_world_size(int64_t saved, int world, const std::string& checkpoint) {
  LOOM_CHECK(saved == world, "cannot resume from ", checkpoint, ": it was saved by a run of ",
             saved, saved == 1 ? " rank" : " ranks", " and this run has ", world,
             world == 1 ? " rank" : " ranks",
             "; the loader position counts batches dealt out over ", saved,
             saved == 1 ? " rank" : " ranks", ". Resume with ",
             saved == 1 ? std::string("a single process (no mpirun)")
                        : "mpirun -np " + std::to_string(saved),
             ", or start a new run from its weights with --init-from ", checkpoint);
}

std::string distributed_summary(const Distributed& d, size_t buckets) {
  std::ostringstream os;
  os << "data parallel: " << d.world << (d.world == 1 ? " rank (" : " ranks (") << d.comm->backend()
     << ", " << d.device
     << "), gradients averaged in " << buckets << (buckets == 1 ? " bucket" : " buckets")
     << "; rank 0 logs and saves";
  if (std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("OMPI_MCA_odls_base_sigkill_timeout"))
    os << "\ndata parallel: on Ctrl-C or SIGTERM, mpirun passes the signal on after 1 s and "
          "kills the ranks 1 s later, which may be too soon to finish the update and save; "
          "give them longer with mpirun --mca odls_base_sigkill_timeout 60";
  return os.str();
}

}  // namespace loom::recipes
