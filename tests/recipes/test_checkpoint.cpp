// Checkpoints: round trip of weights, tokenizer bytes and metadata; atomic replacement;
// clear errors for files that are not checkpoints or come from a newer format.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/temp_dir.h"
#include "autograd/ops.h"
#include "nn/transformer.h"
#include "recipes/checkpoint.h"
#include "recipes/h5.h"
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

}  // namespace
}  // namespace loom::recipes
