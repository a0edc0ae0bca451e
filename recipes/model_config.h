// The [model] section of a recipe (DESIGN.md "CLI and recipes") <-> nn::ModelConfig.
// Unknown keys and wrong types are errors naming the key, the source and the nearest
// valid key, e.g. `recipes/x.toml: model.d_modle: unknown key; did you mean model.d_model?`.
#pragma once

#include <string>
#include <string_view>

#include "nn/config.h"
#include "recipes/toml_reader.h"

namespace loom::recipes {

// Parses the [model] table (and [model.rope]) of TOML text; `source` names it in errors
// (a file path, or e.g. "checkpoint config"). Keys absent keep ModelConfig's defaults.
nn::ModelConfig parse_model_config(std::string_view toml_text, const std::string& source);

// Reads the keys present in a [model] table into cfg (no validation).
void read_model_table(const toml::table& model, const std::string& source, nn::ModelConfig& cfg);

// The [model] section as TOML text that parse_model_config reads back to the same config.
std::string model_config_to_toml(const nn::ModelConfig& cfg);


}  // namespace loom::recipes
