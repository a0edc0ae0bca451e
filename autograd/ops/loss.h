// Loss functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "autograd/tensor.h"

namespace loom::ag {

// torch.nn.functional.cross_entropy with class-index targets and label smoothing, except
// that the classes are the LAST dim: logits (..., V), target (...) of int64 or int32
// (PyTorch puts classes at dim 1; this is its usual logits.view(-1, V) call). Per row:
//   loss = (1 - eps) * (lse - x[t]) + eps * (lse - mean_v x[v]),   lse = log(sum_v exp(x[v]))
// Rows whose target is ignore_index give 0 and do not count. reduction: "mean" (over the
// rows that count; NaN when none does, as in PyTorch), "sum", or "none" (losses shaped
// like target). Targets outside [0, V) other than ignore_index are an error.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, std::string_view reduction = "mean");

}  // namespace loom::ag
