#include "nn/embedding.h"

#include <cmath>

#include "autograd/ops.h"

namespace loom::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& init) : Module("Embedding") {
  LOOM_CHECK(num_embeddings > 0 && dim > 0, "Embedding: num_embeddings ", num_embeddings, ", dim ",
             dim, ": both must be positive");
  Tensor w = ag::empty({num_embeddings, dim});
  w.normal_(init, 0.0, 1.0 / std::sqrt(double(dim)));
  weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& ids) const { return ag::embedding(ids, weight); }

}  // namespace loom::nn
