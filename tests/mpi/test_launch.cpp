// Whole jobs under mpirun, started from this (single-process) test as child processes:
// failing ranks end the job with an error within seconds; `mpirun -np 2 loom train`
// trains, saves once on rank 0 with world_size = 2, refuses a resume by one process,
// continues with two, equals one process accumulating the two ranks' batches, and
// stops cleanly on a SIGTERM to mpirun, resuming bit for bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_metrics.h"
#include "common/temp_dir.h"
#include "common/tiny_corpus.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "mpi/child_process.h"
#include "recipes/h5.h"

namespace loom {
namespace {

namespace fs = std::filesystem;
using loom::test::losses;
using Env = std::vector<std::pair<std::string, std::string>>;

// One thread per rank (2 cores); allowed as root in a container.
const Env kEnv = {{"OMP_NUM_THREADS", "1"},
                  {"OMPI_ALLOW_RUN_AS_ROOT", "1"},
                  {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"}};

std::vector<std::string> mpirun(int ranks) {
  return {LOOM_MPIEXEC, "--oversubscribe", "--bind-to", "none", "-np", std::to_string(ranks)};
}

// Concatenation, for argument lists and environments.
template <class T>
std::vector<T> operator+(std::vector<T> a, const std::vector<T>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Runs argv to completion (at most timeout_s), its output in dir/log_name.
test::ChildProcess::Result run(const std::vector<std::string>& argv, const fs::path& dir,
                               const std::string& log_name, double timeout_s = 120,
                               const Env& extra = {}) {
  test::ChildProcess child(argv, kEnv + extra, (dir / log_name).string());
  REQUIRE(child.started());
  return child.wait(timeout_s);
}

const char* kModel =
    "d_model = 16\nheads = 2\nkv_heads = 1\nffn = 32\nencoder_layers = 1\ndecoder_layers = 1\n"
    "dropout = 0.1\nmax_len = 32\n";

std::string recipe_text(const fs::path& dir, int64_t max_steps, int64_t accumulate,
                        int64_t save_every, const std::string& model = kModel,
                        int64_t log_every = 1) {
  std::ostringstream rest;
  rest << "[optim]\nlr = 3e-3\nwarmup = 5\naccumulate = " << accumulate << "\n"
       << "[train]\nmax_steps = " << max_steps << "\nlog_every = " << log_every
       << "\neval_every = 1000\n"
       << "eval_sentences = 2\nsamples = 0\nbeam = 1\nthreads = 1\nsave_every = " << save_every
       << "\n";
  return test::tiny_recipe(dir, model, rest.str());
}

std::vector<std::string> loom_train(const std::string& recipe, const fs::path& out,
                                    const std::vector<std::string>& more = {}) {
  return std::vector<std::string>{LOOM_BINARY, "train", recipe, "--out", out.string()} + more;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Two checkpoints compared dataset by dataset: the largest absolute difference over the
// float32 datasets whose name starts with `prefix` (but does not contain `skip`), where it
// is, and whether all the other datasets are bitwise equal (the first that is not).
struct Comparison {
  double worst = 0;
  std::string worst_at, unequal;
};

Comparison compare_checkpoints(const std::string& a, const std::string& b,
                               const std::string& prefix, const std::string& skip = "") {
  const recipes::h5::File fa = recipes::h5::File::open(a), fb = recipes::h5::File::open(b);
  REQUIRE(fa.datasets() == fb.datasets());
  Comparison c;
  for (const std::string& name : fa.datasets()) {
    const auto da = fa.dataset(name), db = fb.dataset(name);
    REQUIRE(da.type_name() == db.type_name());
    const std::string type = da.type_name();
    if (type == "float32" && name.rfind(prefix, 0) == 0) {
      if (!skip.empty() && name.find(skip) != std::string::npos) continue;
      const auto va = da.read<float>().data, vb = db.read<float>().data;
      for (size_t i = 0; i < va.size(); ++i) {
        const double d = std::abs(double(va[i]) - double(vb[i]));
        if (d <= c.worst) continue;
        c.worst = d;
        c.worst_at = name + "[" + std::to_string(i) + "]";
      }
      continue;
    }
    bool equal = true;
    if (type == "float32") equal = da.read<float>().data == db.read<float>().data;
    if (type == "float64") equal = da.read<double>().data == db.read<double>().data;
    if (type == "int64") equal = da.read<int64_t>().data == db.read<int64_t>().data;
    if (type == "uint8") equal = da.read<uint8_t>().data == db.read<uint8_t>().data;
    if (!equal && c.unequal.empty()) c.unequal = name;
  }
  return c;
}

}  // namespace

TEST_CASE("mpi launch: a rank that throws ends every rank with an error within seconds") {
  const test::TempDir tmp("mpi-throw");
  const auto r = run(mpirun(2) + std::vector<std::string>{LOOM_RANKS_BINARY, "--no-skip",
                                                          "--test-case=failure: rank 1 throws*"},
                     tmp.path, "out.txt", 60);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(!(r.exited && r.exit_code == 0));
  CHECK(r.seconds < 20);
  CHECK(r.output.find("injected failure on rank 1 at step 3") != std::string::npos);
}

TEST_CASE("mpi launch: a rank that stalls makes the others' collective time out") {
  const test::TempDir tmp("mpi-stall");
  const auto r = run(mpirun(2) + std::vector<std::string>{LOOM_RANKS_BINARY, "--no-skip",
                                                          "--test-case=failure: rank 1 stalls*"},
                     tmp.path, "out.txt", 60, {{"LOOM_COLLECTIVE_TIMEOUT", "1"}});
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(!(r.exited && r.exit_code == 0));
  CHECK(r.seconds < 20);  // rank 1 would sleep 60 s
  CHECK(r.output.find("all_reduce_sum: rank 0 of 2 waited 1 s without the other ranks completing "
                      "it") != std::string::npos);
}

TEST_CASE("mpi launch: loom train: one rank failing stops every rank with its message") {
  const test::TempDir tmp("mpi-train-fail");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const std::string good = tmp.write("good.toml", recipe_text(tmp.path, 1000, 1, 1000));
  // Rank 1 (the second program of the launch) reads a dev set that does not exist.
  std::string text = recipe_text(tmp.path, 1000, 1, 1000);
  const std::string dev = (tmp.path / "dev.en").string();
  text.replace(text.find(dev), dev.size(), (tmp.path / "missing.en").string());
  const std::string bad = tmp.write("bad.toml", text);
  const fs::path out = tmp.path / "run";
  const auto r = run(mpirun(1) + loom_train(good, out) + std::vector<std::string>{":", "-np", "1"} +
                         loom_train(bad, out),
                     tmp.path, "out.txt", 60);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(!(r.exited && r.exit_code == 0));
  CHECK(r.seconds < 30);
  CHECK(r.output.find("loom: error: rank 1 of 2: ") != std::string::npos);
  CHECK(r.output.find("missing.en") != std::string::npos);
  CHECK(r.output.find("done:") == std::string::npos);  // rank 0 did not train on alone
}

TEST_CASE(
    "mpi launch: loom train on 2 ranks saves one checkpoint (world_size 2) that 1 rank may not "
    "resume") {
  const test::TempDir tmp("mpi-train");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  const std::string recipe = tmp.write("r.toml", recipe_text(tmp.path, 4, 1, 4));
  const fs::path out = tmp.path / "run";
  const auto first = run(mpirun(2) + loom_train(recipe, out), tmp.path, "first.txt");
  INFO(first.output);
  REQUIRE(first.exited);
  REQUIRE(first.exit_code == 0);
  CHECK(count(first.output, "data parallel: 2 ranks (mpi, cpu)") == 1);  // rank 0 alone prints
  CHECK(count(first.output, "done: 4 steps") == 1);
  CHECK(files_in(out / "checkpoints") ==
        std::vector<std::string>{"best.h5", "last.h5", "step-4.h5"});
  CHECK(recipes::h5::File::open((out / "checkpoints/last.h5").string()).int_attr("world_size") ==
        2);
  CHECK(losses(out).size() == 4);  // one record per step: rank 0's
  std::ifstream metrics(out / "metrics.jsonl");
  std::string record;
  std::getline(metrics, record);
  CHECK(nlohmann::json::parse(record)["allreduce_wait_s"].get<double>() >= 0);

  const auto refused =
      run(mpirun(1) + loom_train(recipe, out, {"--resume", "auto", "--set", "train.max_steps=6"}),
          tmp.path, "refused.txt");
  INFO(refused.output);
  CHECK(refused.exited);
  CHECK(refused.exit_code == 1);
  const std::string ckpt = (out / "checkpoints/step-4.h5").string();
  CHECK(refused.output.find("loom: error: cannot resume from " + ckpt +
                            ": it was saved by a run "
                            "of 2 ranks and this run has 1 rank; the loader position counts "
                            "batches dealt out over 2 ranks. Resume with mpirun -np 2, or start "
                            "a new run from its weights with --init-from " +
                            ckpt) != std::string::npos);

  const auto resumed =
      run(mpirun(2) + loom_train(recipe, out, {"--resume", "auto", "--set", "train.max_steps=6"}),
          tmp.path, "resumed.txt");
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(resumed.output.find("resumed from " + ckpt + ": step 4") != std::string::npos);
  CHECK(recipes::h5::File::open((out / "checkpoints/last.h5").string()).int_attr("step") == 6);
  CHECK(losses(out).size() == 6);
}

TEST_CASE("mpi launch: loom train on 2 ranks equals 1 process accumulating both ranks' batches") {
  const test::TempDir tmp("mpi-equal");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  // Rank r takes batches r, r + 2, ... of the epoch's list; one process with accumulate = 2
  // takes them two by two, the same pairs, when the list is not re-split for 2 ranks
  // (an even count): pick such a max_tokens.
  const data::Tokenizer tok = data::Tokenizer::load((tmp.path / "spm.model").string());
  const data::Corpus corpus = data::load_corpus(
      (tmp.path / "train.en").string(), (tmp.path / "train.es").string(),
      [&](std::string_view s) { return tok.encode(s); }, 32, data::LengthPolicy::Skip);
  int64_t max_tokens = 600;
  while (data::Batcher(corpus.examples, {.max_tokens = max_tokens}).steps_per_epoch() % 2 != 0)
    --max_tokens;
  const std::string model =
      "d_model = 16\nheads = 2\nkv_heads = 1\nffn = 32\nencoder_layers = 1\ndecoder_layers = 1\n"
      "dropout = 0.0\nmax_len = 32\n";
  const std::vector<std::string> sets = {"--set", "data.max_tokens=" + std::to_string(max_tokens)};
  const std::string two = tmp.write("two.toml", recipe_text(tmp.path, 8, 1, 8, model));
  const std::string one = tmp.write("one.toml", recipe_text(tmp.path, 8, 2, 8, model));
  const auto a = run(mpirun(2) + loom_train(two, tmp.path / "two", sets), tmp.path, "two.txt");
  const auto b = run(loom_train(one, tmp.path / "one", sets), tmp.path, "one.txt");
  INFO(a.output, b.output);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  // Float32 sums in another order (the all-reduce vs accumulation into .grad) differ in
  // the last bits; through 8 AdamW steps that stays below 1e-5. Except the key biases:
  // softmax ignores a shift shared by a row's scores, so their true gradient is 0 and
  // what backward computes is rounding noise, which AdamW (scale-free) turns into steps
  // of about lr, different for any other summation order.
  const Comparison c =
      compare_checkpoints((tmp.path / "two/checkpoints/last.h5").string(),
                          (tmp.path / "one/checkpoints/last.h5").string(), "model/", "k_proj.bias");
  INFO("largest difference at ", c.worst_at);
  CHECK(c.worst < 1e-5);
  const auto la = losses(tmp.path / "two"), lb = losses(tmp.path / "one");
  REQUIRE(la.size() == 8);
  REQUIRE(lb.size() == 8);
  for (size_t i = 0; i < la.size(); ++i)
    CHECK(std::abs(la[i].second - lb[i].second) < 1e-5 * lb[i].second);
  CHECK(recipes::h5::File::open((tmp.path / "two/checkpoints/last.h5").string())
            .int_attr("tokens_seen") ==
        recipes::h5::File::open((tmp.path / "one/checkpoints/last.h5").string())
            .int_attr("tokens_seen"));
}

TEST_CASE("mpi launch: SIGTERM to mpirun saves once on rank 0, stops every rank, resumes bitwise") {
  const test::TempDir tmp("mpi-sigterm");
  test::make_tiny_corpus(tmp.path, 200, 4, 4);
  // Open MPI's mpirun passes the SIGTERM on to the ranks after odls_base_sigkill_timeout
  // (1 s) and kills them 1 s later: the ranks must still be training then (n steps take
  // several seconds: 600 steps took 1.5 s once dropout and the loss got faster), and finish
  // the step and the save within that second.
  const int64_t n = 2000;
  const std::string recipe = tmp.write("r.toml", recipe_text(tmp.path, n, 1, 1000, kModel, 20));
  const fs::path out = tmp.path / "killed";
  test::ChildProcess job(mpirun(2) + loom_train(recipe, out), kEnv,
                         (tmp.path / "killed.txt").string());
  REQUIRE(job.started());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (losses(out).empty()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(::kill(job.pid(), SIGTERM) == 0);
  const auto r = job.wait(60);
  INFO(r.output);
  CHECK(!r.timed_out);
  CHECK(r.seconds < 30);
  CHECK(count(r.output, "SIGTERM: saved step ") == 1);
  CHECK(r.output.find("MPI_ABORT") == std::string::npos);
  CHECK(r.output.find("done:") == std::string::npos);
  const int64_t stopped_at =
      recipes::h5::File::open((out / "checkpoints/last.h5").string()).int_attr("step");
  INFO("stopped at step ", stopped_at);
  REQUIRE(stopped_at < n);

  // Resumed to n, it equals a straight run bit for bit: the weights, AdamW's moments and
  // rank 0's dropout stream, which every rank's stream follows.
  const auto resumed =
      run(mpirun(2) + loom_train(recipe, out, {"--resume", "auto"}), tmp.path, "resumed.txt");
  const auto straight =
      run(mpirun(2) + loom_train(recipe, tmp.path / "straight"), tmp.path, "straight.txt");
  INFO(resumed.output, straight.output);
  REQUIRE(resumed.exit_code == 0);
  REQUIRE(straight.exit_code == 0);
  const Comparison c = compare_checkpoints((tmp.path / "straight/checkpoints/last.h5").string(),
                                           (out / "checkpoints/last.h5").string(), "");
  INFO("largest difference at ", c.worst_at);
  CHECK(c.worst == 0);
  CHECK(c.unequal == "");
  CHECK(losses(tmp.path / "straight") == losses(out));
}

}  // namespace loom
