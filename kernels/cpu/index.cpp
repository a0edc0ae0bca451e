// index_select gather and scatter-add on the CPU (see kernels/index.h).
//
// Both view a tensor as K (or n) slices along `dim`, each slice the tensor with `dim`
// removed. The indices are read once, serially, and range-checked before any thread
// starts. The gather splits output slices across threads. The scatter-add groups the k
// by destination slice (counting sort, k ascending within a group) and splits the
// destination slices across threads: no two threads add into the same element, and
// each element sums its contributions in order of k.
#include "kernels/index.h"

#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/scatter_order.h"

namespace loom::kernels::cpu {
namespace {

// index in order, each checked against [0, n).
std::vector<int64_t> read_index(const TensorRef& index, const TensorRef& x, int dim) {
  const int64_t n = x.sizes[dim], K = index.numel(), s = index.strides[0];
  std::vector<int64_t> flat(static_cast<size_t>(K));
  auto read = [&]<class I>(const I* p) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t v = int64_t(p[k * s]);
      if (v < 0 || v >= n)
        throw Error(detail::cat("index_select: x ", x.sizes, ", dim ", dim, ", index [", K,
                                "]: index ", v, " at position ", k, " is out of range for size ",
                                n));
      flat[size_t(k)] = v;
    }
  };
  if (index.dtype == DType::I64)
    read(index.ptr<int64_t>());
  else if (index.dtype == DType::I32)
    read(index.ptr<int32_t>());
  else
    LOOM_UNREACHABLE("index_select: index must be int32 or int64");
  return flat;
}

// A tensor seen as slices along `dim`: sizes/strides without `dim`, and the stride of dim.
struct Slices {
  Dims sizes, dst_strides, src_strides;
  int64_t dst_step, src_step;
};

Slices slices(const TensorRef& dst, const TensorRef& src, int dim) {
  Slices s;
  for (int d = 0; d < dst.dim(); ++d) {
    if (d == dim) continue;
    s.sizes.push_back(dst.sizes[d]);
    s.dst_strides.push_back(dst.strides[d]);
    s.src_strides.push_back(src.strides[d]);
  }
  s.dst_step = dst.strides[dim];
  s.src_step = src.strides[dim];
  return s;
}

// f(dst_element, src_element) over one slice pair, serially, in row-major order.
template <class T, class U, class F>
void for_each_pair(const Slices& s, T* dst, const U* src, F&& f) {
  const int nd = s.sizes.size();
  if (s.sizes.numel() == 0) return;
  if (nd == 0) return f(*dst, *src);
  const int64_t len = s.sizes[nd - 1], ds = s.dst_strides[nd - 1], ss = s.src_strides[nd - 1];
  const int64_t rows = s.sizes.numel() / len;
  int64_t idx[Dims::kMax] = {};
  for (int64_t r = 0; r < rows; ++r) {
    int64_t doff = 0, soff = 0;
    for (int d = 0; d < nd - 1; ++d)
      doff += idx[d] * s.dst_strides[d], soff += idx[d] * s.src_strides[d];
    for (int64_t i = 0; i < len; ++i) f(dst[doff + i * ds], src[soff + i * ss]);
    for (int d = nd - 2; d >= 0 && ++idx[d] == s.sizes[d]; --d) idx[d] = 0;
  }
}

}  // namespace

void index_select_forward(TensorRef out, TensorRef x, int dim, TensorRef index) {
  LOOM_ASSERT(out.dim() == x.dim() && dim >= 0 && dim < x.dim() && out.dtype == x.dtype);
  LOOM_ASSERT(index.dim() == 1 && out.sizes[dim] == index.numel());
  const std::vector<int64_t> rows = read_index(index, x, dim);
  const Slices s = slices(out, x, dim);
  const int64_t per_slice = s.sizes.numel();
  dispatch_all(x.dtype, "index_select", [&]<class T>() {
    T* o = out.ptr<T>();
    const T* src = x.ptr<T>();
    parallel_for(int64_t(rows.size()), per_slice, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k)
        for_each_pair(s, o + k * s.dst_step, src + rows[size_t(k)] * s.src_step,
                      [](T& d, const T& v) { d = v; });
    });
  });
}

void index_select_backward(TensorRef grad_x, TensorRef grad_out, int dim, TensorRef index) {
  LOOM_ASSERT(grad_x.dim() == grad_out.dim() && dim >= 0 && dim < grad_x.dim());
  LOOM_ASSERT(grad_out.dtype == grad_x.dtype && grad_out.sizes[dim] == index.numel());
  const std::vector<int64_t> rows = read_index(index, grad_x, dim);
  const int64_t n = grad_x.sizes[dim];
  const ScatterOrder so = scatter_order(rows, n);
  const std::vector<int64_t>&start = so.start, &order = so.order;
  const int64_t K = int64_t(rows.size());
  const Slices s = slices(grad_x, grad_out, dim);
  const int64_t per_slice = s.sizes.numel();
  dispatch_floating(grad_x.dtype, "index_select backward", [&]<class T>() {
    T* gx = grad_x.ptr<T>();
    const T* go = grad_out.ptr<T>();
    parallel_for(n, per_slice * (K / std::max<int64_t>(n, 1) + 1), [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t p = start[size_t(j)]; p < start[size_t(j + 1)]; ++p)
          for_each_pair(s, gx + j * s.dst_step, go + order[size_t(p)] * s.src_step,
                        [](T& d, const T& v) { d += v; });
    });
  });
}

}  // namespace loom::kernels::cpu
