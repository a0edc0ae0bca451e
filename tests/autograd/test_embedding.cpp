// embedding: exact forward values (int64 and int32 ids, any shape, strided ids and
// weight), gradients with repeated ids (gradcheck and exact), thread-count independence
// of the scatter-add, and error messages.
#include <omp.h>

#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// out[i, :] = weight[ids[i], :] by definition, in double.
Tensor naive_embedding(const Tensor& ids, const Tensor& weight) {
  const std::vector<int64_t> id = ids.to(DType::I64).to_vector<int64_t>();
  const std::vector<double> w = weight.to(DType::F64).to_vector<double>();
  const int64_t C = weight.size(1);
  std::vector<double> out;
  for (int64_t v : id) out.insert(out.end(), w.begin() + v * C, w.begin() + (v + 1) * C);
  Dims shape = ids.sizes();
  shape.push_back(C);
  return from_vector(out, shape).to(weight.dtype());
}

TEST_CASE("embedding: exact rows for int64 and int32 ids of any shape") {
  const Tensor w = arange(12, DType::F32).view({4, 3});
  const Tensor ids = from_vector<int64_t>({3, 0, 1, 3}, {2, 2});
  const Tensor out = embedding(ids, w);
  CHECK(out.sizes() == Dims{2, 2, 3});
  CHECK(out.to_vector<float>() == std::vector<float>{9, 10, 11, 0, 1, 2, 3, 4, 5, 9, 10, 11});
  CHECK(embedding(from_vector<int32_t>({2}, {1}), w).to_vector<float>() ==
        std::vector<float>{6, 7, 8});
  CHECK(embedding(full({}, 1, DType::I64), w).sizes() == Dims{3});  // 0-dim ids -> [C]
  // Strided ids (a transposed view) and a strided weight (a transposed view).
  CHECK(embedding(ids.transpose(0, 1), w).to_vector<float>() ==
        std::vector<float>{9, 10, 11, 3, 4, 5, 0, 1, 2, 9, 10, 11});
  const Tensor wt = arange(12, DType::F32).view({3, 4}).transpose(0, 1);  // [4, 3], strides (1, 4)
  CHECK(embedding(from_vector<int64_t>({1}, {1}), wt).to_vector<float>() ==
        std::vector<float>{1, 5, 9});
}

TEST_CASE("embedding: gradients with repeated ids") {
  check_op({.name = "embedding",
            .op = [](const Tensors& in) { return embedding(in[0], in[1]); },
            .reference = [](const Tensors& in) { return naive_embedding(in[0], in[1]); },
            .differentiable = {false, true},
            .make_inputs =
                [](DType dtype) {
                  kernels::Generator gen(3);
                  return Tensors{from_vector<int64_t>({1, 3, 1, 0, 3, 3}, {2, 3}),
                                 (rand({5, 4}, gen, DType::F64) * 2.0 - 1.0).to(dtype)};
                }});
  Tensor w = zeros({4, 3}).set_requires_grad();
  const Tensor out = embedding(from_vector<int32_t>({1, 1, 2, 1}, {4}), w);
  out.backward(from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30}, {4, 3}));
  CHECK(w.grad().to_vector<float>() == std::vector<float>{0, 0, 0, 15, 27, 39, 7, 8, 9, 0, 0, 0});
}

TEST_CASE("embedding: the scatter-add gives the same bits on 1 and 2 threads") {
  const int64_t n = 4096, V = 37, C = 200;
  std::vector<int64_t> id(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) id[size_t(i)] = (i * 7919) % V;
  const Tensor ids = from_vector(id, {n});
  kernels::Generator gen(1);
  const Tensor g = randn({n, C}, gen);
  auto grad = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor w = zeros({V, C}).set_requires_grad();
    embedding(ids, w).backward(g);
    return w.grad().to_vector<float>();
  };
  const int saved = omp_get_max_threads();
  const std::vector<float> one = grad(1), two = grad(2);
  omp_set_num_threads(saved);
  CHECK(one == two);
}

TEST_CASE("embedding errors name the ids, the weight and the bad id") {
  const Tensor w = ones({4, 3});
  check_error(
      [&] {
        embedding(from_vector<int64_t>({0, 2, 5}, {3}), w);
      },
      "embedding: ids [3], weight [4,3]: id 5 at position [2] is out of range [0, 4)");
  check_error(
      [&] {
        embedding(from_vector<int32_t>({0, 1, -1, 2}, {2, 2}), w);
      },
      "embedding: ids [2,2], weight [4,3]: id -1 at position [1,0] is out of range [0, 4)");
  check_error([&] { embedding(ones({2}), w); },
              "embedding: ids float32 [2]: expected an int32 or int64 tensor of row indices");
  check_error([] { embedding(arange(2), ones({4})); },
              "embedding: weight float32 [4]: expected a 2-D floating-point [V, C] tensor");
}

}  // namespace
}  // namespace loom::test
