// scaled_dot_product_attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1;
// torch.nn.functional.scaled_dot_product_attention with enable_gqa=True). For each batch b
// and query head h, with kv head h / (H / KV):
//   Z = scale * q kᵀ + bias                          (T, S)
//   Z[i, j] = -inf where mask[i, j] is false or (causal) j > S - T + i
//   P = softmax(Z) per row (a row of -inf only gives P = 0: zeros, not PyTorch's NaN)
//   W = P * M / (1 - p), M ~ Bernoulli(1 - p) from the Philox stream (dropout)
//   out = W v                                        (T, D)
// Backward, with dP = (grad_out vᵀ) * M / (1 - p):
//   grad_v = Wᵀ grad_out,  dZ = P * (dP - rowsum(dP * P)),
//   grad_q = scale * dZ k,  grad_k = scale * dZᵀ q,
// grad_k and grad_v summed over the query heads that share a kv head. With a sliding window
// the keys outside each query's window are hidden as by the mask. The forward saves P
// (B, H, T, S), or its band (B, H, T, window) with a window, with the dropout mask in its
// sign bits (see kernels/attention.h); no
// per-head mask, bias or weight tensor is ever materialised, and without recording the
// forward keeps only one (T, S) block per thread. On cuda with the flash kernels switched
// on (kernels::use_flash_attention) it saves each row's log-sum-exp and the output
// instead, and the backward recomputes P.
#include "autograd/ops/attention.h"

#include <array>
#include <cmath>

#include "autograd/ops.h"
#include "autograd/ops/internal.h"
#include "kernels/attention.h"

namespace loom::ag {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

kernels::TensorRef optional_ref(const Tensor& t) {
  return t.defined() ? t.ref() : kernels::TensorRef{};
}

// x itself when the kernel can read it (head dim contiguous, rows at least D apart), else a
// contiguous copy.
Tensor kernel_operand(const Tensor& x) {
  return kernels::is_head_matrices(x.ref()) ? x : x.contiguous();
}

// True when x (B, n, len, D) is the heads view of a contiguous (B, len, n * D) buffer, as
// nn::Attention's split projections are.
bool is_split_heads(const Tensor& x) {
  const int64_t n = x.size(1), len = x.size(2), D = x.size(3);
  return x.stride(3) == 1 && x.stride(1) == D && x.stride(2) == n * D &&
         x.stride(0) == len * n * D;
}

// An uninitialised (B, n, len, D) tensor for the kernels to write. On the cpu it is the
// heads view of a (B, len, n * D) buffer (the kernels write through head strides): an
// output merges back into rows without a copy, and a gradient flows back through the
// split (transpose, then view) as views. The cuda kernels write contiguous tensors.
Tensor heads_buffer(const Tensor& like) {
  if (!like.device().is_cpu()) return empty(like.sizes(), like.dtype(), like.device());
  const int64_t B = like.size(0), n = like.size(1), len = like.size(2), D = like.size(3);
  return empty({B, len, n, D}, like.dtype(), like.device()).transpose(1, 2);
}

// Uninitialised gradients for q, k, v, each only where node needs it (the kernels write
// every element), laid out as their inputs: split heads stay split heads.
std::array<Tensor, 3> grad_buffers(const Node& node, const Tensor& q, const Tensor& k,
                                   const Tensor& v) {
  std::array<Tensor, 3> grads;
  const Tensor* inputs[3] = {&q, &k, &v};
  for (size_t i = 0; i < 3; ++i) {
    if (!node.needs_grad(i)) continue;
    const Tensor& x = *inputs[i];
    grads[i] = is_split_heads(x) ? heads_buffer(x) : empty(x.sizes(), x.dtype(), x.device());
  }
  return grads;
}

struct AttentionBackward final : Node {
  SavedTensor q, k, v;  // q: (B, H, T, D), k, v: (B, KV, S, D), as the kernel read them
  SavedTensor probs;    // P: (B, H, T, S) or banded, before dropout, negated where dropped
  kernels::AttentionParams params;

  AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor probs, kernels::AttentionParams params)
      : q(std::move(q)),
        k(std::move(k)),
        v(std::move(v)),
        probs(std::move(probs)),
        params(params) {}
  const char* name() const override { return kOp; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& qv = q.get(name());
    const Tensor& kv = k.get(name());
    const Tensor& vv = v.get(name());
    const Tensor g = kernel_operand(grad_out);  // grad_out may be an expanded view
    const auto [grad_q, grad_k, grad_v] = grad_buffers(*this, qv, kv, vv);
    kernels::attention_backward(optional_ref(grad_q), optional_ref(grad_k), optional_ref(grad_v),
                                g.ref(), qv.ref(), kv.ref(), vv.ref(), probs.get(name()).ref(),
                                params);
    return {grad_q, grad_k, grad_v};
  }
};

