// Checkpoints: round trip of every part (weights, tokenizer bytes, metadata, AdamW state,
// RNG streams, loader position, metrics); atomic replacement, also when a write fails
// midway; checksums catching flipped bytes; removed datasets named; h5ls reading the
// documented layout; clear errors for files that are not checkpoints or are newer.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/temp_dir.h"
#include "autograd/ops.h"
#include "nn/transformer.h"
#include "recipes/checkpoint.h"
#include "recipes/h5.h"
#include "recipes/inspect.h"
#include "recipes/model_config.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

nn::ModelConfig tiny() {
  nn::ModelConfig c;
  c.vocab = 16, c.d_model = 8, c.heads = 2, c.kv_heads = 1, c.ffn = 12;
  c.encoder_layers = 1, c.decoder_layers = 1;
  return c;
}

TEST_CASE("checkpoint: weights, tokenizer bytes and metadata round-trip exactly") {
  test::TempDir dir("checkpoint");
  const nn::Transformer model(tiny(), 3);
  CheckpointMeta meta;
  meta.step = 42, meta.epoch = 2, meta.tokens_seen = 12345;
  meta.config_toml = model_config_to_toml(tiny());
  const std::string tok("\x01\x00\xffspm", 6);
  const std::string path = (dir.path / "step-42.h5").string();
  save_checkpoint(path, model.state_dict(), tok, meta);
  const Checkpoint c = load_checkpoint(path);
  CHECK(c.meta.step == 42);
  CHECK(c.meta.tokens_seen == 12345);
  CHECK(c.tokenizer_bytes == tok);
  CHECK(c.model_config.kv_heads == 1);
  nn::Transformer other(c.model_config, 9);
  other.load_state_dict(c.model_state);  // strict: same names and shapes
  for (const auto& [name, t] : model.state_dict()) {
    INFO(name);
    const auto it = std::find_if(c.model_state.begin(), c.model_state.end(),
                                 [&](const auto& p) { return p.name == name; });
    REQUIRE(it != c.model_state.end());
    CHECK(it->tensor.to_vector<float>() == t.to_vector<float>());
  }
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("checkpoint: a failed save leaves the previous file intact") {
  test::TempDir dir("checkpoint");
  const nn::Transformer model(tiny(), 3);
  CheckpointMeta meta;
  meta.config_toml = model_config_to_toml(tiny());
  const std::string path = (dir.path / "last.h5").string();
  save_checkpoint(path, model.state_dict(), "tok", meta);
  meta.config_toml = "[model]\nheads = 3\n";  // unreadable config: the read-back check fails
  CHECK_THROWS_AS(save_checkpoint(path, model.state_dict(), "tok", meta), Error);
  CHECK(load_checkpoint(path).meta.config_toml.find("heads = 2") != std::string::npos);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("checkpoint: not a checkpoint, newer format") {
  test::TempDir dir("checkpoint");
  const std::string other = (dir.path / "other.h5").string();
  { h5::File::create(other).set_string_attr("format", "something-else"); }
  CHECK_THROWS_WITH_AS(load_checkpoint(other),
                       (other + ": not a loom checkpoint (no format = \"loom-checkpoint\" attribute at /)").c_str(),
                       Error);
  const std::string newer = (dir.path / "newer.h5").string();
  {
    h5::File f = h5::File::create(newer);
    f.set_string_attr("format", "loom-checkpoint");
    f.set_int_attr("format_version", 99);
  }
  CHECK_THROWS_WITH_AS(load_checkpoint(newer),
                       (newer + ": format_version 99 is newer than this loom reads (1); update loom").c_str(),
                       Error);
}

// A checkpoint with every part: the model's weights plus made-up optimizer moments,
// two RNG streams, a loader position and metrics.
Checkpoint full_checkpoint(const nn::Transformer& model) {
  Checkpoint c;
  c.meta.step = 7, c.meta.epoch = 1, c.meta.tokens_seen = 999;
  c.meta.config_toml = model_config_to_toml(model.config());
  c.model_state = model.state_dict();
  c.tokenizer_bytes = std::string("spm\0bytes", 9);
  TrainingState t;
  t.lr = 2.5e-4;
  kernels::Generator gen(11);
  for (const auto& [name, p] : model.named_parameters())
    t.params.push_back({name, 7, ag::randn(p.sizes(), gen), ag::rand(p.sizes(), gen)});
  t.rng = {{"dropout", 1, 123456789012345ull}, {"noise", ~0ull, 5}};
  t.loader = {3, 2, 17};
  t.metrics = {{"best_dev_bleu", 12.5}, {"window_loss", 1.0 / 3.0}};
  c.training = t;
  return c;
}

TEST_CASE("checkpoint: every part of the training state round-trips exactly") {
  test::TempDir dir("checkpoint-state");
  const nn::Transformer model(tiny(), 3);
  const Checkpoint c = full_checkpoint(model);
  const std::string path = (dir.path / "step-7.h5").string();
  save_checkpoint(path, c);
  CHECK(verify_checkpoint(path).empty());
  const Checkpoint back = load_checkpoint(path, LoadParts::Everything);
  CHECK_FALSE(load_checkpoint(path).training.has_value());  // not read unless asked for
  REQUIRE(back.training.has_value());
  const TrainingState& t = *back.training;
  CHECK(t.optimizer == "adamw");
  CHECK(t.lr == 2.5e-4);
  REQUIRE(t.params.size() == c.training->params.size());
  for (const ParamOptimState& p : c.training->params) {
    INFO(p.name);
    const auto it = std::find_if(t.params.begin(), t.params.end(),
                                 [&](const ParamOptimState& q) { return q.name == p.name; });
    REQUIRE(it != t.params.end());
    CHECK(it->step == 7);
    CHECK(it->exp_avg.to_vector<float>() == p.exp_avg.to_vector<float>());
    CHECK(it->exp_avg_sq.to_vector<float>() == p.exp_avg_sq.to_vector<float>());
  }
  REQUIRE(t.rng.size() == 2);  // sorted by name
  CHECK((t.rng[0].name == "dropout" && t.rng[0].seed == 1 && t.rng[0].offset == 123456789012345ull));
  CHECK((t.rng[1].name == "noise" && t.rng[1].seed == ~0ull && t.rng[1].offset == 5));
  CHECK((t.loader.seed == 3 && t.loader.epoch == 2 && t.loader.cursor == 17));
  CHECK(t.metric("best_dev_bleu") == 12.5);
  CHECK(t.metric("window_loss") == 1.0 / 3.0);
  CHECK(back.tokenizer_bytes == c.tokenizer_bytes);
  CHECK(back.meta.loom_version.size() > 0);
  CHECK(back.meta.format_version == kCheckpointFormatVersion);
  CHECK(test::error_of([&] { t.metric("x"); }) == "checkpoint: /metrics/x is missing");
}

TEST_CASE("checkpoint: a flipped byte inside a dataset is caught by its checksum") {
  test::TempDir dir("checkpoint-flip");
  const nn::Transformer model(tiny(), 3);
  const std::string path = (dir.path / "a.h5").string();
  save_checkpoint(path, full_checkpoint(model));
  for (const std::string name : {"model/embed.weight", "optim/exp_avg_sq/decoder.norm.bias"}) {
    const std::string copy = (dir.path / "b.h5").string();
    fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
    const int64_t offset = h5::File::open(copy).dataset(name).file_offset();
    REQUIRE(offset > 0);
    {
      std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(offset + 5);
      const char b = char(f.get());
      f.seekp(offset + 5);
      f.put(char(b ^ 0x10));
    }
    const std::string e = test::error_of([&] { load_checkpoint(copy, LoadParts::Everything); });
    INFO(e);
    CHECK(e.find(copy + ": /" + name + ": checksum mismatch (stored crc32 ") == 0);
    CHECK(e.find("the file is corrupted; use another checkpoint") != std::string::npos);
    const std::vector<std::string> problems = verify_checkpoint(copy);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == e);
  }
}

TEST_CASE("checkpoint: a removed dataset is named") {
  test::TempDir dir("checkpoint-removed");
  const nn::Transformer model(tiny(), 3);
  const std::string path = (dir.path / "a.h5").string();
  save_checkpoint(path, full_checkpoint(model));
  h5::File::open_rw(path).group("optim/exp_avg").remove("decoder.norm.weight");
  CHECK(test::error_of([&] { load_checkpoint(path, LoadParts::Everything); }) ==
        "h5: " + path + ": /optim/exp_avg/decoder.norm.weight: dataset not found");
  h5::File::open_rw(path).group("model").remove("encoder.norm.bias");
  const Checkpoint c = load_checkpoint(path);
  nn::Transformer other(c.model_config, 1);
  CHECK(test::error_of([&] { other.load_state_dict(c.model_state); }) ==
        "load_state_dict: 1 missing key (encoder.norm.bias), 0 unexpected, 0 wrong-shape");
}

TEST_CASE("checkpoint: a save that fails midway leaves the old file and no temporary") {
  test::TempDir dir("checkpoint-full");
  nn::ModelConfig big = tiny();
  big.vocab = 2000, big.d_model = 32, big.ffn = 64;  // ~0.5 MB of float32
  const nn::Transformer model(big, 3);
  Checkpoint c = full_checkpoint(model);
  const std::string path = (dir.path / "last.h5").string();
  save_checkpoint(path, c);
  const uintmax_t size = fs::file_size(path);
  // A disk that fills up: no write may reach past 64 KiB (EFBIG instead of SIGXFSZ).
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  c.meta.step = 8;
  const std::string e = test::error_of([&] { save_checkpoint(path, c); });
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  INFO(e);
  CHECK(e.find("h5: " + dir.path.string() + "/.tmp-last.h5-") == 0);
  CHECK(fs::file_size(path) == size);
  CHECK(verify_checkpoint(path).empty());
  CHECK(load_checkpoint(path).meta.step == 7);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  CHECK(files == 1);
  // The same process saves again once there is room (the writer runs in-process).
  save_checkpoint(path, c);
  CHECK(load_checkpoint(path).meta.step == 8);
  CHECK(verify_checkpoint(path).empty());
}

TEST_CASE("checkpoint: h5ls lists the documented layout") {
  test::TempDir dir("checkpoint-h5ls");
  const nn::Transformer model(tiny(), 3);
  const std::string path = (dir.path / "a.h5").string();
  save_checkpoint(path, full_checkpoint(model));
  FILE* p = popen(("h5ls -r " + path + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string listing;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) listing.append(buf, n);
  CHECK(pclose(p) == 0);  // h5ls comes with hdf5-tools (scripts/install-deps.sh)
  INFO(listing);
  for (const char* expected :
       {"/model/embed.weight      Dataset {16, 8}", "/model/encoder.layers.0.self_attn.q_proj.weight",
        "/optim/exp_avg/embed.weight Dataset {16, 8}", "/optim/exp_avg_sq/decoder.norm.bias",
        "/optim/step/embed.weight Dataset {SCALAR}", "/rng/rank0/dropout/offset Dataset {SCALAR}",
        "/data/rank0/cursor       Dataset {SCALAR}", "/metrics/best_dev_bleu   Dataset {SCALAR}",
        "/tokenizer/model         Dataset {9}"})
    CHECK(listing.find(expected) != std::string::npos);
}

TEST_CASE("checkpoint: loom inspect summarises and --verify finds a corrupted dataset") {
  test::TempDir dir("checkpoint-inspect");
  const nn::Transformer model(tiny(), 3);
  const std::string path = (dir.path / "a.h5").string();
  save_checkpoint(path, full_checkpoint(model));
  std::ostringstream out;
  CHECK(inspect_command(path, true, out) == 0);
  const std::string text = out.str();
  INFO(text);
  CHECK(text.find("step 7, epoch 2, 999 target tokens seen") != std::string::npos);
  CHECK(text.find("d_model 8, 2 heads (1 kv), ffn 12, 1+1 layers, vocab 16") != std::string::npos);
  CHECK(text.find("training state: adamw (lr 0.00025") != std::string::npos);
  CHECK(text.find("| /model/embed.weight | float32 | [16, 8] | 0.5 |") != std::string::npos);
  CHECK(text.find("verify: all ") != std::string::npos);
  const int64_t offset = h5::File::open(path).dataset("optim/exp_avg/embed.weight").file_offset();
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
    f.put('\x7f');
  }
  std::ostringstream bad;
  CHECK(inspect_command(path, true, bad) == 1);
  CHECK(bad.str().find("verify: 1 problem(s):\n  " + path + ": /optim/exp_avg/embed.weight: checksum mismatch") !=
        std::string::npos);
}

TEST_CASE("checkpoint: crc32 is the standard CRC-32 (zlib, PNG, Python's zlib.crc32)") {
  const std::string check = "123456789";
  CHECK(crc32_of(check.data(), check.size()) == 0xCBF43926u);  // the catalogued check value
  CHECK(crc32_of(nullptr, 0) == 0u);
  std::string big(5 << 20, '\0');  // several of the verifier's 4 MiB pieces
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 31 + (i >> 11));
  const uint32_t whole = crc32_of(big.data(), big.size());
  CHECK(crc32_update(crc32_of(big.data(), 4 << 20), big.data() + (4 << 20), big.size() - (4 << 20)) ==
        whole);
  CHECK(crc32_update(crc32_of(big.data(), 7), big.data() + 7, big.size() - 7) == whole);
}

