// index_select: exact values along each dim (int32/int64 index, strided x and index, any
// dtype), gradients with repeated and missing indices (gradcheck, contiguous and not, and
// exact), thread-count independence of the scatter-add, and error messages.
#include <omp.h>

#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

// By definition: the slices x.narrow(dim, index[k], 1) concatenated along dim.
Tensor concat_index_select(const Tensor& x, int dim, const std::vector<int64_t>& index) {
  std::vector<Tensor> parts;
  for (int64_t k : index) parts.push_back(x.narrow(dim, k, 1));
  return concat(parts, dim);
}

TEST_CASE("index_select: exact slices along each dim, repeats, int32/int64, strides, dtypes") {
  const Tensor x = arange(12, DType::F32).view({3, 4});
  const Tensor rows = index_select(x, 0, from_vector<int64_t>({2, 0, 2}, {3}));
  CHECK(rows.sizes() == Dims{3, 4});
  CHECK(rows.to_vector<float>() == std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  const Tensor cols = index_select(x, -1, from_vector<int32_t>({3, 1}, {2}));
  CHECK(cols.sizes() == Dims{3, 2});
  CHECK(cols.to_vector<float>() == std::vector<float>{3, 1, 7, 5, 11, 9});
  CHECK(index_select(x, 1, from_vector<int64_t>({}, {0})).sizes() == Dims{3, 0});
  // x transposed (strides (1, 4)) and an index with stride 2.
  const Tensor xt = x.transpose(0, 1);                                                 // (4, 3)
  const Tensor idx = from_vector<int64_t>({1, 9, 3, 9, 1, 9}, {6}).slice(0, 0, 6, 2);  // 1, 3, 1
  CHECK(index_select(xt, 0, idx).to_vector<float>() ==
        std::vector<float>{1, 5, 9, 3, 7, 11, 1, 5, 9});
  CHECK(index_select(xt, 1, from_vector<int64_t>({2}, {1})).to_vector<float>() ==
        std::vector<float>{8, 9, 10, 11});
  // Non-float dtypes (masks and ids in decoding states).
  const Tensor b = from_vector<int64_t>({1, 0, 0, 1}, {2, 2}).to(DType::Bool);
  CHECK(index_select(b, 0, from_vector<int64_t>({1, 1, 0}, {3}))
            .to(DType::I64)
            .to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 1, 1, 0});
  CHECK(index_select(arange(5, DType::I64), 0, from_vector<int32_t>({4, 4}, {2}))
            .to_vector<int64_t>() == std::vector<int64_t>{4, 4});
}

TEST_CASE("index_select: gradients along each dim with repeated and unused indices") {
  const std::vector<int64_t> index = {2, 0, 2, 2};  // slice 1 unused, slice 2 three times
  for (int dim : {0, 1, 2, -1}) {
    INFO("dim ", dim);
    check_op(
        {.name = "index_select",
         .op = [&](const Tensors& in) { return index_select(in[0], dim, in[1]); },
         .reference = [&](const Tensors& in) { return concat_index_select(in[0], dim, index); },
         .differentiable = {true, false},
         .make_inputs =
             [&](DType dtype) {
               kernels::Generator gen(5);
               return Tensors{(rand({3, 4, 3}, gen, DType::F64) * 2.0 - 1.0).to(dtype),
                              from_vector(index, {4})};
             }});
  }
  Tensor x = zeros({3, 2}).set_requires_grad();
  index_select(x, 0, from_vector<int32_t>({1, 1, 2, 1}, {4}))
      .backward(from_vector<float>({1, 2, 3, 4, 5, 6, 10, 20}, {4, 2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 14, 26, 5, 6});
}

TEST_CASE("index_select: the scatter-add gives the same bits on 1 and 2 threads") {
  const int64_t n = 37, K = 4096, C = 40;
  std::vector<int64_t> id(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) id[size_t(k)] = (k * 7919) % n;
  const Tensor index = from_vector(id, {K});
  kernels::Generator gen(1);
  const Tensor g = randn({C, K}, gen);
  auto grad = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor x = zeros({C, n}).set_requires_grad();
    index_select(x, 1, index).backward(g);
    return x.grad().to_vector<float>();
  };
  const int saved = omp_get_max_threads();
  const std::vector<float> one = grad(1), two = grad(2);
  omp_set_num_threads(saved);
  CHECK(one == two);
}

TEST_CASE("index_select errors name the operands and the bad index") {
  const Tensor x = ones({4, 3});
  check_error(
      [&] {
        index_select(x, 0, from_vector<int64_t>({0, 2, 5}, {3}));
      },
      "index_select: x [4,3], dim 0, index [3]: index 5 at position 2 is out of range "
      "for size 4");
  check_error([&] { index_select(x, 1, from_vector<int32_t>({-1}, {1})); },
              "index_select: x [4,3], dim 1, index [1]: index -1 at position 0 is out of range "
              "for size 3");
  check_error(
      [&] {
        index_select(x, 0, from_vector<int64_t>({0, 1}, {1, 2}));
      },
      "index_select: index int64 [1,2]: expected a 1-D tensor of indices; flatten() it first");
  check_error([&] { index_select(x, 0, ones({2})); },
              "index_select: index float32 [2]: expected an int32 or int64 tensor of indices");
  check_error([&] { index_select(x, 2, from_vector<int64_t>({0}, {1})); },
              "index_select: dim 2 is out of range for a tensor of 2 dimensions (expected -2..1)");
}

}  // namespace
}  // namespace loom::test