// The flash kernels' node (kernels::use_flash_attention): no probs; the backward
// recomputes them from q, k, the mask, the bias and each row's log-sum-exp.
struct FlashAttentionBackward final : Node {
  SavedTensor q, k, v, out, lse;  // lse: (B, H, T) float32
  Tensor mask, bias;              // the options' own tensors (not differentiated)
  Dims scores;                    // (B, H, T, S)
  kernels::AttentionParams params;

  FlashAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor mask,
                         Tensor bias, Dims scores, kernels::AttentionParams params)
      : q(std::move(q)),
        k(std::move(k)),
        v(std::move(v)),
        out(std::move(out)),
        lse(std::move(lse)),
        mask(std::move(mask)),
        bias(std::move(bias)),
        scores(scores),
        params(params) {}
  const char* name() const override { return kOp; }

  std::vector<Tensor> backward(const Tensor& grad_out) override {
    const Tensor& qv = q.get(name());
    const Tensor& kv = k.get(name());
    const Tensor& vv = v.get(name());
    const Tensor g = kernel_operand(grad_out);
    const auto [grad_q, grad_k, grad_v] = grad_buffers(*this, qv, kv, vv);
    kernels::flash_attention_backward(
        optional_ref(grad_q), optional_ref(grad_k), optional_ref(grad_v), g.ref(), qv.ref(),
        kv.ref(), vv.ref(), out.get(name()).ref(), lse.get(name()).ref(),
        mask.defined() ? detail::broadcast_ref(mask, scores) : kernels::TensorRef{},
        bias.defined() ? detail::broadcast_ref(bias, scores) : kernels::TensorRef{}, params);
    return {grad_q, grad_k, grad_v};
  }
};

// True when `from` broadcasts to the 4-D `to` (aligned at the last dim, size-1 dims stretch).
bool broadcasts_to(const Dims& from, const Dims& to) {
  if (from.size() > to.size()) return false;
  const int lead = to.size() - from.size();
  for (int d = 0; d < from.size(); ++d)
    if (from[d] != 1 && from[d] != to[lead + d]) return false;
  return true;
}

void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, kOp, ": q ", q.sizes(), ", k ",
             k.sizes(), ", v ", v.sizes(), ": expected 4-D q (B, H, T, D) and k, v (B, KV, S, D)");
  detail::check_floating(kOp, q);
  detail::check_same_device_dtype(kOp, q, k);
  detail::check_same_device_dtype(kOp, q, v);
  LOOM_CHECK(k.sizes() == v.sizes(), kOp, ": k ", k.sizes(), ", v ", v.sizes(),
             ": k and v must have the same shape (B, KV, S, D)");
  LOOM_CHECK(q.size(0) == k.size(0), kOp, ": q ", q.sizes(), ", k ", k.sizes(),
             ": batch sizes differ (", q.size(0), " vs ", k.size(0), ")");
  LOOM_CHECK(q.size(3) == k.size(3), kOp, ": q ", q.sizes(), ", k ", k.sizes(),
             ": head dims differ (", q.size(3), " vs ", k.size(3), ")");
  LOOM_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, kOp, ": q ", q.sizes(), ", k ", k.sizes(),
             ": ", q.size(1), " query heads are not a multiple of ", k.size(1), " kv heads");
}

