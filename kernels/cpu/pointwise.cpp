// CPU elementwise kernels over strided operands (see kernels/pointwise.h). Each kernel is
// a typed inner loop handed to strided_apply; the all-stride-1 branch is written out so
// the compiler vectorises it.
#include "kernels/pointwise.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "kernels/cpu/common.h"

namespace loom::kernels {

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
  }
  return "?";
}

const char* compare_op_name(CompareOp op) {
  switch (op) {
    case CompareOp::Eq: return "eq";
    case CompareOp::Ne: return "ne";
    case CompareOp::Lt: return "lt";
    case CompareOp::Le: return "le";
    case CompareOp::Gt: return "gt";
    case CompareOp::Ge: return "ge";
  }
  return "?";
}

namespace cpu {
namespace {

// Applies f(out_elem&, in_elems...) over N operands of element types Out, In...
template <class Out, class... In, class F>
void map(TensorRef out, F f, const std::array<TensorRef, sizeof...(In)>& in) {
  constexpr size_t N = 1 + sizeof...(In);
  std::array<Dims, N> strides;
  strides[0] = out.strides;
  for (size_t i = 0; i < sizeof...(In); ++i) strides[i + 1] = in[i].strides;
  Out* o = out.ptr<Out>();
  bool flat = out.is_contiguous();
  for (size_t i = 0; i < sizeof...(In) && flat; ++i) flat = in[i].is_contiguous();
  auto run = [&]<size_t... I>(std::index_sequence<I...>) {
    std::tuple<In*...> ptrs{in[I].template ptr<In>()...};
    if (flat) {  // the common case, without strided_apply's dim bookkeeping
      parallel_for(out.numel(), 1, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) o[k] = f(std::get<I>(ptrs)[k]...);
      });
      return;
    }
    strided_apply<N>(out.sizes, strides, [&](const std::array<int64_t, N>& off,
                                               const std::array<int64_t, N>& st, int64_t n) {
      Out* po = o + off[0];
      std::tuple<In*...> p{(std::get<I>(ptrs) + off[I + 1])...};
      if (((st[I + 1] == 1) && ...) && st[0] == 1) {
        for (int64_t k = 0; k < n; ++k) po[k] = f(std::get<I>(p)[k]...);
      } else {
        for (int64_t k = 0; k < n; ++k) po[k * st[0]] = f(std::get<I>(p)[k * st[I + 1]]...);
      }
    });
  };
  run(std::make_index_sequence<sizeof...(In)>{});
}

void check_same_sizes(const char* kernel, const TensorRef& out, const TensorRef& x) {
  LOOM_ASSERT(out.sizes == x.sizes);
  (void)kernel;
}

}  // namespace

template <class Op> void unary_forward(TensorRef y, TensorRef x, Op op) {
  check_same_sizes("unary_forward", y, x);
  LOOM_ASSERT(y.dtype == x.dtype);
  dispatch_floating(x.dtype, "unary", [&]<class T>() {
    map<T, T>(y, [op](T v) { return op.value(v); }, {x});
  });
}

template <class Op>
void unary_backward(TensorRef grad_x, TensorRef grad_out, TensorRef x, TensorRef y, Op op) {
  check_same_sizes("unary_backward", grad_x, x);
  dispatch_floating(x.dtype, "unary backward", [&]<class T>() {
    map<T, T, T, T>(grad_x, [op](T g, T xv, T yv) { return g * op.derivative(xv, yv); },
                    {grad_out, x, y});
  });
}

#define LOOM_INSTANTIATE_UNARY(Op)                                                   \
  template void unary_forward<Op>(TensorRef, TensorRef, Op);                         \
  template void unary_backward<Op>(TensorRef, TensorRef, TensorRef, TensorRef, Op);
LOOM_UNARY_OPS(LOOM_INSTANTIATE_UNARY)
#undef LOOM_INSTANTIATE_UNARY

void binary(TensorRef out, TensorRef a, TensorRef b, BinaryOp op) {
  LOOM_ASSERT(out.sizes == a.sizes && out.sizes == b.sizes);
  LOOM_ASSERT(out.dtype == a.dtype && out.dtype == b.dtype);
  dispatch_floating(a.dtype, binary_op_name(op), [&]<class T>() {
    switch (op) {
      case BinaryOp::Add: return map<T, T, T>(out, [](T x, T y) { return x + y; }, {a, b});
      case BinaryOp::Sub: return map<T, T, T>(out, [](T x, T y) { return x - y; }, {a, b});
      case BinaryOp::Mul: return map<T, T, T>(out, [](T x, T y) { return x * y; }, {a, b});
      case BinaryOp::Div: return map<T, T, T>(out, [](T x, T y) { return x / y; }, {a, b});
      case BinaryOp::Maximum:
        return map<T, T, T>(out, [](T x, T y) { return x >= y ? x : y; }, {a, b});
      case BinaryOp::Minimum:
        return map<T, T, T>(out, [](T x, T y) { return x <= y ? x : y; }, {a, b});
    }
  });
}

void compare(TensorRef out, TensorRef a, TensorRef b, CompareOp op) {
  LOOM_ASSERT(out.sizes == a.sizes && out.sizes == b.sizes && out.dtype == DType::Bool);
  LOOM_ASSERT(a.dtype == b.dtype);
  dispatch_all(a.dtype, compare_op_name(op), [&]<class T>() {
    switch (op) {
      case CompareOp::Eq: return map<bool, T, T>(out, [](T x, T y) { return x == y; }, {a, b});
      case CompareOp::Ne: return map<bool, T, T>(out, [](T x, T y) { return x != y; }, {a, b});
      case CompareOp::Lt: return map<bool, T, T>(out, [](T x, T y) { return x < y; }, {a, b});
      case CompareOp::Le: return map<bool, T, T>(out, [](T x, T y) { return x <= y; }, {a, b});
      case CompareOp::Gt: return map<bool, T, T>(out, [](T x, T y) { return x > y; }, {a, b});
      case CompareOp::Ge: return map<bool, T, T>(out, [](T x, T y) { return x >= y; }, {a, b});
    }
  });
}

void where(TensorRef out, TensorRef cond, TensorRef a, TensorRef b) {
  LOOM_ASSERT(out.sizes == a.sizes && out.sizes == b.sizes && out.sizes == cond.sizes);
  LOOM_ASSERT(cond.dtype == DType::Bool && out.dtype == a.dtype && out.dtype == b.dtype);
  dispatch_all(a.dtype, "where", [&]<class T>() {
    map<T, bool, T, T>(out, [](bool c, T x, T y) { return c ? x : y; }, {cond, a, b});
  });
}

void copy(TensorRef out, TensorRef x) {
  LOOM_ASSERT(out.sizes == x.sizes);
  dispatch_all(out.dtype, "copy", [&]<class O>() {
    dispatch_all(x.dtype, "copy", [&]<class I>() {
      map<O, I>(out, [](I v) { return static_cast<O>(v); }, {x});
    });
  });
}

void fill(TensorRef out, double value) {
  dispatch_all(out.dtype, "fill", [&]<class T>() {
    const T v = static_cast<T>(value);
    map<T>(out, [v]() { return v; }, {});
  });
}

}  // namespace cpu
}  // namespace loom::kernels
