// Every CUDA kernel through its op, against the CPU op on the same inputs: outputs and
// input gradients, float32 within 1e-5 relative to the tensor's scale (GEMM-based ops
// 1e-5 too: TF32 is off), plus float64 gradient checks run on the GPU.
#include "autograd/gradcheck.h"
#include "cuda/compare.h"
#include "kernels/cuda/runtime.h"
#include "kernels/reduce.h"
#include "optim/clip.h"

namespace loom::test {
namespace {

constexpr double kF32 = 1e-5;

TEST_CASE("cuda: to(device) round trip, cross-device errors, allocator reuse") {
  const Tensor x = random({3, 5}, 1, DType::F32, -1, 1, false);
  const Tensor g = x.to(gpu());
  CHECK(g.device() == gpu());
  CHECK(bitwise_equal(g.to(Device::cpu()), x));
  CHECK(
      bitwise_equal(x.transpose(0, 1).to(gpu()).to(Device::cpu()), x.transpose(0, 1).contiguous()));
  CHECK_THROWS_WITH_AS(ag::add(x, g), doctest::Contains("different devices"), Error);
  const auto before = kernels::cuda::allocator_stats(0);
  for (int i = 0; i < 10; ++i) (void)ag::exp(g);
  const auto after = kernels::cuda::allocator_stats(0);
  CHECK(after.reuses >= before.reuses + 9);
  for (DType t : {DType::F64, DType::I64, DType::I32, DType::Bool, DType::BF16}) {
    INFO("dtype ", t);
    const Tensor back = g.to(t).to(DType::F32).to(Device::cpu());
    const Tensor want = t == DType::BF16 ? back : x.to(t).to(DType::F32);
    CHECK(bitwise_equal(back, want));
  }
  CHECK(rel_error(g.to(DType::BF16).to(DType::F32), g) < 4e-3);
}

TEST_CASE("cuda: unary ops, forward and backward") {
  using F = std::function<Tensor(const Tensors&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"neg", [](const Tensors& t) { return ag::neg(t[0]); }},
      {"exp", [](const Tensors& t) { return ag::exp(t[0]); }},
      {"log", [](const Tensors& t) { return ag::log(t[0] + 2.0); }},
      {"sqrt", [](const Tensors& t) { return ag::sqrt(t[0] + 2.0); }},
      {"rsqrt", [](const Tensors& t) { return ag::rsqrt(t[0] + 2.0); }},
      {"tanh", [](const Tensors& t) { return ag::tanh(t[0]); }},
      {"relu", [](const Tensors& t) { return ag::relu(t[0]); }},
      {"gelu", [](const Tensors& t) { return ag::gelu(t[0]); }},
      {"sigmoid", [](const Tensors& t) { return ag::sigmoid(t[0]); }},
      {"pow", [](const Tensors& t) { return ag::pow(t[0] + 2.0, 1.5); }},
      {"affine/div/rdiv", [](const Tensors& t) { return ag::rdiv(3.0, t[0] * 2.0 + 3.0) / 7.0; }},
  };
  for (const auto& [name, f] : ops) {
    INFO(name);
    compare_devices(f, {random({7, 33}, 2)}, kF32);
    compare_devices(f, {random({33, 7}, 3).transpose(0, 1)}, kF32);  // strided input
  }
}

TEST_CASE("cuda: binary ops with broadcasting, compare, where") {
  using F = std::function<Tensor(const Tensors&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"add", [](const Tensors& t) { return ag::add(t[0], t[1]); }},
      {"sub", [](const Tensors& t) { return ag::sub(t[0], t[1]); }},
      {"mul", [](const Tensors& t) { return ag::mul(t[0], t[1]); }},
      {"div", [](const Tensors& t) { return ag::div(t[0], t[1] + 3.0); }},
      {"maximum", [](const Tensors& t) { return ag::maximum(t[0], t[1]); }},
      {"minimum", [](const Tensors& t) { return ag::minimum(t[0], t[1]); }},
      {"where(lt)",
       [](const Tensors& t) { return ag::where(ag::lt(t[0], t[1]), t[0], t[1] * 2.0); }},
  };
  for (const auto& [name, f] : ops) {
    INFO(name);
    compare_devices(f, {random({4, 5, 6}, 4), random({5, 1}, 5)}, kF32);
    compare_devices(f, {random({6, 5, 4}, 6).permute({2, 1, 0}), random({4, 5, 6}, 7)}, kF32);
  }
  const Tensor a = random({50}, 8, DType::F32, -1, 1, false),
               b = random({50}, 9, DType::F32, -1, 1, false);
  for (auto cmp : {ag::eq, ag::ne, ag::lt, ag::le, ag::gt, ag::ge})
    CHECK(bitwise_equal(cmp(a.to(gpu()), b.to(gpu())), cmp(a, b)));
}

