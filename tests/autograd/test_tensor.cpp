// Tensor handle: factories, in-place writes on views, values out, printing, errors.
#include <sstream>

#include "common/op_spec.h"

namespace loom::test {
namespace {

using namespace loom::ag;

TEST_CASE("factories") {
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0));
  CHECK(full({2}, 2.5, DType::F64).to_vector<double>() == std::vector<double>{2.5, 2.5});
  CHECK(arange(4).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(arange(3, DType::F32).to_vector<float>() == std::vector<float>{0, 1, 2});
  CHECK(scalar(3.0).dim() == 0);
  CHECK(scalar(3.0).item<float>() == 3.0f);
  Generator a(9), b(9);
  CHECK(randn({5}, a).to_vector<float>() == randn({5}, b).to_vector<float>());
  check_error([] { empty({2, -1}); }, "empty: shape [2,-1]: sizes must be non-negative");
  check_error([] { from_vector<float>({1, 2, 3}, {2, 2}); }, "from_vector: 3 values for shape [2,2]");
}

TEST_CASE("in-place writes on strided views touch only the view") {
  Tensor x = zeros({4, 4});
  x.slice(1, 0, 4, 2).fill_(1.0);  // columns 0 and 2
  CHECK(sum(x).item<float>() == 8);
  Generator gen(1);
  Tensor y = zeros({6});
  y.slice(0, 0, 6, 2).uniform_(gen, 5.0, 6.0);
  const auto v = y.to_vector<float>();
  for (int i = 0; i < 6; ++i) CHECK(((i % 2 == 0) ? (v[i] >= 5 && v[i] < 6) : v[i] == 0));
  Tensor z = zeros({2, 3});
  z.transpose(0, 1).copy_(arange(6, DType::F32).view({3, 2}));
  CHECK(z.to_vector<float>() == std::vector<float>{0, 2, 4, 1, 3, 5});
  z.add_(ones({3}), 2.0);  // broadcast
  CHECK(z.to_vector<float>() == std::vector<float>{2, 4, 6, 3, 5, 7});
  const uint64_t v0 = z.storage()->version();
  z.mul_(0.5);
  CHECK(z.storage()->version() == v0 + 1);
}

TEST_CASE("values out and printing") {
  const Tensor x = from_vector<float>({1, 2, 3, 4}, {2, 2});
  CHECK(x.transpose(0, 1).to_vector<float>() == std::vector<float>{1, 3, 2, 4});
  std::ostringstream os;
  os << x;
  CHECK(os.str() == "float32 [2,2] {1, 2, 3, 4}");
  check_error([&] { x.item<float>(); }, "item: [2,2]: expected a one-element tensor");
  check_error([&] { x.data<double>(); }, "data: tensor is float32, asked for float64");
  check_error([&] { x.size(2); }, "size: dim 2 is out of range for a tensor of 2 dimensions");
}

}  // namespace
}  // namespace loom::test