TEST_CASE("checkpoint: attention variants round-trip (Infini's gates) and inspect names them") {
  test::TempDir dir("checkpoint-variants");
  nn::ModelConfig cfg = tiny();
  cfg.attention.kind = "infini", cfg.attention.segment = 4, cfg.attention.layers = "decoder";
  nn::Transformer model(cfg, 3);
  {
    ag::NoGrad no_grad;
    model.decoder->layers->at<nn::DecoderLayer>(0)->self_attn->gate.fill_(0.25);
  }
  const std::string path = (dir.path / "infini.h5").string();
  save_checkpoint(path, full_checkpoint(model));
  const Checkpoint c = load_checkpoint(path);
  CHECK(c.model_config.attention.kind == "infini");
  CHECK(c.model_config.attention.segment == 4);
  nn::Transformer back(c.model_config, 9);
  back.load_state_dict(c.model_state);  // strict: the gate is there, under its name
  CHECK(back.decoder->layers->at<nn::DecoderLayer>(0)->self_attn->gate.to_vector<float>() ==
        std::vector<float>{0.25f, 0.25f});
  std::ostringstream out;
  CHECK(inspect_command(path, false, out) == 0);
  INFO(out.str());
  CHECK(out.str().find("self-attention infini segment 4 delta rule (decoder)") != std::string::npos);
  CHECK(out.str().find("| /model/decoder.layers.0.self_attn.gate | float32 | [2] |") !=
        std::string::npos);
  cfg.attention = {.kind = "block_sparse", .block = 8, .global = 2};
  const std::string sparse = (dir.path / "sparse.h5").string();
  save_checkpoint(sparse, full_checkpoint(nn::Transformer(cfg, 3)));
  std::ostringstream sparse_out;
  CHECK(inspect_command(sparse, false, sparse_out) == 0);
  CHECK(sparse_out.str().find("self-attention block_sparse block 8 global 2 (both)") !=
        std::string::npos);
}

