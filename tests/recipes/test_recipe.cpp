// Recipe parsing: defaults, overrides, and errors that name the file, key and fix.
#include <doctest/doctest.h>

#include "kernels/cuda/runtime.h"
#include "recipes/commands.h"
#include "recipes/recipe.h"

namespace loom::recipes {
namespace {

const char* kRecipe = R"(
[model]
d_model = 128
heads = 4
kv_heads = 4
ffn = 512
encoder_layers = 2
decoder_layers = 2

[optim]
lr = 7e-4
warmup = 400

[train]
max_steps = 1000
)";

TEST_CASE("recipes: values, defaults and --set overrides") {
  const Recipe r = parse_recipe(kRecipe, "tiny.toml",
                                {"train.max_steps=50", "optim.schedule=cosine",
                                 "model.rope.scaling=\"yarn\"", "data.max_tokens=100"});
  CHECK(r.model.d_model == 128);
  CHECK(r.model.encoder_layers == 2);
  CHECK(r.optim.lr == 7e-4);
  CHECK(r.optim.warmup == 400);
  CHECK(r.optim.schedule == "cosine");  // a bare word is a string
  CHECK(r.model.rope.scaling == "yarn");
  CHECK(r.train.max_steps == 50);
  CHECK(r.data.max_tokens == 100);
  CHECK(r.train.beam == 4);  // default
  CHECK(r.resolved_toml.find("max_steps = 50") != std::string::npos);
}

TEST_CASE("recipes: errors name the file, the key and the nearest valid key") {
  CHECK_THROWS_WITH_AS(parse_recipe("[train]\nmax_step = 5\n", "r.toml"),
                       "r.toml: train.max_step: unknown key; did you mean train.max_steps?", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("[optim]\nlr = \"fast\"\n", "r.toml"),
                       "r.toml: optim.lr: expected a number", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("[trian]\n", "r.toml"),
                       "r.toml: trian: unknown key; did you mean train?", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"train.beem=3"}),
                       "r.toml: train.beem: unknown key; did you mean train.beam?", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"tran.beam=3"}),
                       "r.toml: --set tran.beam: unknown section tran; did you mean train?", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"beam"}),
                       "--set beam: expected section.key=value, e.g. --set train.max_steps=100",
                       Error);
  CHECK_THROWS_WITH_AS(
      parse_recipe("[model]\nheads = 3\n", "r.toml"),
      "r.toml: model.heads = 3: d_model (256) must be a positive multiple of heads", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("[model\n", "r.toml"), doctest::Contains("r.toml:1:"), Error);
  CHECK_THROWS_WITH_AS(load_recipe("/nonexistent/x.toml"),
                       "/nonexistent/x.toml: cannot open the recipe file", Error);
  CHECK_THROWS_WITH_AS(parse_recipe("[device]\ntype = \"gpu\"\n", "r.toml"),
                       "r.toml: device.type = \"gpu\": expected \"cpu\", \"cuda\" or \"cuda:N\"",
                       Error);
}

TEST_CASE("recipes: device.type") {
  CHECK(parse_recipe("", "r.toml").device.device() == kernels::Device::cpu());
  CHECK(parse_recipe("", "r.toml", {"device.type=cuda"}).device.device() ==
        kernels::Device::cuda(0));
  CHECK(parse_recipe("", "r.toml", {"device.type=\"cuda:1\""}).device.device() ==
        kernels::Device::cuda(1));
  CHECK(parse_recipe("", "r.toml").device.open() == kernels::Device::cpu());
  if (!kernels::cuda::available())  // a run asking for a GPU where there is none stops at once
    CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"device.type=cuda"}).device.open(),
                         doctest::Contains("device.type = \"cuda\": no CUDA GPU is visible"),
                         Error);
}

