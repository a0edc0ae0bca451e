#include "optim/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "autograd/ops.h"
#include "autograd/tape.h"

namespace loom::optim {
namespace {

// FNV-1a (64 bit) over the parameters' names, shapes and dtypes.
uint64_t layout_hash(const ag::NamedTensors& params) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](const void* bytes, size_t n) {
    for (size_t i = 0; i < n; ++i)
      h = (h ^ static_cast<const unsigned char*>(bytes)[i]) * 0x100000001b3ULL;
  };
  for (const ag::NamedTensor& p : params) {
    mix(p.name.data(), p.name.size() + 1);
    for (int64_t s : p.tensor.sizes()) mix(&s, sizeof s);
    const auto dtype = p.tensor.dtype();
    mix(&dtype, sizeof dtype);
  }
  return h;
}

}  // namespace

DataParallel::DataParallel(ag::NamedTensors params, std::shared_ptr<kernels::Communicator> comm,
                           const DataParallelOptions& options)
    : params_(std::move(params)), comm_(std::move(comm)) {
  LOOM_CHECK(comm_ != nullptr, "DataParallel: no communicator");
  LOOM_CHECK(options.bucket_bytes > 0, "DataParallel: bucket_bytes ", options.bucket_bytes,
             ": must be positive");
  for (size_t i = 0; i < params_.size(); ++i) {
    const ag::Tensor& t = params_[i].tensor;
    LOOM_CHECK(t.defined() && t.is_floating_point(), "DataParallel: parameter '", params_[i].name,
               "': expected a floating-point tensor");
    LOOM_CHECK(index_.emplace(t.impl(), i).second, "DataParallel: parameter '", params_[i].name,
               "' is listed twice");
  }
  // One process needs no averaging: no buffers. A launched job of one rank (NCCL with
  // world size 1) runs every step of the path anyway, as its larger jobs would.
  if (!averages()) return;
  check_same_parameters_on_all_ranks();

  // Reverse order: roughly the order in which backward finishes the gradients.
  bucket_of_.resize(params_.size());
  slot_of_.resize(params_.size());
  copied_.resize(params_.size());
  for (size_t k = params_.size(); k-- > 0;) {
    const ag::Tensor& t = params_[k].tensor;
    const int64_t bytes = t.numel() * int64_t(kernels::dtype_size(t.dtype()));
    const bool fits = !buckets_.empty() && buckets_.back().dtype == t.dtype() &&
                      buckets_.back().device == t.device() &&
                      (buckets_.back().values * int64_t(kernels::dtype_size(t.dtype())) + bytes <=
                       options.bucket_bytes);
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().dtype = t.dtype();
      buckets_.back().device = t.device();
    }
    Bucket& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = b.params.size();
    b.params.push_back(k);
    b.offsets.push_back(b.values);
    b.values += t.numel();
  }
  for (Bucket& b : buckets_)
    b.flat = ag::zeros({b.values + int64_t(b.params.size())}, b.dtype, b.device);
}

DataParallel::~DataParallel() {
  // A bucket still reducing means a synchronising backward failed and the process is on
  // its way to Communicator::abort(); MPI may still write into the buffer, so it must not
  // be freed (see CollectiveWork): it is deliberately leaked.
  for (Bucket& b : buckets_) {
    if (!b.work) continue;
    static auto* orphans = new std::vector<Bucket>();
    orphans->push_back(std::move(b));
  }
}

void DataParallel::check_same_parameters_on_all_ranks() const {
  int64_t numel = 0;
  for (const ag::NamedTensor& p : params_) numel += p.tensor.numel();
  // 40 bits of the hash: a sum over up to 8192 ranks stays exact in a double.
  const std::vector<double> mine = {double(params_.size()), double(numel),
                                    double(layout_hash(params_) >> 24)};
  ag::Tensor sums = ag::from_vector(mine, {3});
  comm_->all_reduce_sum(sums.ref());
  const std::vector<double> s = sums.to_vector<double>();
  const double w = world_size();
  LOOM_CHECK(s[0] == w * mine[0] && s[1] == w * mine[1] && s[2] == w * mine[2],
             "DataParallel: rank ", rank(), " of ", world_size(), " has ", params_.size(),
             " parameters with ", numel,
             " elements, which differ from the other ranks' "
             "(names, shapes or dtypes): every rank must build the same model");
}

