// The data-parallel side of `loom train` (`mpirun -np N loom train RECIPE`): each rank
// trains on its shard of the batches (data::Batcher's rank and world_size) and the
// gradients are averaged by optim::DataParallel, so N ranks train like one process with
// N times optim.accumulate (to float rounding). What the ranks must decide alike is
// agreed here: the step's global loss and token count, stopping (a signal on any rank,
// rank 0's clock for max_minutes, rank 0's dev score for patience and best.h5), and the
// dropout streams. Rank 0 alone prints, logs, writes metrics and checkpoints.
#pragma once

#include <exception>
#include <memory>
#include <ostream>
#include <string>

#include "kernels/collectives.h"
#include "kernels/random.h"
#include "recipes/recipe.h"

namespace loom::recipes {

struct Distributed {
  std::shared_ptr<kernels::Communicator> comm;  // NCCL's when training on a GPU under mpirun
  int rank = 0, world = 1;
  kernels::Device device;  // where this rank trains
  bool root() const { return rank == 0; }
};

// This process's place in the job (one process when not launched by mpirun) and its
// device: the recipe's, checked to exist; "cuda" without an index means cuda:LOCAL_RANK
// when several ranks run, so each rank of a machine takes its own GPU.
Distributed start_distributed(const DeviceConfig& device);

// Runs `body`. With several ranks an error is printed to stderr (naming the rank) and
// ends every rank at once (Communicator::abort): returning would leave the other ranks
// waiting in their next collective. With one rank the error propagates as usual.
template <class F>
auto or_abort_all_ranks(const Distributed& d, F&& body) -> decltype(body());

// A stream that drops everything: the console of ranks other than 0.
std::ostream& null_stream();

// What every rank knows after a step's backward passes (see agree_on_step).
struct StepTotals {
  double loss_sum = 0;       // sum over ranks of (mean loss x target tokens)
  double tokens = 0;         // target tokens over ranks
  bool stop = false;         // SIGINT/SIGTERM reached some rank
  bool out_of_time = false;  // rank 0 says train.max_minutes is over
};

// One all-reduce per update: sums the ranks' losses and tokens, ORs the stop flags, takes
// rank 0's time verdict, and advances every rank's dropout stream past the counters all
// ranks drew this step (`offset_before` is the stream's offset at the step's start), so
// the streams stay in step and a checkpoint of rank 0's stream resumes every rank exactly.
StepTotals agree_on_step(const Distributed& d, double loss_sum, double tokens, bool stop,
                         bool out_of_time, kernels::Generator& dropout, uint64_t offset_before);

// Gives rank r > 0 a dropout stream of its own (a key derived from the shared one and r,
// so ranks do not draw the same masks); rank 0 keeps the key a one-process run uses.
// Call after the stream is created or restored from a checkpoint.
void use_rank_dropout_stream(kernels::Generator& dropout, int rank);

// Rank 0's value of v, on every rank.
double rank0_value(const Distributed& d, double v);

// A resumed run needs the world size it was saved with: each rank's loader position
// indexes batches dealt out over that many ranks.
void check_resume_world_size(int64_t saved, int world, const std::string& checkpoint);

// A line for rank 0's log about the job: ranks, backend, and the stop caveat of Open MPI
// (on SIGTERM, mpirun sends SIGCONT, waits odls_base_sigkill_timeout seconds, default 1,
// sends SIGTERM, waits as long again, then SIGKILL).
std::string distributed_summary(const Distributed& d, size_t buckets);

// ---- implementation of the template ----

void print_rank_error(const Distributed& d, const char* what);

template <class F>
auto or_abort_all_ranks(const Distributed& d, F&& body) -> decltype(body()) {
  if (d.world == 1) return body();
  try {
    return body();
  } catch (const std::exception& e) {
    print_rank_error(d, e.what());
    d.comm->abort(1);
    throw;  // not reached: abort ends the process
  }
}

}  // namespace loom::recipes
