#include "recipes/recipe.h"

#include <fstream>
#include <sstream>

#include "kernels/cuda/runtime.h"
#include "recipes/model_config.h"
#include "recipes/toml_reader.h"

namespace loom::recipes {
namespace {

const std::vector<std::string> kSections = {"model", "data", "optim", "train", "device"};

// Applies one "section.key=value" override to the TOML tree.
void apply_override(toml::table& root, const std::string& source, const std::string& text) {
  const size_t eq = text.find('=');
  LOOM_CHECK(eq != std::string::npos && eq > 0, "--set ", text,
             ": expected section.key=value, e.g. --set train.max_steps=100");
  const std::string path = text.substr(0, eq), value = text.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  LOOM_CHECK(parts.size() >= 2, "--set ", text, ": expected section.key=value (", path,
             " has no section)");
  LOOM_CHECK(std::find(kSections.begin(), kSections.end(), parts[0]) != kSections.end(),
             source, ": --set ", path, ": unknown section ", parts[0], "; did you mean ",
             nearest_key(parts[0], kSections), "?");
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::parse("v = \"" + value + "\"");  // a bare word: a string
  }
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!t->contains(parts[i])) t->insert(parts[i], toml::table{});
    t = (*t)[parts[i]].as_table();
    LOOM_CHECK(t != nullptr, "--set ", text, ": ", parts[i], " is not a table");
  }
  t->insert_or_assign(parts.back(), *parsed.get("v"));
}

void read_data(const toml::table& t, const std::string& src, const std::string& arch, DataConfig& d) {
  const TomlReader r(src, t, "data.");
  r.check_keys({"train", "dev", "test", "tokenizer", "max_tokens"});
  r.get("train", d.train);
  r.get("dev", d.dev);
  r.get("test", d.test);
  r.get("tokenizer", d.tokenizer);
  r.get("max_tokens", d.max_tokens);
  const std::pair<const char*, std::vector<std::string>*> splits[] = {
      {"train", &d.train}, {"dev", &d.dev}, {"test", &d.test}};
  for (const auto& [name, files] : splits) {
    // A language model reads one text per split: its lines are both "source" and target.
    if (files->size() == 1 && arch == "decoder") files->push_back(files->front());
    LOOM_CHECK(files->size() == 2, src, ": data.", name, ": expected [source_file, target_file]",
               arch == "decoder" ? " or [text_file]" : " (a one-file text is for model.arch = \"decoder\")");
  }
  LOOM_CHECK(d.max_tokens > 0, src, ": data.max_tokens = ", d.max_tokens, ": must be positive");
}

void read_optim(const toml::table& t, const std::string& src, OptimConfig& o) {
  const TomlReader r(src, t, "optim.");
  r.check_keys({"lr", "beta1", "beta2", "eps", "weight_decay", "decay_embeddings", "schedule",
                "warmup", "min_lr", "clip_norm", "accumulate"});
  r.get("lr", o.lr);
  r.get("beta1", o.beta1);
  r.get("beta2", o.beta2);
  r.get("eps", o.eps);
  r.get("weight_decay", o.weight_decay);
  r.get("decay_embeddings", o.decay_embeddings);
  r.get("schedule", o.schedule);
  r.get("warmup", o.warmup);
  r.get("min_lr", o.min_lr);
  r.get("clip_norm", o.clip_norm);
  r.get("accumulate", o.accumulate);
  LOOM_CHECK(o.schedule == "inverse_sqrt" || o.schedule == "cosine" || o.schedule == "constant",
             src, ": optim.schedule = \"", o.schedule, "\": expected inverse_sqrt, cosine or constant");
  LOOM_CHECK(o.lr > 0, src, ": optim.lr = ", o.lr, ": must be positive");
  LOOM_CHECK(o.accumulate >= 1, src, ": optim.accumulate = ", o.accumulate, ": must be >= 1");
  LOOM_CHECK(o.clip_norm >= 0, src, ": optim.clip_norm = ", o.clip_norm, ": must be >= 0 (0 disables)");
}

