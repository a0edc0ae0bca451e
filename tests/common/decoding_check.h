// Incremental decoding against a full recomputation: feeding target token t to a decoding
// state must give the logits of the last row of forward() on the prefix [0, t].
#pragma once

#include <doctest/doctest.h>

#include "nn/transformer.h"

namespace loom::test {

// Feeds tgt[:, t] (tgt: (B, T) ids) into `state` and checks every logit against the full
// pass on src and tgt[:, 0..t] (relative tolerance 1e-4).
inline void check_decode_step(const nn::Transformer& model, nn::DecoderState& state,
                              const ag::Tensor& src, const ag::Tensor& tgt, int64_t t) {
  const int64_t B = tgt.size(0), V = model.config().vocab;
  const auto full = model.forward(src, tgt.slice(1, 0, t + 1)).to_vector<float>();
  const auto step =
      model.decode_step(state, tgt.slice(1, t, t + 1).contiguous()).to_vector<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t v = 0; v < V; ++v)
      CHECK(step[size_t(b * V + v)] ==
            doctest::Approx(full[size_t((b * (t + 1) + t) * V + v)]).epsilon(1e-4));
}

}  // namespace loom::test