TEST_CASE("checkpoint: a short-context RoPE model loads into a longer YaRN config unchanged") {
  test::TempDir dir("checkpoint-yarn");
  nn::ModelConfig short_cfg = tiny();
  short_cfg.position = "rope", short_cfg.max_len = 8, short_cfg.rope.original_max_len = 8;
  const nn::Transformer trained(short_cfg, 3);
  const std::string path = (dir.path / "short.h5").string();
  CheckpointMeta meta;
  meta.config_toml = model_config_to_toml(short_cfg);
  save_checkpoint(path, trained.state_dict(), "tok", meta);

  nn::ModelConfig long_cfg = short_cfg;
  long_cfg.max_len = 32, long_cfg.rope.scaling = "yarn", long_cfg.rope.factor = 4;
  nn::Transformer tuned(long_cfg, 99);
  const nn::LoadReport report = tuned.load_state_dict(load_checkpoint(path).model_state);
  CHECK(report.loaded.size() == trained.state_dict().size());
  const ag::NamedTensors before = trained.state_dict(), after = tuned.state_dict();
  for (size_t i = 0; i < before.size(); ++i)
    CHECK(before[i].tensor.to_vector<float>() == after[i].tensor.to_vector<float>());
  tuned.eval();
  ag::NoGrad no_grad;  // inference: nothing left on the tape for the next test case
  std::vector<int64_t> ids(2 * 30);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 4 + int64_t(i % 12);
  const ag::Tensor tokens = ag::from_vector(ids, {2, 30});
  const std::vector<float> logits = tuned.forward(tokens, tokens).to_vector<float>();  // 30 > 8
  REQUIRE(logits.size() == size_t(2 * 30 * 16));
  for (float v : logits) REQUIRE(std::isfinite(v));
}

}  // namespace
}  // namespace loom::recipes
