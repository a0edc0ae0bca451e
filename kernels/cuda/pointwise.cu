// CUDA elementwise kernels (see kernels/pointwise.h): one grid-stride kernel per operand
// count, a functor per operation. bf16 operands compute in float and round once.
#include "kernels/cuda/common.cuh"
#include "kernels/pointwise.h"

namespace loom::kernels::cuda {
namespace {

template <class Out, class A, class F>
__global__ void map1(Indexer<2> ix, int64_t n, Out* o, const A* a, F f) {
  LOOM_GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    ix.offsets(i, off);
    o[off[0]] = f(a[off[1]]);
  }
}

template <class Out, class A, class B, class F>
__global__ void map2(Indexer<3> ix, int64_t n, Out* o, const A* a, const B* b, F f) {
  LOOM_GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    ix.offsets(i, off);
    o[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

template <class Out, class A, class B, class C, class F>
__global__ void map3(Indexer<4> ix, int64_t n, Out* o, const A* a, const B* b, const C* c, F f) {
  LOOM_GRID_STRIDE_LOOP(i, n) {
    int64_t off[4];
    ix.offsets(i, off);
    o[off[0]] = f(a[off[1]], b[off[2]], c[off[3]]);
  }
}

template <class Out, class A, class F>
void launch1(TensorRef out, TensorRef a, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  map1<<<grid_for(n), kThreads, 0, stream()>>>(make_indexer<2>({&out, &a}), n, out.ptr<Out>(),
                                               a.ptr<const A>(), f);
  LOOM_CUDA_LAUNCHED();
}

template <class Out, class A, class B, class F>
void launch2(TensorRef out, TensorRef a, TensorRef b, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  map2<<<grid_for(n), kThreads, 0, stream()>>>(make_indexer<3>({&out, &a, &b}), n, out.ptr<Out>(),
                                               a.ptr<const A>(), b.ptr<const B>(), f);
  LOOM_CUDA_LAUNCHED();
}

template <class Out, class A, class B, class C, class F>
void launch3(TensorRef out, TensorRef a, TensorRef b, TensorRef c, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  map3<<<grid_for(n), kThreads, 0, stream()>>>(make_indexer<4>({&out, &a, &b, &c}), n,
                                               out.ptr<Out>(), a.ptr<const A>(), b.ptr<const B>(),
                                               c.ptr<const C>(), f);
  LOOM_CUDA_LAUNCHED();
}

template <class T, class Op>
struct UnaryValue {
  Op op;
  __device__ T operator()(T x) const { return convert<T>(op.value(convert<acc_t<T>>(x))); }
};

template <class T, class Op>
struct UnaryGrad {
  Op op;
  __device__ T operator()(T g, T x, T y) const {
    using A = acc_t<T>;
    return convert<T>(convert<A>(g) * op.derivative(convert<A>(x), convert<A>(y)));
  }
};

template <class T>
struct Binary {
  BinaryOp op;
  __device__ T operator()(T a, T b) const {
    using A = acc_t<T>;
    const A x = convert<A>(a), y = convert<A>(b);
    A r;
    switch (op) {
      case BinaryOp::Add:
        r = x + y;
        break;
      case BinaryOp::Sub:
        r = x - y;
        break;
      case BinaryOp::Mul:
        r = x * y;
        break;
      case BinaryOp::Div:
        r = x / y;
        break;
      case BinaryOp::Maximum:
        r = x >= y ? x : y;
        break;
      default:
        r = x <= y ? x : y;
        break;  // Minimum
    }
    return convert<T>(r);
  }
};

template <class T>
struct Compare {
  CompareOp op;
  __device__ bool operator()(T a, T b) const {
    using A = acc_t<T>;
    const A x = convert<A>(a), y = convert<A>(b);
    switch (op) {
      case CompareOp::Eq:
        return x == y;
      case CompareOp::Ne:
        return x != y;
      case CompareOp::Lt:
        return x < y;
      case CompareOp::Le:
        return x <= y;
      case CompareOp::Gt:
        return x > y;
      default:
        return x >= y;  // Ge
    }
  }
};

template <class T>
struct Where {
  __device__ T operator()(bool c, T a, T b) const { return c ? a : b; }
};

template <class To, class From>
struct Convert {
  __device__ To operator()(From x) const { return convert<To>(x); }
};

template <class T>
__global__ void fill_kernel(Indexer<1> ix, int64_t n, T* o, T value) {
  LOOM_GRID_STRIDE_LOOP(i, n) {
    int64_t off[1];
    ix.offsets(i, off);
    o[off[0]] = value;
  }
}

}  // namespace

template <class Op>
void unary_forward(TensorRef y, TensorRef x, Op op) {
  LOOM_ASSERT(y.sizes == x.sizes && y.dtype == x.dtype);
  dispatch_gpu_floating(x.dtype, "unary",
                        [&]<class T>() { launch1<T, T>(y, x, UnaryValue<T, Op>{op}); });
}

template <class Op>
void unary_backward(TensorRef grad_x, TensorRef grad_out, TensorRef x, TensorRef y, Op op) {
  LOOM_ASSERT(grad_x.sizes == x.sizes);
  dispatch_gpu_floating(x.dtype, "unary backward", [&]<class T>() {
    launch3<T, T, T, T>(grad_x, grad_out, x, y, UnaryGrad<T, Op>{op});
  });
}

#define LOOM_INSTANTIATE_UNARY(Op)                           \
  template void unary_forward<Op>(TensorRef, TensorRef, Op); \
  template void unary_backward<Op>(TensorRef, TensorRef, TensorRef, TensorRef, Op);
LOOM_UNARY_OPS(LOOM_INSTANTIATE_UNARY)
#undef LOOM_INSTANTIATE_UNARY

void binary(TensorRef out, TensorRef a, TensorRef b, BinaryOp op) {
  LOOM_ASSERT(out.sizes == a.sizes && out.sizes == b.sizes);
  LOOM_ASSERT(out.dtype == a.dtype && out.dtype == b.dtype);
  dispatch_gpu_floating(a.dtype, binary_op_name(op),
                        [&]<class T>() { launch2<T, T, T>(out, a, b, Binary<T>{op}); });
}

void compare(TensorRef out, TensorRef a, TensorRef b, CompareOp op) {
  LOOM_ASSERT(out.sizes == a.sizes && out.sizes == b.sizes && out.dtype == DType::Bool);
  LOOM_ASSERT(a.dtype == b.dtype);
  dispatch_gpu_all(a.dtype, compare_op_name(op),
                   [&]<class T>() { launch2<bool, T, T>(out, a, b, Compare<T>{op}); });
}

void where(TensorRef out, TensorRef cond, TensorRef a, TensorRef b) {
  LOOM_ASSERT(out.sizes == cond.sizes && out.sizes == a.sizes && out.sizes == b.sizes);
  LOOM_ASSERT(cond.dtype == DType::Bool && out.dtype == a.dtype && out.dtype == b.dtype);
  dispatch_gpu_all(a.dtype, "where",
                   [&]<class T>() { launch3<T, bool, T, T>(out, cond, a, b, Where<T>{}); });
}

void copy(TensorRef out, TensorRef x) {
  LOOM_ASSERT(out.sizes == x.sizes && out.device == x.device);
  dispatch_gpu_all(out.dtype, "copy", [&]<class To>() {
    dispatch_gpu_all(x.dtype, "copy",
                     [&]<class From>() { launch1<To, From>(out, x, Convert<To, From>{}); });
  });
}

void fill(TensorRef out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_gpu_all(out.dtype, "fill", [&]<class T>() {
    fill_kernel<<<grid_for(n), kThreads, 0, stream()>>>(make_indexer<1>({&out}), n, out.ptr<T>(),
                                                        convert<T>(value));
    LOOM_CUDA_LAUNCHED();
  });
}

}  // namespace loom::kernels::cuda