TEST_CASE("recipes: train.precision (f32; tf32 and bf16 on cuda only)") {
  CHECK(parse_recipe("", "r.toml").train.precision == "f32");
  CHECK(parse_recipe("", "r.toml", {"train.precision=bf16", "device.type=cuda"}).train.precision ==
        "bf16");
  CHECK(parse_recipe("", "r.toml", {"train.precision=tf32", "device.type=\"cuda:1\""})
            .train.precision == "tf32");
  CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"train.precision=bf16"}),
                       "r.toml: train.precision = \"bf16\" runs on a GPU (set device.type = "
                       "\"cuda\"); on the cpu every product is float32: use train.precision = "
                       "\"f32\"",
                       Error);
  CHECK_THROWS_WITH_AS(parse_recipe("", "r.toml", {"train.precision=fp16", "device.type=cuda"}),
                       "r.toml: train.precision = \"fp16\": expected \"f32\", \"tf32\" or "
                       "\"bf16\"",
                       Error);
}

TEST_CASE("eval splits: docs-X names the document files, once; SRC,TGT and TEXT as given") {
  DataConfig d;
  d.dev = {"data/bible/dev.en", "data/bible/dev.es"};
  d.test = {"data/bible/test.en", "data/bible/test.es"};
  using Files = std::vector<std::string>;
  CHECK(split_files("test", d) == d.test);
  CHECK(split_files("docs-dev", d) == Files{"data/bible/docs.dev.en", "data/bible/docs.dev.es"});
  CHECK(split_files("docs-test", d) == Files{"data/bible/docs.test.en", "data/bible/docs.test.es"});
  d.test = {"data/bible/docs.test.en", "data/bible/docs.test.es"};  // a document-level recipe
  CHECK(split_files("docs-test", d) == d.test);
  CHECK(split_files("a.en,b.es", d) == Files{"a.en", "b.es"});
  CHECK(split_files("text.es", d) == Files{"text.es", "text.es"});
}

}  // namespace
}  // namespace loom::recipes

namespace loom::recipes {
namespace {

TEST_CASE("recipes: every shipped recipe parses and validates") {
  for (const char* name :
       {"translate-tiny", "translate-small", "translate-base", "translate-rope"}) {
    INFO(name);
    const Recipe r = load_recipe(std::string(LOOM_SOURCE_DIR) + "/recipes/" + name + ".toml");
    CHECK(r.model.is_seq2seq());
  }
  CHECK(load_recipe(std::string(LOOM_SOURCE_DIR) + "/recipes/translate-tiny.toml").model.d_model ==
        128);
  CHECK(load_recipe(std::string(LOOM_SOURCE_DIR) + "/recipes/translate-rope.toml").model.position ==
        "rope");
}

TEST_CASE("recipes: the long-context fine-tunes extend their base models 4x with YaRN") {
  const std::string dir = std::string(LOOM_SOURCE_DIR) + "/recipes/";
  const std::pair<const char*, const char*> pairs[] = {{"translate-rope", "finetune-yarn"},
                                                       {"lm-rope", "lm-finetune-yarn"}};
  for (const auto& [base_name, tune_name] : pairs) {
    INFO(tune_name);
    const Recipe base = load_recipe(dir + base_name + ".toml");
    const Recipe tune = load_recipe(dir + tune_name + ".toml");
    CHECK(tune.train.init_from == std::string("runs/") + base_name + "/checkpoints/best.h5");
    CHECK(tune.model.rope.scaling == "yarn");
    CHECK(tune.model.rope.factor == 4.0);
    CHECK(tune.model.rope.original_max_len == base.model.max_len);
    CHECK(tune.model.max_len == 4 * base.model.max_len);
    // The same parameters: only positions and lengths change.
    CHECK(tune.model.arch == base.model.arch);
    CHECK((tune.model.d_model == base.model.d_model && tune.model.heads == base.model.heads &&
           tune.model.ffn == base.model.ffn &&
           tune.model.decoder_layers == base.model.decoder_layers &&
           tune.model.encoder_layers == base.model.encoder_layers));
  }
  CHECK(load_recipe(dir + "lm-rope.toml").data.train ==
        std::vector<std::string>{"data/bible/train.es", "data/bible/train.es"});
}

}  // namespace
}  // namespace loom::recipes
