// The demo trains for real: the loss falls and the held-out accuracy is high.
#include <doctest/doctest.h>

#include <sstream>

#include "recipes/demo.h"

namespace loom::recipes {
namespace {

TEST_CASE("demo: the MLP learns the spirals") {
  DemoOptions opt;
  opt.steps = 600;
  std::ostringstream log;
  const DemoResult r = run_demo(opt, log);
  INFO(log.str());
  CHECK(r.final_loss < 0.5 * r.first_loss);
  CHECK(r.test_accuracy > 0.9);
}

}  // namespace
}  // namespace loom::recipes
