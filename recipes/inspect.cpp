#include "recipes/inspect.h"

#include <iomanip>

#include "recipes/checkpoint.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::recipes {

int inspect_command(const std::string& path, bool verify, std::ostream& out) {
  const Checkpoint c = load_checkpoint(path);  // checks the model's checksums
  const nn::ModelConfig& m = c.model_config;
  int64_t params = 0;
  for (const auto& p : c.model_state) params += p.tensor.numel();
  out << path << ": loom checkpoint format " << c.meta.format_version << ", written by loom "
      << c.meta.loom_version << " at " << c.meta.created << "\n"
      << "step " << c.meta.step << ", epoch " << c.meta.epoch + 1 << ", " << c.meta.tokens_seen
      << " target tokens seen\n"
      << "model: " << m.arch << ", d_model " << m.d_model << ", " << m.heads << " heads ("
      << m.kv_heads << " kv), ffn " << m.ffn << ", " << m.encoder_layers << "+" << m.decoder_layers
      << " layers, vocab " << m.vocab << ", position " << m.position << " (rope scaling "
      << m.rope.scaling << "), max_len " << m.max_len;
  if (m.attention.kind != "full") out << ", self-attention " << m.attention.describe();
  out << "\n"
      << "parameters: " << params << " in " << c.model_state.size() << " tensors; tokenizer "
      << c.tokenizer_bytes.size() << " bytes\n";

  const h5::File f = h5::File::open(path);
  if (f.exists("optim")) {
    const h5::Group optim = f.group("optim");
    out << "training state: " << optim.string_attr("type") << " (lr " << optim.double_attr("lr")
        << ", " << optim.int_attr("params") << " parameters' moments), RNG streams, loader "
        << "position, metrics: resumable\n";
  } else {
    out << "training state: none (weights only; usable with --init-from, translate, eval)\n";
  }
  out << "\n| dataset | dtype | shape | KiB |\n|---|---|---|---|\n";
  int64_t datasets = 0;
  f.for_each_dataset([&](const h5::Dataset& d) {
    ++datasets;
    const std::vector<int64_t> shape = d.shape();
    int64_t n = 1;
    std::string dims = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
      n *= shape[i];
      dims += (i ? ", " : "") + std::to_string(shape[i]);
    }
    dims += "]";
    const std::string type = d.type_name();
    const int64_t bytes = n * (type == "uint8" ? 1 : type == "float32" ? 4 : 8);
    out << "| " << d.path() << " | " << type << " | " << dims << " | " << std::fixed
        << std::setprecision(1) << double(bytes) / 1024 << std::defaultfloat << " |\n";
  });
  if (!verify) return 0;
  const std::vector<std::string> problems = verify_checkpoint(path);
  if (problems.empty()) {
    out << "\nverify: all " << datasets << " datasets match their crc32\n";
    return 0;
  }
  out << "\nverify: " << problems.size() << " problem(s):\n";
  for (const std::string& p : problems) out << "  " << p << "\n";
  return 1;
}

}  // namespace loom::recipes