void DataParallel::broadcast_parameters() {
  if (!averages()) return;
  ag::NoGrad no_grad;  // parameters require grad: in-place writes need grad mode off
  for (Bucket& b : buckets_) {
    for (size_t j = 0; j < b.params.size(); ++j) {
      const ag::Tensor& p = params_[b.params[j]].tensor;
      b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes()).copy_(p);
    }
    comm_->broadcast(b.flat.ref(), 0);
    for (size_t j = 0; j < b.params.size(); ++j) {
      ag::Tensor p = params_[b.params[j]].tensor;
      p.copy_(b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes()));
    }
  }
}

void DataParallel::backward(const ag::Tensor& loss, bool sync) {
  if (!averages() || !sync) {
    loss.backward();
    return;
  }
  begin_sync();
  {
    const ag::LeafGradReadyHook hook([this](const ag::Tensor& leaf) {
      const auto it = index_.find(leaf.impl());
      if (it != index_.end()) gradient_ready(it->second);
    });
    loss.backward();
  }
  started_in_backward_ = int64_t(next_to_start_);
  finish_sync();
}

void DataParallel::average_gradients() {
  if (!averages()) return;
  begin_sync();
  started_in_backward_ = 0;
  finish_sync();
}

std::vector<std::vector<std::string>> DataParallel::bucket_names() const {
  std::vector<std::vector<std::string>> names;
  for (const Bucket& b : buckets_) {
    names.emplace_back();
    for (size_t k : b.params) names.back().push_back(params_[k].name);
  }
  return names;
}

void DataParallel::begin_sync() {
  for (const Bucket& b : buckets_)
    LOOM_CHECK(!b.work,
               "DataParallel: the previous gradient averaging never finished (its "
               "backward failed), so the ranks are out of step; end the job (Communicator::abort)");
  for (Bucket& b : buckets_) b.pending = b.params.size();
  std::fill(copied_.begin(), copied_.end(), false);
  next_to_start_ = 0;
}

// Copies parameter k's final gradient (zeros when it has none) and its "had a gradient"
// flag into its bucket; starts the buckets that are now full, in order.
void DataParallel::gradient_ready(size_t k) {
  if (copied_[k]) return;
  copied_[k] = true;
  ag::NoGrad no_grad;
  const ag::Tensor& p = params_[k].tensor;
  const ag::Tensor g = p.grad();
  Bucket& b = buckets_[bucket_of_[k]];
  const size_t j = slot_of_[k];
  ag::Tensor slot = b.flat.narrow(0, b.offsets[j], p.numel());
  if (g.defined())
    slot.view(p.sizes()).copy_(g);
  else
    slot.fill_(0);
  b.flat.narrow(0, b.values + int64_t(j), 1).fill_(g.defined() ? 1 : 0);
  --b.pending;
  start_full_buckets();
  // MPI moves data only inside MPI calls: poll the running ones while we are here.
  for (size_t i = 0; i < next_to_start_; ++i)
    if (buckets_[i].work) buckets_[i].work->test();
}

void DataParallel::start_full_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].pending == 0) {
    Bucket& b = buckets_[next_to_start_++];
    b.work = comm_->start_all_reduce_sum(b.flat.ref());
  }
}

void DataParallel::finish_sync() {
  // Parameters backward did not reach in this pass (accumulated earlier, or unused).
  for (size_t k = 0; k < params_.size(); ++k) gradient_ready(k);
  LOOM_ASSERT(next_to_start_ == buckets_.size());
  ag::NoGrad no_grad;
  for (Bucket& b : buckets_) {
    const auto start = std::chrono::steady_clock::now();
    b.work->wait();
    wait_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    b.work.reset();
    const std::vector<double> had =
        b.flat.narrow(0, b.values, int64_t(b.params.size())).to_vector<double>();
    b.flat.narrow(0, 0, b.values).mul_(1.0 / world_size());
    for (size_t j = 0; j < b.params.size(); ++j) {
      ag::Tensor p = params_[b.params[j]].tensor;
      if (had[j] == 0) continue;  // no rank had a gradient: keep none
      const ag::Tensor mean = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes());
      ag::Tensor g = p.grad();
      if (g.defined())
        g.copy_(mean);
      else
        p.set_grad(mean.clone());
    }
  }
}

}  // namespace loom::optim
