// Op-kind profiler. With LOOM_PROFILE=1 in the environment every kernel call is timed
// (wall clock, on the calling thread) and summed by kind; report() renders the table the
// benchmarks print. Off, a Scope costs one predictable branch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace loom::kernels::profile {

enum class Kind : uint8_t {
  Gemm, Attention, LayerNorm, SoftmaxLoss, Elementwise, Reduce, Embedding, Copy, Random,
  Optimizer, kCount
};

const char* kind_name(Kind k);
bool enabled();  // LOOM_PROFILE=1, read once; set_enabled overrides (benchmarks)
void set_enabled(bool on);
void add(Kind k, int64_t nanoseconds);
// Waits for the GPU when one is in use (CUDA kernels run asynchronously: a Scope on a GPU
// op must wait for its kernels to be timed). Nothing in a CPU-only build or without a GPU.
void wait_for_device();
void reset();
// Markdown table: kind, calls, total ms, ms per step (divided by `steps`), share.
std::string report(int64_t steps = 1);

class Scope {
 public:
  explicit Scope(Kind k) : kind_(k), on_(enabled()) {
    if (on_) {
      wait_for_device();  // earlier queued work is not this op's
      start_ = std::chrono::steady_clock::now();
    }
  }
  ~Scope() {
    if (on_) {
      wait_for_device();
      add(kind_, std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - start_).count());
    }
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Kind kind_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace loom::kernels::profile
