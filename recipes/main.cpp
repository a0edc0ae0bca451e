// The `loom` command line. Library code throws loom::Error; this is the one place that
// prints it and turns it into an exit status.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "data/bible.h"
#include "kernels/error.h"
#include "kernels/profile.h"
#include "recipes/commands.h"
#include "recipes/demo.h"
#include "recipes/inspect.h"
#include "recipes/recipe.h"
#include "recipes/trainer.h"

int main(int argc, char** argv) {
  using namespace loom;
  CLI::App app{"loom: a small deep-learning training framework"};
  app.require_subcommand(1);

  recipes::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "train a 2-layer MLP on generated spirals");
  demo_cmd->add_option("--steps", demo.steps, "training steps")->capture_default_str();
  demo_cmd->add_option("--hidden", demo.hidden, "hidden units")->capture_default_str();
  demo_cmd->add_option("--batch", demo.batch, "batch size")->capture_default_str();
  demo_cmd->add_option("--lr", demo.lr, "learning rate")->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "random seed")->capture_default_str();

  CLI::App* prepare_cmd = app.add_subcommand("prepare", "build a corpus");
  std::string corpus;
  data::BibleOptions bible;
  prepare_cmd->add_option("corpus", corpus, "corpus name (bible)")->required();
  prepare_cmd->add_option("--out", bible.out_dir, "output folder")->capture_default_str();
  prepare_cmd->add_option("--vocab", bible.vocab, "SentencePiece vocabulary")->capture_default_str();

  CLI::App* train_cmd = app.add_subcommand("train", "train from a recipe");
  std::string recipe_path, out_dir;
  std::vector<std::string> sets;
  train_cmd->add_option("recipe", recipe_path, "recipe TOML file")->required();
  train_cmd->add_option("--set", sets, "section.key=value override (repeatable)");
  train_cmd->add_option("--out", out_dir, "run folder (default runs/<recipe name>)");
  recipes::TrainOptions train_options;
  std::string init_from;
  train_cmd->add_option("--resume", train_options.resume,
                        "auto (newest valid checkpoint of the run folder) or a checkpoint path");
  train_cmd->add_option("--init-from", init_from,
                        "start a new run from this checkpoint's weights (train.init_from)");

  recipes::DecodeOptions decode;
  decode.beam = 4;
  std::string checkpoint;
  CLI::App* translate_cmd = app.add_subcommand("translate", "translate stdin to stdout");
  translate_cmd->add_option("--checkpoint", checkpoint, "checkpoint (.h5)")->required();
  translate_cmd->add_option("--beam", decode.beam, "beam size (1: greedy)")->capture_default_str();
  translate_cmd->add_option("--max-len", decode.max_len, "longest translation in tokens")->capture_default_str();
  translate_cmd->add_option("--length-penalty", decode.length_penalty, "alpha")->capture_default_str();

  CLI::App* eval_cmd = app.add_subcommand("eval", "loss, perplexity, BLEU and chrF of a checkpoint");
  recipes::EvalOptions eval;
  eval.decode.beam = 4;
  eval_cmd->add_option("--checkpoint", checkpoint, "checkpoint (.h5)")->required();
  eval_cmd->add_option("--split", eval.split, "dev, test, docs-dev, docs-test, SRC,TGT or TEXT")
      ->capture_default_str();
  eval_cmd->add_option("--beam", eval.decode.beam, "beam size (1: greedy)")->capture_default_str();
  eval_cmd->add_flag("--json", eval.json, "print one JSON object");
  eval_cmd->add_option("--set", eval.sets, "model.key=value applied at evaluation (e.g. model.rope.scaling=yarn)");
  eval_cmd->add_flag("--context-sweep", eval.context_sweep,
                     "NLL / perplexity (and BLEU) per length bucket and per position block");
  eval_cmd->add_option("--buckets", eval.buckets, "context sweep: bucket upper bounds")
      ->delimiter(',')->capture_default_str();
  eval_cmd->add_option("--block", eval.block, "context sweep: target positions per block")
      ->capture_default_str();
  eval_cmd->add_option("--out", eval.out_prefix, "context sweep: write PREFIX.csv and PREFIX.json");

  CLI::App* inspect_cmd = app.add_subcommand("inspect", "what a checkpoint holds");
  bool verify = false;
  inspect_cmd->add_option("checkpoint", checkpoint, "checkpoint (.h5)")->required();
  inspect_cmd->add_flag("--verify", verify, "read every dataset and check its crc32");

  CLI11_PARSE(app, argc, argv);
  int status = 0;
  try {
    if (demo_cmd->parsed()) recipes::run_demo(demo, std::cout);
    if (prepare_cmd->parsed()) {
      LOOM_CHECK(corpus == "bible", "prepare: unknown corpus \"", corpus, "\"; available: bible");
      data::prepare_bible(bible, std::cout);
    }
    if (train_cmd->parsed()) {
      if (!init_from.empty()) sets.push_back("train.init_from=\"" + init_from + "\"");
      const recipes::Recipe r = recipes::load_recipe(recipe_path, sets);
      if (out_dir.empty()) out_dir = "runs/" + std::filesystem::path(recipe_path).stem().string();
      recipes::train(r, out_dir, std::cout, train_options);
    }
    if (translate_cmd->parsed()) recipes::translate_stream(checkpoint, decode, std::cin, std::cout);
    if (eval_cmd->parsed()) recipes::eval_command(checkpoint, eval, std::cout);
    if (inspect_cmd->parsed()) status = recipes::inspect_command(checkpoint, verify, std::cout);
    if (kernels::profile::enabled())
      std::cerr << "\nLOOM_PROFILE: time in kernels by op kind (whole run)\n\n"
                << kernels::profile::report(1);
  } catch (const loom::Error& e) {
    std::cerr << "loom: error: " << e.what() << "\n";
    return 1;
  }
  return status;
}
