// Block-sparse attention (the local and global parts of BigBird, Zaheer et al. 2020,
// arXiv 2007.14062; its random blocks are left out). Positions fall in blocks of `block`;
// query i (block i / block) sees key j when
//   j < global                                  (global keys: seen by every query),
//   i < global, non-causal only                 (global queries: see every key),
//   |j / block - i / block| <= 1                (its block and one on each side),
// and, when causal, only j <= i (so the block after is never seen). Each block of queries
// attends to at most global + 3 * block keys: the work and memory grow linearly in T, no
// (T, T) score matrix is formed. A block >= T, or global >= T, is full attention.
//
// Computed as a composite of tested ops: the keys of every query block are gathered into
// (B * blocks, KV, global + 3 * block, D) and one fused scaled_dot_product_attention call
// runs over all blocks with a (block, keys) mask per block; the global queries of the
// encoder are a second, (global, T), call. With at most two blocks (or global >= T) every
// query sees every key (before it), and the op is one full attention call.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"

namespace loom::nn {

using ag::Tensor;

struct BlockSparseOptions {
  int64_t block = 64;  // positions per block, >= 1
  int64_t global = 0;  // leading global positions, >= 0
  bool causal = false;
  Tensor key_mask;  // optional (B, 1, 1, T) bool, true = a real key
  double dropout_p = 0.0;
  ag::Generator* generator = nullptr;  // required when dropout_p > 0
};

// Whether query position i sees key position j under the pattern above.
inline bool block_sparse_visible(int64_t i, int64_t j, int64_t block, int64_t global, bool causal) {
  if (causal && j > i) return false;
  if (j < global || (!causal && i < global)) return true;
  const int64_t d = j / block - i / block;
  return d >= -1 && d <= 1;
}

// q: (B, H, T, D); k, v: (B, KV, T, D), H % KV == 0; queries and keys are the same
// positions 0 .. T-1. Returns (B, H, T, D).
Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                              const BlockSparseOptions& options);

}  // namespace loom::nn
