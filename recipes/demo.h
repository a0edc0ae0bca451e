// `loom demo`: the foundation's end-to-end check that a user can run in seconds. A
// two-layer MLP (2 -> hidden -> 3, ReLU) learns three interleaved spirals generated from a
// seeded RNG, trained with minibatch SGD + momentum through the tape autograd; it prints
// the loss going down and the held-out accuracy. (The translation recipe replaces it as
// the README's main job once the trainer exists, issue 5.)
#pragma once

#include <cstdint>
#include <ostream>

namespace loom::recipes {

struct DemoOptions {
  int steps = 1500;
  int hidden = 64;
  int batch = 64;
  double lr = 0.1;
  double momentum = 0.9;
  uint64_t seed = 1;
  int log_every = 100;
};

struct DemoResult {
  double first_loss = 0, final_loss = 0;  // training loss, mean over the first/last log window
  double test_accuracy = 0;               // on a separately generated held-out set
};

DemoResult run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace loom::recipes
