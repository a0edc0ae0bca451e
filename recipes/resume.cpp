#include "recipes/resume.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "recipes/model_config.h"
#include "recipes/recipe.h"
#include "recipes/toml_reader.h"

namespace loom::recipes {
namespace {

using Flat = std::map<std::string, std::string>;  // "optim.lr" -> "0.0005"

void flatten(const toml::table& t, const std::string& prefix, Flat& out) {
  for (auto&& [key, node] : t) {
    const std::string name = prefix + std::string(key.str());
    if (const toml::table* sub = node.as_table()) {
      flatten(*sub, name + ".", out);
    } else {
      std::ostringstream os;
      node.visit([&](auto&& v) { os << v; });
      out[name] = os.str();
    }
  }
}

Flat flat_of(const std::string& toml_text, const std::string& source) {
  Flat f;
  flatten(parse_toml(toml_text, source), "", f);
  return f;
}

std::vector<ConfigChange> diff(const Flat& before, const Flat& now) {
  std::vector<ConfigChange> changes;
  auto value = [](const Flat& f, const std::string& k) {
    const auto it = f.find(k);
    return it == f.end() ? std::string("(unset)") : it->second;
  };
  Flat keys = before;
  keys.insert(now.begin(), now.end());
  for (const auto& [key, unused] : keys) {
    const std::string b = value(before, key), n = value(now, key);
    if (b != n) changes.push_back({key, b, n});
  }
  return changes;
}

// Model keys that change neither the parameters nor which examples are trained on.
bool is_tunable_model_key(const std::string& key) {
  return key == "model.dropout" || key == "model.label_smoothing";
}

}  // namespace

std::vector<ConfigChange> check_resume_config(const std::string& checkpoint_toml,
                                              const std::string& current_toml,
                                              const std::string& checkpoint_path) {
  const std::string source = checkpoint_path + " (config attribute)";
  const Recipe saved = parse_recipe(checkpoint_toml, source);
  const Recipe now = parse_recipe(current_toml, "the current recipe");

  // Frozen keys, compared on the resolved values (a key left at its default equals the
  // same value written out).
  std::vector<ConfigChange> frozen;
  Flat model_before, model_now;
  flatten(parse_toml(model_config_to_toml(saved.model), source), "", model_before);
  flatten(parse_toml(model_config_to_toml(now.model), "current"), "", model_now);
  for (ConfigChange& c : diff(model_before, model_now))
    if (!is_tunable_model_key(c.key)) frozen.push_back(std::move(c));
  if (saved.data.max_tokens != now.data.max_tokens)
    frozen.push_back({"data.max_tokens", std::to_string(saved.data.max_tokens),
                      std::to_string(now.data.max_tokens)});
  if (saved.train.seed != now.train.seed)
    frozen.push_back({"train.seed", std::to_string(saved.train.seed), std::to_string(now.train.seed)});
  if (!frozen.empty()) {
    std::ostringstream os;
    os << "cannot resume from " << checkpoint_path << ": ";
    for (size_t i = 0; i < frozen.size(); ++i)
      os << (i ? ", " : "") << frozen[i].key << " " << frozen[i].before << " -> " << frozen[i].now;
    os << " (these keys fix the parameters' shapes or the batches and cannot change on resume; "
          "drop the --set / recipe change, or start a new run with --init-from "
       << checkpoint_path << ")";
    throw Error(os.str());
  }
  std::vector<ConfigChange> allowed;
  for (ConfigChange& c : diff(flat_of(checkpoint_toml, source), flat_of(current_toml, "current")))
    if (c.key.rfind("model.", 0) != 0 || is_tunable_model_key(c.key)) allowed.push_back(std::move(c));
  return allowed;
}

std::vector<ConfigChange> config_changes(const std::string& before_toml, const std::string& now_toml) {
  return diff(flat_of(before_toml, "checkpoint config"), flat_of(now_toml, "current config"));
}

TrainingState capture_training_state(const optim::AdamW& adam, const kernels::Generator& dropout,
                                     const data::Batcher& batcher,
                                     std::vector<std::pair<std::string, double>> metrics) {
  TrainingState s;
  s.lr = adam.lr();
  for (const std::string& name : adam.param_names()) {
    if (!adam.has_state(name)) continue;  // never updated: nothing to save
    const optim::AdamW::State& st = adam.state(name);
    s.params.push_back({name, st.step, st.exp_avg, st.exp_avg_sq});
  }
  s.rng.push_back({"dropout", dropout.seed, dropout.offset});
  s.loader = batcher.state();
  s.metrics = std::move(metrics);
  return s;
}

void restore_training_state(const TrainingState& state, const std::string& checkpoint_path,
                            optim::AdamW& adam, kernels::Generator& dropout, data::Batcher& batcher) {
  const std::vector<std::string> names = adam.param_names();
  for (const ParamOptimState& p : state.params) {
    LOOM_CHECK(std::find(names.begin(), names.end(), p.name) != names.end(), checkpoint_path,
               ": /optim/step/", p.name, ": the model has no such parameter");
    adam.set_state(p.name, {p.step, p.exp_avg, p.exp_avg_sq});
  }
  bool have_dropout = false;
  for (const RngStream& r : state.rng) {
    LOOM_CHECK(r.name == "dropout", checkpoint_path, ": /rng/rank0/", r.name,
               ": unknown RNG stream (this loom has: dropout)");
    dropout.seed = r.seed, dropout.offset = r.offset;
    have_dropout = true;
  }
  LOOM_CHECK(have_dropout, checkpoint_path, ": /rng/rank0/dropout is missing");
  batcher.restore(state.loader);
}

std::vector<nlohmann::json> rewind_metrics(const std::string& path, int64_t step) {
  namespace fs = std::filesystem;
  std::vector<nlohmann::json> kept;
  std::ifstream in(path);
  if (!in) return kept;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      if (in.peek() == EOF) break;  // a line cut short by a kill: dropped
      throw Error(detail::cat(path, ":", n, ": not a JSON line; fix or remove the file"));
    }
    if (j.value("step", int64_t(0)) <= step) kept.push_back(std::move(j));
  }
  in.close();
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(tmp);
    for (const nlohmann::json& j : kept) out << j.dump() << "\n";
    LOOM_CHECK(out.good(), tmp, ": cannot write (disk full?)");
  }
  fs::rename(tmp, path);
  return kept;
}

}  // namespace loom::recipes
