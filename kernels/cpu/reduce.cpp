// Sum and max over any axes. Two loop orders:
//  - the last axis is kept and unit-stride (e.g. a bias gradient, [N, C] -> [1, C]): walk
//    x row by row and add each row into the matching output row; threads split columns;
//  - otherwise: one output element at a time, looping over its reduced sub-block;
//    threads split output elements.
// Both give results independent of the thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/pointwise.h"
#include "kernels/reduce.h"

namespace loom::kernels::cpu {
namespace {

template <class Acc> struct SumOp {
  static Acc init() { return Acc(0); }
  static Acc apply(Acc acc, Acc v) { return acc + v; }
};
template <class Acc> struct MaxOp {
  static Acc init() { return -std::numeric_limits<Acc>::infinity(); }
  static Acc apply(Acc acc, Acc v) { return (v > acc || std::isnan(v)) ? v : acc; }
};

// Odometer over `sizes`, yielding the element offset under `strides`.
struct Odometer {
  Dims sizes, strides;
  int64_t idx[Dims::kMax] = {};
  int64_t offset = 0;
  void next() {
    for (int d = sizes.size() - 1; d >= 0; --d) {
      offset += strides[d];
      if (++idx[d] < sizes[d]) return;
      offset -= strides[d] * sizes[d];
      idx[d] = 0;
    }
  }
};

template <class T, class Acc, template <class> class Op>
void reduce_rows(T* out, int64_t out_numel, const T* x, const TensorRef& xr,
                 const Dims& out_strides) {
  // Rows: every dim but the last. Output row offset follows kept dims only.
  const int nd = xr.dim();
  const int64_t L = xr.sizes[nd - 1];
  Dims row_sizes(xr.sizes.begin(), xr.sizes.end() - 1);
  Dims x_row_strides(xr.strides.begin(), xr.strides.end() - 1);
  Dims o_row_strides(out_strides.begin(), out_strides.end() - 1);
  const int64_t rows = row_sizes.numel();
  std::vector<Acc> acc(size_t(out_numel), Op<Acc>::init());
  parallel_for(L, rows, [&](int64_t c0, int64_t c1) {
    Odometer xo{row_sizes, x_row_strides}, oo{row_sizes, o_row_strides};
    for (int64_t r = 0; r < rows; ++r) {
      const T* xrow = x + xo.offset;
      Acc* arow = acc.data() + oo.offset;
      for (int64_t c = c0; c < c1; ++c) arow[c] = Op<Acc>::apply(arow[c], Acc(xrow[c]));
      xo.next();
      oo.next();
    }
  });
  for (size_t i = 0; i < acc.size(); ++i) out[i] = T(acc[i]);
}

template <class T, class Acc, template <class> class Op>
void reduce_blocks(T* out, const T* x, const TensorRef& xr, const Dims& reduced_mask) {
  Dims kept_sizes, kept_strides, red_sizes, red_strides;
  for (int d = 0; d < xr.dim(); ++d) {
    if (reduced_mask[d]) {
      red_sizes.push_back(xr.sizes[d]);
      red_strides.push_back(xr.strides[d]);
    } else {
      kept_sizes.push_back(xr.sizes[d]);
      kept_strides.push_back(xr.strides[d]);
    }
  }
  const int64_t M = kept_sizes.numel(), N = red_sizes.numel();
  parallel_for(M, N, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      int64_t base = 0, rem = m;
      for (int d = kept_sizes.size() - 1; d >= 0; --d) {
        base += (rem % kept_sizes[d]) * kept_strides[d];
        rem /= kept_sizes[d];
      }
      Acc acc = Op<Acc>::init();
      Odometer ro{red_sizes, red_strides};
      for (int64_t n = 0; n < N; ++n) {
        acc = Op<Acc>::apply(acc, Acc(x[base + ro.offset]));
        ro.next();
      }
      out[m] = T(acc);
    }
  });
}

}  // namespace

void reduce(TensorRef out, TensorRef x, ReduceOp op) {
  LOOM_ASSERT(out.dim() == x.dim() && out.dtype == x.dtype && out.is_contiguous());
  Dims reduced_mask, out_strides = contiguous_strides(out.sizes);
  for (int d = 0; d < x.dim(); ++d) {
    LOOM_ASSERT(out.sizes[d] == x.sizes[d] || out.sizes[d] == 1);
    reduced_mask.push_back(out.sizes[d] != x.sizes[d] ? 1 : 0);
    if (out.sizes[d] == 1) out_strides[d] = 0;
  }
  if (x.numel() == 0) {
    LOOM_CHECK(op == ReduceOp::Sum || out.numel() == 0,
               "max: ", x.sizes, ": cannot take the max of an empty tensor");
    cpu::fill(out, 0.0);
    return;
  }
  const bool rows = x.dim() > 0 && !reduced_mask[x.dim() - 1] && x.strides[x.dim() - 1] == 1 &&
                    x.sizes[x.dim() - 1] >= 8;
  dispatch_floating(x.dtype, op == ReduceOp::Sum ? "sum" : "max", [&]<class T>() {
    using Acc = double;
    const T* xp = x.ptr<T>();
    T* op_ = out.ptr<T>();
    if (op == ReduceOp::Sum) {
      if (rows) reduce_rows<T, Acc, SumOp>(op_, out.numel(), xp, x, out_strides);
      else reduce_blocks<T, Acc, SumOp>(op_, xp, x, reduced_mask);
    } else {
      if (rows) reduce_rows<T, Acc, MaxOp>(op_, out.numel(), xp, x, out_strides);
      else reduce_blocks<T, Acc, MaxOp>(op_, xp, x, reduced_mask);
    }
  });
}

double sum_of_squares(std::span<const TensorRef> xs) {
  profile::Scope scope(profile::Kind::Reduce);
  constexpr int64_t kChunk = 16384;
  struct Chunk {
    const TensorRef* x;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (const TensorRef& x : xs) {
    LOOM_ASSERT(x.device.is_cpu() && x.is_contiguous());
    for (int64_t b = 0; b < x.numel(); b += kChunk)
      chunks.push_back({&x, b, std::min(x.numel(), b + kChunk)});
  }
  std::vector<double> partial(chunks.size());
  parallel_for(int64_t(chunks.size()), 2 * kChunk, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const Chunk& k = chunks[size_t(c)];
      dispatch_floating(k.x->dtype, "sum_of_squares", [&]<class T>() {
        const T* p = k.x->ptr<const T>() + k.begin;
        partial[size_t(c)] = lane_sum(k.end - k.begin, [&](int64_t j) {
          const double v = double(p[j]);
          return v * v;
        });
      });
    }
  });
  double sum = 0;
  for (const double v : partial) sum += v;
  return sum;
}

}  // namespace loom::kernels::cpu