TEST_CASE("cuda: reductions") {
  using F = std::function<Tensor(const Tensors&)>;
  const std::vector<std::pair<const char*, F>> ops = {
      {"sum all", [](const Tensors& t) { return ag::sum(t[0]); }},
      {"sum rows",
       [](const Tensors& t) {
         return ag::sum(t[0], {0, 1});
       }},
      {"sum last", [](const Tensors& t) { return ag::sum(t[0], {2}, true); }},
      {"mean mid", [](const Tensors& t) { return ag::mean(t[0], {1}); }},
      {"max last", [](const Tensors& t) { return ag::max(t[0], {2}); }},
      {"max all", [](const Tensors& t) { return ag::max(t[0]); }},
  };
  for (const auto& [name, f] : ops) {
    INFO(name);
    compare_devices(f, {random({9, 70, 300}, 10)}, kF32);
    compare_devices(f, {random({300, 70, 9}, 11).permute({2, 1, 0})}, kF32);
  }
}

TEST_CASE("cuda: sum_of_squares over many tensors and grad_norm equal the CPU's") {
  // Sizes around the 16384-element chunk, an empty tensor, float64 and bfloat16 too.
  Tensors cpu, gpu_list;
  int64_t seed = 20;
  for (const int64_t n : {0, 7, 16384, 16391, 100003}) {
    cpu.push_back(random({n}, uint64_t(seed++), DType::F32, -2, 2, false));
    gpu_list.push_back(cpu.back().to(gpu()));
  }
  cpu.push_back(random({50, 100}, uint64_t(seed++), DType::F64, -3, 3, false));
  gpu_list.push_back(cpu.back().to(gpu()));
  std::vector<kernels::TensorRef> cpu_refs, gpu_refs;
  for (const Tensor& t : cpu) cpu_refs.push_back(t.ref());
  for (const Tensor& t : gpu_list) gpu_refs.push_back(t.ref());
  const double want = kernels::sum_of_squares(cpu_refs);
  const double got = kernels::sum_of_squares(gpu_refs);
  CHECK(got == doctest::Approx(want).epsilon(1e-12));
  CHECK(kernels::sum_of_squares(gpu_refs) == got);  // the same bits every time
  // bfloat16: against the CPU's sum over the same (rounded) values in float32.
  const Tensor b16 = random({40000}, 30, DType::F32, -1, 1, false).to(gpu()).to(DType::BF16);
  const Tensor b32 = b16.to(DType::F32).to(Device::cpu());
  const kernels::TensorRef b16_ref = b16.ref(), b32_ref = b32.ref();
  CHECK(kernels::sum_of_squares({&b16_ref, 1}) ==
        doctest::Approx(kernels::sum_of_squares({&b32_ref, 1})).epsilon(1e-12));
  // grad_norm and clip_grad_norm of GPU parameters, one of them with a strided gradient.
  ag::NamedTensors on_cpu, on_gpu;
  for (size_t i = 0; i < cpu.size(); ++i) {
    for (auto* list : {&on_cpu, &on_gpu}) {
      Tensor p = (list == &on_cpu ? cpu[i] : gpu_list[i]).clone().detach().set_requires_grad();
      p.set_grad((list == &on_cpu ? cpu[i] : gpu_list[i]) * 0.5);
      std::string name = "p";
      name += std::to_string(i);
      list->push_back({name, p});
    }
  }
  Tensor strided = random({30, 20}, 31, DType::F32, -1, 1, false);
  for (auto* list : {&on_cpu, &on_gpu}) {
    Tensor p = ag::zeros({20, 30}, DType::F32, list == &on_cpu ? Device::cpu() : gpu());
    p.set_requires_grad();
    p.set_grad((list == &on_cpu ? strided : strided.to(gpu())).transpose(0, 1));
    list->push_back({"strided", p});
  }
  CHECK(optim::grad_norm(on_gpu) == doctest::Approx(optim::grad_norm(on_cpu)).epsilon(1e-12));
  const double norm = optim::clip_grad_norm(on_gpu, 1.0);
  CHECK(norm == doctest::Approx(optim::grad_norm(on_cpu)).epsilon(1e-12));
  CHECK(optim::grad_norm(on_gpu) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("cuda: softmax, log_softmax, layer_norm, cross_entropy") {
  compare_devices([](const Tensors& t) { return ag::softmax(t[0] * 5.0); }, {random({6, 1000}, 12)},
                  kF32);
  compare_devices([](const Tensors& t) { return ag::log_softmax(t[0] * 5.0); },
                  {random({6, 3, 517}, 13)}, kF32);
  compare_devices(
      [](const Tensors& t) { return ag::layer_norm(t[0] * 3.0 + 1.0, {512}, t[1], t[2]); },
      {random({37, 512}, 14), random({512}, 15), random({512}, 16)}, kF32);
  compare_devices(
      [](const Tensors& t) {
        return ag::layer_norm(t[0], {8, 9});
      },
      {random({5, 8, 9}, 17)}, kF32);
  Tensor target = ag::from_vector<int64_t>({3, 0, 7999, 1, 5, 0, 42, 100}, {8});
  for (double eps : {0.0, 0.1}) {
    INFO("label smoothing ", eps);
    compare_devices(
        [&](const Tensors& t) {
          return ag::cross_entropy(t[0] * 4.0, target.to(t[0].device()), /*ignore_index=*/0, eps);
        },
        {random({8, 8000}, 18)}, kF32);
  }
  const Tensor bad = ag::from_vector<int64_t>({3, 8000}, {2});
  CHECK_THROWS_WITH_AS(ag::cross_entropy(random({2, 8000}, 19).to(gpu()), bad.to(gpu())),
                       doctest::Contains("target 8000 at row 1"), Error);
}

TEST_CASE("cuda: embedding and index_select, forward and deterministic backward") {
  const Tensor ids = ag::from_vector<int64_t>({4, 1, 4, 0, 9, 4, 1, 2, 4, 4, 3, 0}, {3, 4});
  compare_devices([&](const Tensors& t) { return ag::embedding(ids.to(t[0].device()), t[0]); },
                  {random({10, 64}, 20)}, kF32);
  // The backward sums each row in id order on both devices: bitwise equal.
  const Tensor w = random({10, 64}, 21), wg = w.detach().to(gpu()).set_requires_grad();
  const Tensor r = random({3, 4, 64}, 22, DType::F32, -1, 1, false);
  ag::sum(ag::embedding(ids, w) * r).backward();
  ag::sum(ag::embedding(ids.to(gpu()), wg) * r.to(gpu())).backward();
  CHECK(bitwise_equal(wg.grad(), w.grad()));
  CHECK_THROWS_WITH_AS(ag::embedding(ag::from_vector<int64_t>({1, 10}, {2}).to(gpu()), wg),
                       doctest::Contains("id 10 at position [1]"), Error);
  const Tensor index = ag::from_vector<int64_t>({2, 0, 2, 1}, {4});
  compare_devices(
      [&](const Tensors& t) { return ag::index_select(t[0], 1, index.to(t[0].device())); },
      {random({5, 3, 7}, 23)}, kF32);
}

TEST_CASE("cuda: matmul (2-D, batched, broadcast, transposed), linear") {
  using F = std::function<Tensor(const Tensors&)>;
  const F mm = [](const Tensors& t) { return ag::matmul(t[0], t[1]); };
  compare_devices(mm, {random({33, 65}, 24), random({65, 17}, 25)}, kF32);
  compare_devices(mm, {random({4, 33, 65}, 26), random({4, 65, 17}, 27)}, kF32);
  compare_devices(mm, {random({4, 33, 65}, 28), random({65, 17}, 29)}, kF32);    // x @ w
  compare_devices(mm, {random({2, 1, 9, 5}, 30), random({3, 5, 7}, 31)}, kF32);  // batch broadcast
  compare_devices(mm, {random({65, 33}, 32).transpose(0, 1), random({17, 65}, 33).transpose(0, 1)},
                  kF32);
  compare_devices([](const Tensors& t) { return ag::linear(t[0], t[1], t[2]); },
                  {random({3, 11, 64}, 34), random({96, 64}, 35), random({96}, 36)}, kF32);
  compare_devices(mm, {random({6, 0}, 37), random({0, 4}, 38)}, kF32);  // K = 0: zeros
}

struct AttentionCase {
  const char* name;
  int64_t H, KV, T, S;
  bool causal, mask, bias;
  double dropout;
  int64_t D = 16;
};

// The attention op on the GPU against the CPU's for each case: output and q, k, v
// gradients of a (B, T, H, D)-strided q, contiguous k and v. The mask hides a random
// ~25% of the keys per batch entry, all of them for batch entry 1 when `hide_all`.
void compare_attention(const std::vector<AttentionCase>& cases, bool hide_all = false) {
  for (const AttentionCase& c : cases) {
    INFO(c.name);
    const int64_t B = 3, D = c.D;
    Tensor keys = random({B, 1, 1, c.S}, 40, DType::F32, -0.3, 1, false);
    if (hide_all)  // batch entry 1: every key below 0
      keys = keys * ag::from_vector<float>({1, 0, 1}, {B, 1, 1, 1}) -
             ag::from_vector<float>({0, 1, 0}, {B, 1, 1, 1});
    const Tensor mask = ag::gt(keys, ag::zeros({}));
    const Tensor bias = random({1, c.H, c.T, c.S}, 41, DType::F32, -1, 1, false);
    auto f = [&](const Tensors& t) {
      ag::AttentionOptions o;
      o.causal = c.causal;
      if (c.mask) o.mask = mask.to(t[0].device());
      if (c.bias) o.bias = bias.to(t[0].device());
      kernels::Generator gen(7);
      o.dropout_p = c.dropout;
      o.generator = &gen;
      return ag::scaled_dot_product_attention(t[0], t[1], t[2], o);
    };
    // q from a (B, T, H, D) layout, transposed: strided heads as the model passes them.
    compare_devices(f,
                    {random({B, c.T, c.H, D}, 42).transpose(1, 2), random({B, c.KV, c.S, D}, 43),
                     random({B, c.KV, c.S, D}, 44)},
                    kF32);
  }
}

const std::vector<AttentionCase> kAttentionCases = {
    {"mha", 4, 4, 9, 9, false, false, false, 0.0},
    {"gqa causal", 4, 2, 7, 12, true, false, false, 0.0},
    {"mqa key mask", 4, 1, 6, 10, false, true, false, 0.0},
    {"bias + causal", 2, 2, 8, 8, true, false, true, 0.0},
    {"dropout gqa", 4, 2, 8, 11, true, true, false, 0.3}};

TEST_CASE("cuda: attention (MHA, GQA, causal, masks, ALiBi bias, dropout)") {
  REQUIRE(!kernels::cuda::flash_attention());
  compare_attention(kAttentionCases);
}

// Restores the flash switch at the end of a scope.
struct FlashAttentionOn {
  bool before = kernels::cuda::flash_attention();
  FlashAttentionOn() { kernels::cuda::set_flash_attention(true); }
  ~FlashAttentionOn() { kernels::cuda::set_flash_attention(before); }
};

TEST_CASE("cuda: flash attention equals the CPU's (head dims 16-128, long keys, T != S, dropout, hidden rows)") {
  const FlashAttentionOn flash;
  compare_attention(kAttentionCases);
  compare_attention({{"d64 causal T > S", 8, 8, 20, 13, true, true, true, 0.1, 64},
                     {"d100 gqa S > T", 6, 3, 5, 41, false, true, false, 0.0, 100},
                     {"d128 long keys dropout", 2, 1, 33, 300, true, false, true, 0.2, 128},
                     {"d40 mqa", 4, 1, 17, 17, false, false, false, 0.0, 40}});
  compare_attention({{"a batch entry with every key hidden", 4, 2, 6, 9, false, true, true, 0.1}},
                    /*hide_all=*/true);
  // The flash node keeps no probs: (B, H, T) floats instead of (B, H, T, S).
  const Tensor q = random({2, 4, 64, 32}, 45).to(gpu()).detach().set_requires_grad();
  const Tensor kv = random({2, 4, 64, 32}, 46, DType::F32, -1, 1, false).to(gpu());
  const auto before = int64_t(kernels::cuda::allocator_stats(0).allocated_bytes);
  const Tensor out = ag::scaled_dot_product_attention(q, kv, kv, {});
  const int64_t held = int64_t(kernels::cuda::allocator_stats(0).allocated_bytes) - before;
  const int64_t probs_bytes = 2 * 4 * 64 * 64 * 4;  // what the materialising node keeps
  CHECK(held < out.numel() * 4 + probs_bytes / 2);
  ag::sum(out).backward();
  CHECK(q.grad().defined());
}

TEST_CASE("cuda: random fills and dropout masks equal the CPU's") {
  kernels::Generator a(5), b(5);
  CHECK(bitwise_equal(ag::rand({1000}, a).to(gpu()), ag::rand({1000}, b)));  // same counters
  Tensor u = ag::empty({1000}, DType::F32, gpu());
  kernels::Generator c(11), d(11);
  u.uniform_(c, -2, 3);
  CHECK(bitwise_equal(u, ag::empty({1000}).uniform_(d, -2, 3)));
  Tensor n = ag::empty({1000}, DType::F64, gpu());
  kernels::Generator e(12), f(12);
  n.normal_(e, 1, 2);
  CHECK(rel_error(n, ag::empty({1000}, DType::F64).normal_(f, 1, 2)) < 1e-12);
  const Tensor x = ag::ones({64, 64});
  kernels::Generator g(13), h(13);
  CHECK(bitwise_equal(ag::dropout(x.to(gpu()), 0.4, true, g), ag::dropout(x, 0.4, true, h)));
}

TEST_CASE("cuda: fused dropout and relu_dropout (partial keep word, strided, bf16) equal the CPU's") {
  auto f = [](const Tensors& t) {
    kernels::Generator gen(17, 5);
    return ag::dropout(t[0], 0.3, true, gen);
  };
  compare_devices(f, {random({1013}, 46)}, 0.0);  // forward and gradient bit for bit
  compare_devices(f, {random({29, 37}, 47).transpose(0, 1)}, 0.0);
  auto relu_f = [](const Tensors& t) {
    kernels::Generator gen(18, 3);
    return ag::relu_dropout(t[0], 0.3, true, gen);
  };
  compare_devices(relu_f, {random({1013}, 49)}, 0.0);
  compare_devices(relu_f, {random({29, 37}, 50).transpose(0, 1)}, 0.0);
  // bf16 has no CPU kernel: the GPU's bf16 dropout against its own f32 run, rounded.
  kernels::Generator a(8), b(8);
  const Tensor x = random({77, 33}, 48, DType::F32, -1, 1, false).to(gpu());
  const Tensor y16 = ag::dropout(x.to(DType::BF16), 0.5, true, a).to(DType::F32);
  const Tensor y32 = ag::dropout(x.to(DType::BF16).to(DType::F32), 0.5, true, b);
  CHECK(bitwise_equal(y16, y32.to(DType::BF16).to(DType::F32)));
}

TEST_CASE("cuda: float64 gradient checks on the GPU") {
  auto on_gpu = [](Tensors xs) {
    for (Tensor& x : xs) {
      const bool grad = x.requires_grad();
      x = x.detach().to(gpu());
      if (grad) x.set_requires_grad();
    }
    return xs;
  };
  auto check = [](const ag::TensorFn& f, const Tensors& xs) {
    const ag::GradcheckResult r = ag::gradcheck(f, xs);
    CHECK_MESSAGE(r.ok, r.message);
  };
  const DType d = DType::F64;
  check([](const Tensors& t) { return ag::layer_norm(t[0], {6}, t[1], t[2]); },
        on_gpu({random({4, 6}, 50, d), random({6}, 51, d), random({6}, 52, d)}));
  check([](const Tensors& t) { return ag::log_softmax(t[0]); }, on_gpu({random({3, 7}, 53, d)}));
  check([](const Tensors& t) { return ag::matmul(t[0], t[1]); },
        on_gpu({random({2, 3, 4}, 54, d),
                random({4, 5}, 55, d).transpose(0, 1).contiguous().transpose(0, 1)}));
  const Tensor target = ag::from_vector<int64_t>({1, 0, 4}, {3}).to(gpu());
  check([&](const Tensors& t) { return ag::cross_entropy(t[0], target, 0, 0.1); },
        on_gpu({random({3, 5}, 56, d)}));
  check(
      [](const Tensors& t) {
        ag::AttentionOptions o;
        o.causal = true;
        return ag::scaled_dot_product_attention(t[0], t[1], t[2], o);
      },
      on_gpu(
          {random({1, 4, 3, 4}, 57, d), random({1, 2, 5, 4}, 58, d), random({1, 2, 5, 4}, 59, d)}));
  check([](const Tensors& t) { return ag::sum(ag::gelu(t[0]) * t[1], {1}); },
        on_gpu({random({3, 4}, 60, d), random({1, 4}, 61, d)}));
}

}  // namespace
}  // namespace loom::test
