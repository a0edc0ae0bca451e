#include "autograd/autocast.h"

#include "kernels/error.h"

namespace loom::ag {
namespace {
thread_local kernels::DType autocast = kernels::DType::F32;
}  // namespace

kernels::DType autocast_dtype() { return autocast; }

Autocast::Autocast(kernels::DType dtype) : previous_(autocast) {
  LOOM_CHECK(dtype == kernels::DType::BF16 || dtype == kernels::DType::F32, "Autocast: ", dtype,
             ": expected bfloat16 (mixed precision) or float32 (off)");
  autocast = dtype;
}

Autocast::~Autocast() { autocast = previous_; }

}  // namespace loom::ag
