// Tensor: a cheap handle (shared impl) to storage + sizes + strides + offset, with the
// autograd fields: requires_grad, grad (on leaves) and the tape node that produced it.
// Views share storage. Methods for views and the common ops forward to the free
// functions in autograd/ops.h, where each op's forward and backward live together.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "kernels/device.h"
#include "kernels/dims.h"
#include "kernels/dtype.h"
#include "kernels/random.h"
#include "kernels/storage.h"
#include "kernels/tensor_ref.h"

namespace loom::ag {

using kernels::Device;
using kernels::Dims;
using kernels::DType;
using kernels::Generator;

struct TensorImpl {
  kernels::StoragePtr storage;
  int64_t offset = 0;  // elements
  Dims sizes, strides;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  // Autograd identity: index of the tape node that produced this tensor and the id of
  // that tape; node < 0 for leaves and for tensors made while no gradient was needed.
  int64_t node = -1;
  uint64_t tape_id = 0;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // Metadata. size(d) and other dim arguments accept negative indices (-1: last).
  const Dims& sizes() const { return impl_->sizes; }
  const Dims& shape() const { return impl_->sizes; }
  const Dims& strides() const { return impl_->strides; }
  int64_t size(int d) const;
  int64_t stride(int d) const;
  int dim() const { return impl_->sizes.size(); }
  int64_t numel() const { return impl_->sizes.numel(); }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  bool is_floating_point() const { return kernels::is_floating(impl_->dtype); }
  bool is_contiguous() const { return ref().is_contiguous(); }
  const kernels::StoragePtr& storage() const { return impl_->storage; }

  // What kernels see: data pointer (offset applied), dtype, device, sizes, strides.
  kernels::TensorRef ref() const;
  template <class T> T* data() const;  // checks dtype; pointer to element 0 of the view

  // Autograd.
  bool requires_grad() const;  // a leaf marked so, or the output of a recorded op
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;  // undefined until backward() reached this leaf
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (PyTorch's set_to_none=True)
  // Runs the tape backward from this tensor; without grad_out it must be a scalar.
  void backward(const Tensor& grad_out = Tensor()) const;
  // The same data as a new leaf that does not require grad (shares storage).
  Tensor detach() const;
  // Makes this handle's impl point at src's data (storage, shape, strides, dtype) in
  // place, so every holder of this tensor sees the new data (PyTorch's `t.data = src`):
  // how modules change dtype or load weights without rebinding members. Drops .grad.
  void set_data(const Tensor& src);

  // Views (share storage; differentiable).
  Tensor view(const Dims& shape) const;
  Tensor reshape(const Dims& shape) const;  // a view when strides allow, else a copy
  Tensor transpose(int d0, int d1) const;
  Tensor permute(const Dims& order) const;
  Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor expand(const Dims& shape) const;
  Tensor squeeze(int dim) const;
  Tensor unsqueeze(int dim) const;
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor contiguous() const;  // itself when contiguous, else a copy
  Tensor clone() const;       // always a copy (differentiable)
  Tensor to(DType dtype) const;  // dtype conversion (differentiable between float types)
  Tensor to(Device device) const;  // copy to cpu / cuda:N (differentiable); itself when there

  // In-place writes (not recorded; refused on tensors that require grad while grad mode
  // is on). Each bumps the storage version, see Note [Saved tensor versions].
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double value);
  Tensor& uniform_(Generator& gen, double low, double high);
  Tensor& normal_(Generator& gen, double mean, double std);

  // Values (contiguous copies on the host).
  template <class T> T item() const;
  template <class T> std::vector<T> to_vector() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // "float32 [2,3]" + values

// Factories. Device defaults to cpu, dtype to float32.
Tensor empty(const Dims& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros(const Dims& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Dims& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Dims& shape, double value, DType dtype = DType::F32,
            Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar(double value, DType dtype = DType::F32);  // 0-dim
Tensor arange(int64_t n, DType dtype = DType::I64);
Tensor rand(const Dims& shape, Generator& gen, DType dtype = DType::F32);   // U[0, 1)
Tensor randn(const Dims& shape, Generator& gen, DType dtype = DType::F32);  // N(0, 1)
// A tensor holding a copy of `values` (row-major) with the given shape.
template <class T> Tensor from_vector(const std::vector<T>& values, const Dims& shape);

// A view sharing t's storage with the given sizes, strides and offset (no checks beyond
// bounds; the building block of the view ops).
Tensor make_view(const Tensor& t, const Dims& sizes, const Dims& strides, int64_t offset);

// Normalises a possibly negative dim index for a tensor of rank `rank`, or throws naming op.
int wrap_dim(const char* op, int dim, int rank);

}  // namespace loom::ag