void check_options(const AttentionOptions& opt, const Tensor& q, const Dims& scores) {
  if (opt.mask.defined()) {
    const Tensor& m = opt.mask;
    LOOM_CHECK(m.dtype() == DType::Bool, kOp, ": mask ", detail::describe(m),
               ": expected a bool mask (true = attend)");
    LOOM_CHECK(m.device() == q.device(), kOp, ": mask on ", m.device(), ", q on ", q.device(),
               ": tensors are on different devices; move one with to()");
    LOOM_CHECK(broadcasts_to(m.sizes(), scores), kOp, ": mask ", m.sizes(),
               " does not broadcast to (B, H, T, S) = ", scores);
  }
  if (opt.bias.defined()) {
    const Tensor& b = opt.bias;
    detail::check_same_device_dtype(kOp, q, b);
    LOOM_CHECK(broadcasts_to(b.sizes(), scores), kOp, ": bias ", b.sizes(),
               " does not broadcast to (B, H, T, S) = ", scores);
    LOOM_CHECK(!(grad_mode() && b.requires_grad()), kOp, ": bias ", b.sizes(),
               " requires grad, but the bias is not differentiated; pass bias.detach()");
  }
  LOOM_CHECK(opt.dropout_p >= 0.0 && opt.dropout_p < 1.0, kOp, ": dropout_p = ", opt.dropout_p,
             ": expected a probability in [0, 1)");
  LOOM_CHECK(opt.dropout_p == 0.0 || opt.generator != nullptr, kOp, ": dropout_p = ", opt.dropout_p,
             ": dropout needs a generator (AttentionOptions::generator)");
  for (const int64_t w : {opt.window_left, opt.window_right})
    LOOM_CHECK(w >= -1, kOp, ": window (", opt.window_left, ", ", opt.window_right,
               "): expected sizes >= 0, or -1 for no bound on that side");
  LOOM_CHECK(!(opt.window_left >= 0 || opt.window_right >= 0) || q.device().is_cpu(), kOp,
             ": a sliding window is implemented on the CPU only; q is on ", q.device(),
             " (use full attention there, or move the tensors with to(cpu))");
}

// The window in the kernel's form: both sides bounded and clipped to what can matter (the
// first key seen by the first query to the last key seen by the last), right = 0 when
// causal; (-1, -1) without a window.
void set_window(kernels::AttentionParams& p, const AttentionOptions& opt, int64_t T, int64_t S) {
  if (opt.window_left < 0 && opt.window_right < 0) return;
  const int64_t most_left = std::max<int64_t>(S - 1, 0), most_right = std::max<int64_t>(T - 1, 0);
  p.window_left = opt.window_left < 0 ? most_left : std::min(opt.window_left, most_left);
  p.window_right = opt.causal             ? 0
                   : opt.window_right < 0 ? most_right
                                          : std::min(opt.window_right, most_right);
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt) {
  check_qkv(q, k, v);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2), D = q.size(3);
  const Dims scores{B, H, T, S};
  check_options(opt, q, scores);

  kernels::AttentionParams params;
  params.scale = opt.scale != 0.0 ? opt.scale : 1.0 / std::sqrt(double(D));
  params.causal = opt.causal;
  set_window(params, opt, T, S);
  params.dropout_p = opt.dropout_p;
  if (opt.dropout_p > 0.0) {
    params.seed = opt.generator->seed;
    params.offset = opt.generator->take(uint64_t(scores.numel()));
  }
  const Tensor qc = kernel_operand(q), kc = kernel_operand(k), vc = kernel_operand(v);
  const bool recording = should_record({&qc, &kc, &vc});
  Tensor out = heads_buffer(q);  // out: (B, H, T, D)
  if (kernels::use_flash_attention(qc.ref(), params)) {
    Tensor lse = empty({B, H, T}, DType::F32, q.device());
    kernels::flash_attention_forward(
        out.ref(), lse.ref(), qc.ref(), kc.ref(), vc.ref(),
        opt.mask.defined() ? detail::broadcast_ref(opt.mask, scores) : kernels::TensorRef{},
        opt.bias.defined() ? detail::broadcast_ref(opt.bias, scores) : kernels::TensorRef{},
        params);
    if (recording)
      record<FlashAttentionBackward>(out, {&qc, &kc, &vc}, qc, kc, vc, out, lse, opt.mask,
                                     opt.bias, scores, params);
    return out;
  }
  const Dims saved{B, H, T, params.windowed() ? params.band() : S};
  Tensor probs = recording ? empty(saved, q.dtype(), q.device()) : Tensor();  // P or its band
  const kernels::TensorRef mask =
      opt.mask.defined() ? detail::broadcast_ref(opt.mask, scores) : kernels::TensorRef{};
  const kernels::TensorRef bias =
      opt.bias.defined() ? detail::broadcast_ref(opt.bias, scores) : kernels::TensorRef{};
  kernels::attention_forward(out.ref(), optional_ref(probs), qc.ref(), kc.ref(), vc.ref(), mask,
                             bias, params);
  if (recording) record<AttentionBackward>(out, {&qc, &kc, &vc}, qc, kc, vc, probs, params);
  return out;
}

}  // namespace loom::ag
