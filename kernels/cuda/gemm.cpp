// GEMM on cuBLAS (see kernels/gemm.h): the plan is the CPU's (kernels/gemm_layout.h); each
// planned call is one cublasGemmEx, or one cublasGemmBatchedEx over its batches.
//
// cuBLAS is column-major: a row-major c (M, N) is, read column-major, c^T (N, M) with the
// same leading dimension, so c = op(a) op(b) is computed as c^T = op(b)^T op(a)^T by
// passing b first, with the same transpose flags the row-major (cblas) call would use.
#include "kernels/gemm.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>

#include "kernels/cuda/blas.h"
#include "kernels/cuda/runtime.h"
#include "kernels/gemm_layout.h"

namespace loom::kernels::cuda {
namespace {

void check(cublasStatus_t s, const char* what) {
  LOOM_CHECK(s == CUBLAS_STATUS_SUCCESS, "cuda gemm: ", what, " failed: ", cublasGetStatusName(s),
             " (", cublasGetStatusString(s), ")");
}

void check(cudaError_t e, const char* what) {
  LOOM_CHECK(e == cudaSuccess, "cuda gemm: ", what, " failed: ", cudaGetErrorString(e));
}

// One cuBLAS handle per device, on loom's stream (the legacy default stream).
cublasHandle_t handle(int device) {
  static std::mutex mu;
  static std::unordered_map<int, cublasHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  check(cudaSetDevice(device), "cudaSetDevice");
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  check(cublasSetStream(h, cudaStreamLegacy), "cublasSetStream");
  handles[device] = h;
  return h;
}

struct Types {
  cudaDataType_t data;
  cublasComputeType_t compute;
};

Types types_of(DType t) {
  switch (t) {
    case DType::F32:
      return {CUDA_R_32F, allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
    case DType::F64:
      return {CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case DType::BF16:
      return {CUDA_R_16BF, CUBLAS_COMPUTE_32F};
    default:
      break;
  }
  throw Error(detail::cat("gemm: dtype ", t,
                          " is not supported on cuda (use float32, float64 or bfloat16)"));
}

}  // namespace

void gemm_rows(DType dtype, int device, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               double alpha, const std::vector<const void*>& a, int64_t lda,
               const std::vector<const void*>& b, int64_t ldb, double beta,
               const std::vector<void*>& c, int64_t ldc) {
  gemm_rows(dtype, dtype, device, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_rows(DType dtype, DType c_dtype, int device, bool ta, bool tb, int64_t M, int64_t N,
               int64_t K, double alpha, const std::vector<const void*>& a, int64_t lda,
               const std::vector<const void*>& b, int64_t ldb, double beta,
               const std::vector<void*>& c, int64_t ldc) {
  const size_t count = c.size();
  LOOM_ASSERT(a.size() == count && b.size() == count);
  LOOM_ASSERT(c_dtype == dtype || (dtype == DType::BF16 && c_dtype == DType::F32));
  if (count == 0 || M == 0 || N == 0) return;
  const Types ty = types_of(dtype);
  const cudaDataType_t c_type = types_of(c_dtype).data;
  // Scalars in the compute type: double for float64, float otherwise.
  const double alpha_d = alpha, beta_d = beta;
  const float alpha_f = float(alpha), beta_f = float(beta);
  const void* pa = dtype == DType::F64 ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* pb = dtype == DType::F64 ? static_cast<const void*>(&beta_d) : &beta_f;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                          opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = handle(device);
  if (count == 1) {
    check(cublasGemmEx(h, opb, opa, int(N), int(M), int(K), pa, b[0], ty.data, int(ldb), a[0],
                       ty.data, int(lda), pb, c[0], c_type, int(ldc), ty.compute,
                       CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
    return;
  }
  // The pointer arrays live on the device: one allocation holding b, a, c in turn.
  std::vector<const void*> ptrs;
  ptrs.reserve(3 * count);
  ptrs.insert(ptrs.end(), b.begin(), b.end());
  ptrs.insert(ptrs.end(), a.begin(), a.end());
  ptrs.insert(ptrs.end(), c.begin(), c.end());
  const size_t bytes = ptrs.size() * sizeof(void*);
  void* dev = allocate(bytes, device);
  try {
    copy_bytes(dev, Device::cuda(device), ptrs.data(), Device::cpu(), bytes);
    const void* const* d = static_cast<const void* const*>(dev);
    check(cublasGemmBatchedEx(h, opb, opa, int(N), int(M), int(K), pa, d, ty.data, int(ldb),
                              d + count, ty.data, int(lda), pb,
                              const_cast<void* const*>(d + 2 * count), c_type, int(ldc),
                              int(count), ty.compute, CUBLAS_GEMM_DEFAULT),
          "cublasGemmBatchedEx");
  } catch (...) {
    deallocate(dev, bytes, device);
    throw;
  }
  deallocate(dev, bytes, device);  // stream order: the GEMM reads it before any reuse
}

void gemm(TensorRef c, TensorRef a, TensorRef b, double alpha, double beta) {
  using namespace gemm_layout;
  const GemmPlan plan = plan_gemm(c, a, b, beta);
  if (plan.scale_only) return scale_by_beta(plan.c, beta);
  // Element sizes: the operands' may differ from the result's (bfloat16 into float32).
  const size_t es = dtype_size(c.dtype), es_ab = dtype_size(a.dtype);
  char* pc = static_cast<char*>(plan.c.data);
  const char *pa = static_cast<const char*>(plan.a.data),
             *pb = static_cast<const char*>(plan.b.data);
  for (const MatrixCall& m : plan.calls) {
    std::vector<const void*> va, vb;
    std::vector<void*> vc;
    for (size_t i = 0; i < m.oc.size(); ++i) {
      vc.push_back(pc + m.oc[i] * es);
      va.push_back(pa + m.oa[i] * es_ab);
      vb.push_back(pb + m.ob[i] * es_ab);
    }
    gemm_rows(a.dtype, c.dtype, c.device.index, m.la.trans, m.lb.trans, m.M, m.N, m.K, alpha, va, m.la.ld,
              vb, m.lb.ld, m.beta, vc, m.ldc);
  }
}

}  // namespace loom::kernels::cuda
