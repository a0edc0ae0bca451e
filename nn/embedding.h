// Embedding: rows of weight [V, C] looked up by integer ids (torch.nn.Embedding; name
// `weight`). Init as DESIGN.md: normal(0, C^-1/2), the scale that makes
// embed(x) * sqrt(C) unit-variance.
#pragma once

#include <cstdint>

#include "nn/module.h"

namespace loom::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator& init);
  Tensor forward(const Tensor& ids) const;  // ids: (...) int64 -> (..., C)

  Tensor weight;
};

}  // namespace loom::nn
