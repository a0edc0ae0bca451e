// The [model] section of a recipe (DESIGN.md "CLI and recipes") <-> nn::ModelConfig.
// Unknown keys and wrong types are errors naming the key, the source and the nearest
// valid key, e.g. `recipes/x.toml: model.d_modle: unknown key; did you mean model.d_model?`.
#pragma once

#include <string>
#include <string_view>

#include "nn/config.h"

namespace loom::recipes {

// Parses the [model] table (and [model.rope]) of TOML text; `source` names it in errors
// (a file path, or e.g. "checkpoint config"). Keys absent keep ModelConfig's defaults.
nn::ModelConfig parse_model_config(std::string_view toml_text, const std::string& source);

// The [model] section as TOML text that parse_model_config reads back to the same config.
std::string model_config_to_toml(const nn::ModelConfig& cfg);

// The valid key nearest to `key` by edit distance (for "did you mean" hints).
std::string nearest_key(const std::string& key, std::initializer_list<const char*> valid);

}  // namespace loom::recipes
