#include "recipes/checkpoint.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "autograd/ops.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

std::string now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void write_file(const std::string& path, const ag::NamedTensors& model_state,
                const std::string& tokenizer_bytes, const CheckpointMeta& meta) {
  h5::File f = h5::File::create(path);
  f.set_string_attr("format", "loom-checkpoint");
  f.set_int_attr("format_version", kCheckpointFormatVersion);
  f.set_int_attr("step", meta.step);
  f.set_int_attr("epoch", meta.epoch);
  f.set_int_attr("tokens_seen", meta.tokens_seen);
  f.set_string_attr("loom_version", LOOM_VERSION);
  f.set_string_attr("created", now_iso8601());
  f.set_string_attr("config", meta.config_toml);
  h5::Group model = f.create_group("model");
  for (const auto& [name, t] : model_state) model.write_tensor(name, t.to(kernels::DType::F32));
  h5::Group tok = f.create_group("tokenizer");
  tok.write("model", reinterpret_cast<const uint8_t*>(tokenizer_bytes.data()),
            {int64_t(tokenizer_bytes.size())});
  f.flush();
  f.close();
}

}  // namespace

void save_checkpoint(const std::string& path, const ag::NamedTensors& model_state,
                     const std::string& tokenizer_bytes, const CheckpointMeta& meta) {
  const fs::path dest(path);
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOOM_CHECK(!ec, "save_checkpoint: ", dir.string(), ": cannot create the folder: ", ec.message());
  const fs::path tmp = dir / (".tmp-" + dest.filename().string() + "-" + std::to_string(getpid()));
  try {
    ag::NoGrad no_grad;
    write_file(tmp.string(), model_state, tokenizer_bytes, meta);
    const Checkpoint back = load_checkpoint(tmp.string());  // verify before replacing
    LOOM_CHECK(back.model_state.size() == model_state.size(), "save_checkpoint: ", tmp.string(),
               ": read back ", back.model_state.size(), " of ", model_state.size(), " tensors");
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, dest, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(detail::cat("save_checkpoint: cannot rename ", tmp.string(), " to ", path, ": ",
                            ec.message()));
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  const h5::File f = h5::File::open(path);
  LOOM_CHECK(f.has_attr("format") && f.string_attr("format") == "loom-checkpoint", path,
             ": not a loom checkpoint (no format = \"loom-checkpoint\" attribute at /)");
  const int64_t version = f.int_attr("format_version");
  LOOM_CHECK(version <= kCheckpointFormatVersion, path, ": format_version ", version,
             " is newer than this loom reads (", kCheckpointFormatVersion, "); update loom");
  Checkpoint c;
  c.meta.step = f.int_attr("step");
  c.meta.epoch = f.int_attr("epoch");
  c.meta.tokens_seen = f.int_attr("tokens_seen");
  c.meta.config_toml = f.string_attr("config");
  c.model_config = parse_model_config(c.meta.config_toml, path + " (config attribute)");
  const h5::Group model = f.group("model");
  for (const std::string& name : model.children()) c.model_state.push_back({name, model.read_tensor(name)});
  const auto bytes = f.group("tokenizer").read<uint8_t>("model");
  c.tokenizer_bytes.assign(bytes.data.begin(), bytes.data.end());
  return c;
}

}  // namespace loom::recipes
