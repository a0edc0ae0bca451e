// The `loom` command line. Library code throws loom::Error; this is the one place that
// prints it and turns it into an exit status.
#include <CLI/CLI.hpp>

#include <iostream>

#include "kernels/error.h"
#include "recipes/demo.h"

int main(int argc, char** argv) {
  CLI::App app{"loom: a small deep-learning training framework"};
  app.require_subcommand(1);

  loom::recipes::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "train a 2-layer MLP on generated spirals");
  demo_cmd->add_option("--steps", demo.steps, "training steps")->capture_default_str();
  demo_cmd->add_option("--hidden", demo.hidden, "hidden units")->capture_default_str();
  demo_cmd->add_option("--batch", demo.batch, "batch size")->capture_default_str();
  demo_cmd->add_option("--lr", demo.lr, "learning rate")->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "random seed")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (demo_cmd->parsed()) loom::recipes::run_demo(demo, std::cout);
  } catch (const loom::Error& e) {
    std::cerr << "loom: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
