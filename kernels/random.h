// Counter-based random numbers (Philox4x32-10, Salmon et al., "Parallel Random Numbers:
// As Easy as 1, 2, 3", SC 2011). Element i of a fill uses counter (offset + i) under key
// seed, so a tensor's values depend only on (seed, offset, i): the same across runs, thread
// counts and (later) devices. A Generator is just (seed, offset); each fill advances the
// offset by the element count, so its state is two integers, trivially checkpointed.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/philox.h"
#include "kernels/profile.h"
#include "kernels/tensor_ref.h"

namespace loom::kernels {

struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // counters consumed so far

  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed(seed), offset(offset) {}
  // Reserves n counters and returns the first.
  uint64_t take(uint64_t n) {
    const uint64_t first = offset;
    offset += n;
    return first;
  }
};

// Philox4x32-10 on a full 128-bit counter and 64-bit key (checked against the
// published known-answer vectors in tests).
inline std::array<uint32_t, 4> philox4x32_block(std::array<uint32_t, 4> counter,
                                                std::array<uint32_t, 2> key) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  philox4x32_rounds(c, key[0], key[1]);
  return {c[0], c[1], c[2], c[3]};
}

// out[4 b + k] = word k of the Philox block of counter first_counter + b (upper counter
// words zero) under key seed, for b < blocks: 32 blocks at a time so the rounds vectorise
// (ask for multiples of 32 to waste none).
void philox_words(uint32_t* out, int64_t blocks, uint64_t first_counter, uint64_t seed);

// Dropout's keep bits straight from the rounds: bit 4 b + k of the little-endian bit
// string `bits` (64 per word) is set when word k of block first_counter + b is below
// threshold (2^32 or more: always), for b < blocks, a multiple of 16. The same test as on
// philox_words' output, without writing the words out and reading them back.
void philox_keep_bits(uint64_t* bits, int64_t blocks, uint64_t first_counter, uint64_t seed,
                      uint64_t threshold);

// Bernoulli keep bits on fill_bernoulli's stream: bit i of the little-endian bit string
// `bits` (64 per word) is set when philox_uniform01(first_counter + i, seed) < keep_prob,
// for i < n; the bits after n in the last word are clear. The uniform's 53 bits are the
// top of the 64-bit number (word 0 : word 1), so the test is one integer compare per
// element on the rounds' output, with no double made.
void philox_bernoulli_bits(uint64_t* bits, int64_t n, uint64_t first_counter, uint64_t seed,
                           double keep_prob);

// out[i] = philox_uniform01(first_counter + i, seed) for i < n: the same numbers, computed
// 32 counters at a time (philox_words).
void philox_uniform01(double* out, int64_t n, uint64_t first_counter, uint64_t seed);

namespace cpu {
void fill_uniform(TensorRef out, uint64_t seed, uint64_t offset, double low, double high);
void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std);
// out = (u < keep_prob) ? scale : 0, u uniform in [0, 1): an inverted-dropout mask.
void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale);
}  // namespace cpu

namespace cuda {
void fill_uniform(TensorRef out, uint64_t seed, uint64_t offset, double low, double high);
void fill_normal(TensorRef out, uint64_t seed, uint64_t offset, double mean, double std);
void fill_bernoulli(TensorRef out, uint64_t seed, uint64_t offset, double keep_prob, double scale);
}  // namespace cuda

// The same (seed, offset) gives the same numbers on the CPU and the GPU: uniform and
// bernoulli bit for bit, normal to the last bits of the device's log and cos.
inline void fill_uniform(TensorRef out, Generator& gen, double low, double high) {
  profile::Scope scope(profile::Kind::Random);
  const uint64_t offset = gen.take(out.numel());
  if (out.device.is_cpu()) return cpu::fill_uniform(out, gen.seed, offset, low, high);
  LOOM_ON_CUDA(cuda::fill_uniform(out, gen.seed, offset, low, high));
}
inline void fill_normal(TensorRef out, Generator& gen, double mean, double std) {
  profile::Scope scope(profile::Kind::Random);
  const uint64_t offset = gen.take(out.numel());
  if (out.device.is_cpu()) return cpu::fill_normal(out, gen.seed, offset, mean, std);
  LOOM_ON_CUDA(cuda::fill_normal(out, gen.seed, offset, mean, std));
}
inline void fill_bernoulli(TensorRef out, Generator& gen, double keep_prob, double scale) {
  profile::Scope scope(profile::Kind::Random);
  const uint64_t offset = gen.take(out.numel());
  if (out.device.is_cpu()) return cpu::fill_bernoulli(out, gen.seed, offset, keep_prob, scale);
  LOOM_ON_CUDA(cuda::fill_bernoulli(out, gen.seed, offset, keep_prob, scale));
}

}  // namespace loom::kernels
