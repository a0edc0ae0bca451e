#include "nn/block_sparse_attention.h"

#include <vector>

#include "autograd/ops.h"
#include "kernels/error.h"

namespace loom::nn {
namespace {

// The key layout of every query block: `global` columns for positions 0 .. global-1, then
// one block of columns per neighbour offset (-1, 0, +1; -1, 0 when causal).
struct BlockLayout {
  int64_t T, block, global, blocks;
  std::vector<int64_t> offsets;
  int64_t keys() const { return global + int64_t(offsets.size()) * block; }
  // Position of column c of query block q (may lie outside [0, T): padding).
  int64_t position(int64_t q, int64_t c) const {
    if (c < global) return c;
    const int64_t m = c - global;
    return (q + offsets[size_t(m / block)]) * block + m % block;
  }
};

// x: (B, N, T, X) -> (B, N, blocks, keys, X): each query block's keys as in the layout
// (positions past T and before 0 are zero rows, hidden by the mask).
Tensor gather_blocks(const Tensor& x, const BlockLayout& l) {
  const int64_t B = x.size(0), N = x.size(1), X = x.size(3), b = l.block, nb = l.blocks;
  const int64_t pad = nb * b - l.T;
  Tensor xp = pad > 0 ? ag::concat({x, ag::zeros({B, N, pad, X}, x.dtype(), x.device())}, 2) : x;
  xp = xp.reshape({B, N, nb, b, X});
  const Tensor zero = ag::zeros({B, N, 1, b, X}, x.dtype(), x.device());
  std::vector<Tensor> parts;
  if (l.global > 0)
    parts.push_back(x.slice(2, 0, l.global).unsqueeze(2).expand({B, N, nb, l.global, X}));
  for (const int64_t off : l.offsets) {
    if (off == 0)
      parts.push_back(xp);
    else if (nb == 1)
      parts.push_back(zero);
    else if (off < 0)
      parts.push_back(ag::concat({zero, xp.slice(2, 0, nb - 1)}, 2));
    else
      parts.push_back(ag::concat({xp.slice(2, 1, nb), zero}, 2));
  }
  return ag::concat(parts, 3);
}

// (blocks, block, keys) 1/0: which gathered keys each query sees. A global key is seen
// through its global column only, never again through a local one.
Tensor pattern_mask(const BlockLayout& l, bool causal) {
  const int64_t n = l.keys();
  std::vector<double> bits(size_t(l.blocks * l.block * n), 0.0);
  for (int64_t q = 0; q < l.blocks; ++q)
    for (int64_t r = 0; r < l.block; ++r) {
      const int64_t i = q * l.block + r;
      if (i >= l.T) continue;
      for (int64_t c = 0; c < n; ++c) {
        const int64_t j = l.position(q, c);
        const bool local_copy_of_global = c >= l.global && j < l.global;
        if (j >= 0 && j < l.T && !local_copy_of_global &&
            block_sparse_visible(i, j, l.block, l.global, causal))
          bits[size_t((q * l.block + r) * n + c)] = 1.0;
      }
    }
  return ag::from_vector(bits, {l.blocks, l.block, n});
}

}  // namespace

Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                              const BlockSparseOptions& o) {
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && k.sizes() == v.sizes() && q.size(0) == k.size(0) &&
                 q.size(2) == k.size(2) && q.size(3) == k.size(3),
             "block_sparse_attention: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(),
             ": expected q (B, H, T, D) and k, v (B, KV, T, D) over the same T positions");
  LOOM_CHECK(o.block >= 1 && o.global >= 0, "block_sparse_attention: block = ", o.block,
             ", global = ", o.global, ": expected block >= 1 and global >= 0");
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  LOOM_CHECK(!o.key_mask.defined() ||
                 (o.key_mask.dim() == 4 && o.key_mask.size(0) == B && o.key_mask.size(1) == 1 &&
                  o.key_mask.size(2) == 1 && o.key_mask.size(3) == T),
             "block_sparse_attention: key_mask ", o.key_mask.sizes(), ": expected (", B, ", 1, 1, ",
             T, ")");
  if (T == 0) return ag::zeros({B, H, 0, D}, q.dtype(), q.device());
  BlockLayout l{T, std::min(o.block, T), std::min(o.global, T), 0, {}};
  l.blocks = (T + l.block - 1) / l.block;
  l.offsets = o.causal ? std::vector<int64_t>{-1, 0} : std::vector<int64_t>{-1, 0, 1};
  const int64_t nb = l.blocks, b = l.block, n = l.keys();
  // Ordinary attention over every key: the whole op when every query sees every key
  // (before it), and the encoder's global queries.
  ag::AttentionOptions all;
  all.mask = o.key_mask;
  all.causal = o.causal;
  all.dropout_p = o.dropout_p;
  all.generator = o.generator;
  if (nb <= 2 || l.global == T) return ag::scaled_dot_product_attention(q, k, v, all);

  // Queries (B, H, nb * b, D) -> (B * nb, H, b, D); keys and values (B * nb, KV, n, D).
  auto per_block = [&](const Tensor& blocked) {  // (B, N, nb, m, X) -> (B * nb, N, m, X)
    return blocked.permute({0, 2, 1, 3, 4})
        .reshape({B * nb, blocked.size(1), blocked.size(3), blocked.size(4)});
  };
  const int64_t pad = nb * b - T;
  const Tensor qp =
      pad > 0 ? ag::concat({q, ag::zeros({B, H, pad, D}, q.dtype(), q.device())}, 2) : q;
  const Tensor qb = per_block(qp.reshape({B, H, nb, b, D}));
  const Tensor kb = per_block(gather_blocks(k, l)), vb = per_block(gather_blocks(v, l));

  // The mask: the pattern times each batch row's real keys, gathered like the keys.
  Tensor seen = pattern_mask(l, o.causal).to(q.dtype()).to(q.device()).view({1, nb, b, n});
  if (o.key_mask.defined()) {
    const Tensor real = gather_blocks(o.key_mask.to(q.dtype()).view({B, 1, T, 1}), l);
    seen = seen * real.view({B, nb, 1, n});
  } else {
    seen = seen.expand({B, nb, b, n});
  }
  ag::AttentionOptions opt;
  opt.mask = ag::gt(seen, ag::zeros({}, q.dtype(), q.device())).view({B * nb, 1, b, n});
  opt.dropout_p = o.dropout_p;
  opt.generator = o.generator;
  const Tensor out = ag::scaled_dot_product_attention(qb, kb, vb, opt)  // (B * nb, H, b, D)
                         .reshape({B, nb, H, b, D})
                         .permute({0, 2, 1, 3, 4})
                         .reshape({B, H, nb * b, D})
                         .slice(2, 0, T);
  if (o.causal || l.global == 0) return out;
  // Global queries (encoder, so `all` is non-causal): every key, over the whole row.
  const Tensor top = ag::scaled_dot_product_attention(q.slice(2, 0, l.global), k, v, all);
  return ag::concat({top, out.slice(2, l.global, T)}, 2);
}

}  // namespace loom::nn
