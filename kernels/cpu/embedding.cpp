// Embedding gather and scatter-add on the CPU (see kernels/embedding.h).
//
// The ids are read once, serially, into a flat int64 list and range-checked there, so an
// error is thrown before any thread starts. The gather splits output rows across threads.
// The scatter-add splits the C columns into blocks of whole cache lines: each thread owns
// some columns of every weight row, so no two threads ever add into the same element (no
// atomics, no races), and each element sums its rows in order of i (deterministic).
#include "kernels/embedding.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/common.h"

namespace loom::kernels::cpu {
namespace {

// ids in row-major order, each checked against [0, V).
std::vector<int64_t> read_ids(const TensorRef& ids, const TensorRef& weight) {
  const int64_t V = weight.sizes[0], n = ids.numel();
  std::vector<int64_t> flat(size_t(std::max<int64_t>(n, 0)));
  int64_t idx[Dims::kMax] = {};
  auto read = [&]<class I>(const I* p) {
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (int d = 0; d < ids.dim(); ++d) off += idx[d] * ids.strides[d];
      const int64_t id = int64_t(p[off]);
      if (id < 0 || id >= V) {
        Dims position(idx, idx + ids.dim());
        throw Error(detail::cat("embedding: ids ", ids.sizes, ", weight ", weight.sizes, ": id ",
                                id, " at position ", position, " is out of range [0, ", V, ")"));
      }
      flat[size_t(i)] = id;
      for (int d = ids.dim() - 1; d >= 0 && ++idx[d] == ids.sizes[d]; --d) idx[d] = 0;
    }
  };
  if (ids.dtype == DType::I64)
    read(ids.ptr<int64_t>());
  else if (ids.dtype == DType::I32)
    read(ids.ptr<int32_t>());
  else
    LOOM_UNREACHABLE("embedding: ids must be int32 or int64");
  return flat;
}

}  // namespace

void embedding_forward(TensorRef out, TensorRef ids, TensorRef weight) {
  LOOM_ASSERT(out.dim() == 2 && weight.dim() == 2 && out.dtype == weight.dtype);
  LOOM_ASSERT(out.sizes[0] == ids.numel() && out.sizes[1] == weight.sizes[1]);
  const std::vector<int64_t> rows = read_ids(ids, weight);
  const int64_t C = weight.sizes[1];
  dispatch_floating(weight.dtype, "embedding", [&]<class T>() {
    const T* w = weight.ptr<T>();
    T* o = out.ptr<T>();
    const int64_t ws0 = weight.strides[0], ws1 = weight.strides[1];
    const int64_t os0 = out.strides[0], os1 = out.strides[1];
    parallel_for(int64_t(rows.size()), C, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const T* src = w + rows[size_t(i)] * ws0;
        T* dst = o + i * os0;
        if (ws1 == 1 && os1 == 1)
          std::copy(src, src + C, dst);
        else
          for (int64_t c = 0; c < C; ++c) dst[c * os1] = src[c * ws1];
      }
    });
  });
}

void embedding_backward(TensorRef grad_weight, TensorRef grad_out, TensorRef ids) {
  LOOM_ASSERT(grad_weight.dim() == 2 && grad_out.dim() == 2);
  LOOM_ASSERT(grad_out.sizes[0] == ids.numel() && grad_out.sizes[1] == grad_weight.sizes[1]);
  LOOM_ASSERT(grad_out.dtype == grad_weight.dtype);
  const std::vector<int64_t> rows = read_ids(ids, grad_weight);
  const int64_t N = grad_out.sizes[0], C = grad_out.sizes[1];
  constexpr int64_t kBlock = 16;  // columns per block: one 64-byte line of float
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  dispatch_floating(grad_weight.dtype, "embedding backward", [&]<class T>() {
    T* gw = grad_weight.ptr<T>();
    const T* g = grad_out.ptr<T>();
    const int64_t ws0 = grad_weight.strides[0], ws1 = grad_weight.strides[1];
    const int64_t gs0 = grad_out.strides[0], gs1 = grad_out.strides[1];
    parallel_for(blocks, N * kBlock, [&](int64_t b0, int64_t b1) {
      const int64_t c0 = b0 * kBlock, c1 = std::min(C, b1 * kBlock);
      for (int64_t i = 0; i < N; ++i) {
        T* dst = gw + rows[size_t(i)] * ws0;
        const T* src = g + i * gs0;
        if (ws1 == 1 && gs1 == 1)
          for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
        else
          for (int64_t c = c0; c < c1; ++c) dst[c * ws1] += src[c * gs1];
      }
    });
  });
}

}  // namespace loom::kernels::cpu
