// Mixed precision for a scope, as PyTorch's torch.autocast(device_type="cuda",
// dtype=torch.bfloat16): while an Autocast(BF16) guard lives on this thread, linear()
// on float32 cuda tensors runs its matrix products with bfloat16 operands on the tensor
// cores, accumulating and returning float32. Parameters, gradients, optimizer state and
// every other op (norms, softmax, attention, the loss) stay float32. CPU tensors are not
// affected (bfloat16 products would be no faster there).
#pragma once

#include "kernels/dtype.h"

namespace loom::ag {

// The operand dtype of autocast products in the current scope; F32 when autocast is off.
kernels::DType autocast_dtype();

class Autocast {
 public:
  // BF16 turns autocast on for the scope; F32 turns it off (e.g. for an evaluation
  // inside a mixed-precision training step).
  explicit Autocast(kernels::DType dtype);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  kernels::DType previous_;
};

}  // namespace loom::ag