void read_train(const toml::table& t, const std::string& src, TrainConfig& c) {
  const TomlReader r(src, t, "train.");
  r.check_keys({"seed", "max_steps", "max_minutes", "log_every", "eval_every", "eval_sentences",
                "samples", "patience", "beam", "threads", "max_bad_steps", "save_every",
                "keep_last", "init_from", "precision"});
  int64_t seed = int64_t(c.seed);
  r.get("seed", seed);
  c.seed = uint64_t(seed);
  r.get("max_steps", c.max_steps);
  r.get("max_minutes", c.max_minutes);
  r.get("log_every", c.log_every);
  r.get("eval_every", c.eval_every);
  r.get("eval_sentences", c.eval_sentences);
  r.get("samples", c.samples);
  r.get("patience", c.patience);
  r.get("beam", c.beam);
  r.get("threads", c.threads);
  r.get("max_bad_steps", c.max_bad_steps);
  r.get("save_every", c.save_every);
  r.get("keep_last", c.keep_last);
  r.get("init_from", c.init_from);
  r.get("precision", c.precision);
  LOOM_CHECK(c.precision == "f32" || c.precision == "tf32" || c.precision == "bf16", src,
             ": train.precision = \"", c.precision, "\": expected \"f32\", \"tf32\" or \"bf16\"");
  LOOM_CHECK(c.max_steps > 0, src, ": train.max_steps = ", c.max_steps, ": must be positive");
  LOOM_CHECK(c.log_every > 0 && c.eval_every > 0, src,
             ": train.log_every and train.eval_every must be positive");
  LOOM_CHECK(c.beam >= 1, src, ": train.beam = ", c.beam, ": must be >= 1");
  LOOM_CHECK(c.save_every >= 0, src, ": train.save_every = ", c.save_every,
             ": must be >= 0 (0: save at each evaluation)");
  LOOM_CHECK(c.keep_last >= 1, src, ": train.keep_last = ", c.keep_last, ": must be >= 1");
}

}  // namespace

Recipe parse_recipe(std::string_view text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  toml::table root = parse_toml(text, source);
  for (const std::string& o : overrides) apply_override(root, source, o);
  const TomlReader top(source, root, "");
  top.check_keys(kSections);
  Recipe r;
  r.source = source;
  if (const toml::table* t = top.subtable("model")) read_model_table(*t, source, r.model);
  if (const toml::table* t = top.subtable("data")) read_data(*t, source, r.model.arch, r.data);
  if (const toml::table* t = top.subtable("optim")) read_optim(*t, source, r.optim);
  if (const toml::table* t = top.subtable("train")) read_train(*t, source, r.train);
  if (const toml::table* t = top.subtable("device")) {
    const TomlReader d(source, *t, "device.");
    d.check_keys({"type"});
    d.get("type", r.device.type);
    try {
      r.device.device();  // the spelling now; whether that GPU exists, when a run starts
    } catch (const Error& e) {
      throw Error(detail::cat(source, ": ", e.what()));
    }
  }
  LOOM_CHECK(r.train.precision == "f32" || r.device.type != "cpu", source, ": train.precision = \"",
             r.train.precision, "\" runs on a GPU (set device.type = \"cuda\"); on the cpu every "
             "product is float32: use train.precision = \"f32\"");
  try {
    r.model.validate();
  } catch (const Error& e) {
    throw Error(detail::cat(source, ": ", e.what()));
  }
  std::ostringstream os;
  os << root;
  r.resolved_toml = os.str();
  return r;
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  LOOM_CHECK(in.good(), path, ": cannot open the recipe file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_recipe(text.str(), path, overrides);
}

kernels::Device DeviceConfig::device() const {
  if (type == "cpu") return kernels::Device::cpu();
  if (type == "cuda") return kernels::Device::cuda(0);
  if (type.rfind("cuda:", 0) == 0 && type.size() > 5 &&
      type.find_first_not_of("0123456789", 5) == std::string::npos)
    return kernels::Device::cuda(std::stoi(type.substr(5)));
  throw Error(detail::cat("device.type = \"", type, "\": expected \"cpu\", \"cuda\" or \"cuda:N\""));
}

kernels::Device DeviceConfig::open() const {
  const kernels::Device d = device();
  if (d.is_cpu()) return d;
  const int n = kernels::cuda::device_count();
  LOOM_CHECK(d.index < n, "device.type = \"", type, "\": ",
             n == 0 ? std::string("no CUDA GPU is visible") : detail::cat("only ", n, " CUDA GPUs are visible"),
             kernels::cuda::available() || LOOM_WITH_CUDA ? "" : " (this loom was built without CUDA)",
             "; use device.type = \"cpu\" or run where the GPU is");
  return d;
}

}  // namespace loom::recipes
