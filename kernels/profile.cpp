#include "kernels/profile.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/runtime.h"

namespace loom::kernels::profile {
namespace {

constexpr size_t kKinds = size_t(Kind::kCount);
std::array<std::atomic<int64_t>, kKinds> total_ns{}, calls{};

std::atomic<int>& state() {  // -1: not read yet, 0 off, 1 on
  static std::atomic<int> s{-1};
  return s;
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Gemm: return "GEMM";
    case Kind::Attention: return "attention";
    case Kind::LayerNorm: return "layer norm";
    case Kind::SoftmaxLoss: return "softmax / cross-entropy";
    case Kind::Elementwise: return "elementwise";
    case Kind::Reduce: return "reductions";
    case Kind::Embedding: return "embedding";
    case Kind::Copy: return "copies (contiguous, concat)";
    case Kind::Random: return "random (dropout masks)";
    case Kind::Optimizer: return "optimizer";
    case Kind::kCount: break;
  }
  return "?";
}

bool enabled() {
  int s = state().load(std::memory_order_relaxed);
  if (s < 0) {
    const char* env = std::getenv("LOOM_PROFILE");
    s = env != nullptr && std::strcmp(env, "0") != 0 && env[0] != '\0';
    state().store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

void wait_for_device() {
  static const bool gpu = cuda::available();
  if (gpu) cuda::synchronize(0);
}

void set_enabled(bool on) { state().store(on ? 1 : 0, std::memory_order_relaxed); }

void add(Kind k, int64_t ns) {
  total_ns[size_t(k)].fetch_add(ns, std::memory_order_relaxed);
  calls[size_t(k)].fetch_add(1, std::memory_order_relaxed);
}

void reset() {
  for (size_t i = 0; i < kKinds; ++i) total_ns[i] = 0, calls[i] = 0;
}

std::string report(int64_t steps) {
  int64_t sum = 0;
  for (size_t i = 0; i < kKinds; ++i) sum += total_ns[i];
  std::string out = "| op kind | calls/step | ms/step | share |\n|---|---|---|---|\n";
  char line[160];
  for (size_t i = 0; i < kKinds; ++i) {
    if (calls[i] == 0) continue;
    std::snprintf(line, sizeof line, "| %s | %.0f | %.2f | %.1f%% |\n", kind_name(Kind(i)),
                  double(calls[i]) / double(steps), double(total_ns[i]) / 1e6 / double(steps),
                  sum ? 100.0 * double(total_ns[i]) / double(sum) : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "| total in kernels | | %.2f | 100%% |\n",
                double(sum) / 1e6 / double(steps));
  return out + line;
}

}  // namespace loom::kernels::profile
