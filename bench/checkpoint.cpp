// Checkpoint save / load speed for the small and base translation configs with the full
// training state (weights + AdamW moments + RNG, loader, metrics): median seconds and
// effective MB/s of save_checkpoint (write in the writer process, fsync, read-back
// verification, rename), load_checkpoint(Everything) and verify_checkpoint, plus this
// process's peak-RSS growth while saving (the target: at most one extra copy of the
// parameters). The baseline, measured alternately with the saves in the same run: the disk
// itself, a plain write() of the same number of bytes in 4 MiB pieces, then fsync.
//
//   build/bench/bench_checkpoint [folder on the disk to measure (default: bench-checkpoints)] [reps]
//                                [small|base]   (LOOM_BENCH_KEEP=1 keeps the files)
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "autograd/ops.h"
#include "common.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/param_groups.h"
#include "recipes/checkpoint.h"
#include "recipes/model_config.h"

using namespace loom;

namespace {

double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

// Lets the file system finish with earlier deletions before a timed write. On a disk
// mounted with `discard`, the journal commit that follows a deletion trims the freed blocks,
// and new writes and fsyncs wait for it: up to 70 ms per save here. In training, saves are
// minutes apart and the 5 s journal commit has long finished; the benchmark saves
// back to back, so it syncs first (untimed) to measure the same steady state.
void settle_disk() { ::sync(); }

// Seconds to write `bytes` to a new file in `folder` with write() and fsync it (the disk's
// own durable write speed, the ceiling of a save).
double raw_disk_seconds(const std::string& folder, size_t bytes) {
  const std::string path = folder + "/raw-disk-baseline.bin";
  std::vector<char> buf(size_t(4) << 20, 1);
  settle_disk();
  const double t0 = bench::now_ns();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  LOOM_CHECK(fd >= 0, "bench_checkpoint: cannot create ", path);
  for (size_t done = 0; done < bytes;) {
    const ssize_t n = ::write(fd, buf.data(), std::min(buf.size(), bytes - done));
    LOOM_CHECK(n > 0, "bench_checkpoint: write to ", path, " failed");
    done += size_t(n);
  }
  LOOM_CHECK(::fsync(fd) == 0 && ::close(fd) == 0, "bench_checkpoint: fsync of ", path, " failed");
  const double seconds = (bench::now_ns() - t0) / 1e9;
  std::filesystem::remove(path);
  return seconds;
}

struct Shape {
  const char* name;
  int64_t d_model, heads, ffn, layers;
};

void run(const Shape& s, const std::string& folder, int reps) {
  nn::ModelConfig cfg;
  cfg.vocab = 8000, cfg.d_model = s.d_model, cfg.heads = s.heads, cfg.kv_heads = s.heads;
  cfg.ffn = s.ffn, cfg.encoder_layers = s.layers, cfg.decoder_layers = s.layers;
  nn::Transformer model(cfg, 1, 2);
  optim::AdamW adam(optim::decay_groups(model.named_parameters(), 0.01, false));
  kernels::Generator gen(5);
  int64_t params = 0;
  for (auto& [name, p] : model.named_parameters()) {  // one update creates the moments
    ag::Tensor t = p;
    t.set_grad(ag::randn(p.sizes(), gen));
    params += p.numel();
  }
  adam.step();
  data::BatcherState loader{1, 0, 0};
  recipes::Checkpoint c;
  c.meta.step = 1;
  c.meta.config_toml = recipes::model_config_to_toml(cfg);
  c.model_state = model.state_dict();
  c.tokenizer_bytes = std::string(380000, 'x');  // an 8000-piece SentencePiece model's size
  recipes::TrainingState t;
  for (const std::string& name : adam.param_names()) {
    const auto& st = adam.state(name);
    t.params.push_back({name, st.step, st.exp_avg, st.exp_avg_sq});
  }
  t.rng.push_back({"dropout", 2, 0});
  t.loader = loader;
  t.metrics = {{"best_dev_bleu", 0}};
  c.training = t;

  const std::string path = folder + "/" + s.name + ".h5";
  // Saves first: the high-water mark was raised by building the state, so its growth over
  // the saves is what saving adds (loads hold a full copy of the file, measured after).
  const double rss_before = max_rss_mb();
  std::vector<double> save, load, verify, disk;
  for (int i = 0; i < reps; ++i) {
    // Each save makes a new file, as the trainer's step-N.h5 does: replacing the previous
    // one would add its deletion (~20 ms for 92 MB of page cache) to the rename.
    std::filesystem::remove(path);
    settle_disk();
    const double t0 = bench::now_ns();
    recipes::save_checkpoint(path, c);
    save.push_back((bench::now_ns() - t0) / 1e9);
    disk.push_back(raw_disk_seconds(folder, std::filesystem::file_size(path)));
  }
  const double save_growth = max_rss_mb() - rss_before;
  for (int i = 0; i < reps; ++i) {
    double t0 = bench::now_ns();
    const recipes::Checkpoint back = recipes::load_checkpoint(path, recipes::LoadParts::Everything);
    load.push_back((bench::now_ns() - t0) / 1e9);
    t0 = bench::now_ns();
    const auto problems = recipes::verify_checkpoint(path);
    verify.push_back((bench::now_ns() - t0) / 1e9);
    if (!problems.empty()) std::printf("verify failed: %s\n", problems[0].c_str());
  }
  const double mb = double(std::filesystem::file_size(path)) / 1e6;
  const double param_mb = double(params) * 4 / 1e6;
  std::printf("| %s | %.1f M | %.0f | %.3f | %.0f | %.0f | %.3f | %.0f | %.3f | %.0f | %.0f | %.0f |\n",
              s.name, double(params) / 1e6, mb, bench::median(save), mb / bench::median(save),
              mb / bench::median(disk), bench::median(load), mb / bench::median(load),
              bench::median(verify), mb / bench::median(verify), param_mb, save_growth);
  if (!std::getenv("LOOM_BENCH_KEEP")) std::filesystem::remove(path);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string folder = argc > 1 ? argv[1] : "bench-checkpoints";
  const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  std::filesystem::create_directories(folder);
  bench::print_settings("bench_checkpoint");
  std::printf("folder %s, median of %d; file = weights + AdamW moments (+ tokenizer, RNG, "
              "loader)\n\n", folder.c_str(), reps);
  std::printf("| config | params | file MB | save s | save MB/s | disk write+fsync MB/s | load s "
              "| load MB/s | verify s | verify MB/s | params MB | RSS growth saving MB |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const std::string only = argc > 3 ? argv[3] : "";
  for (const Shape& s : {Shape{"small", 256, 4, 1024, 3}, Shape{"base", 512, 8, 2048, 6}})
    if (only.empty() || only == s.name) run(s, folder, reps);
  return 0;
}
