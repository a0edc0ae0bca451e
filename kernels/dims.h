// Dims: a small fixed-capacity vector of int64 for sizes and strides (in elements, not
// bytes). Inline storage keeps a tensor's metadata in one allocation, which is most of
// what makes per-op overhead on tiny tensors small. Prints as [32,64].
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

#include "kernels/error.h"

namespace loom::kernels {

class Dims {
 public:
  static constexpr int kMax = 8;

  Dims() = default;
  Dims(std::initializer_list<int64_t> v) { assign(v.begin(), v.end()); }
  explicit Dims(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }
  template <class It> Dims(It first, It last) { assign(first, last); }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  int64_t back() const { return d_[n_ - 1]; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }

  void push_back(int64_t v) {
    LOOM_CHECK(n_ < kMax, "tensor: more than ", kMax, " dimensions are not supported");
    d_[n_++] = v;
  }
  void insert(int pos, int64_t v) {
    push_back(0);
    for (int i = n_ - 1; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
    --n_;
  }
  void resize(int n, int64_t fill = 0) {
    LOOM_CHECK(n <= kMax, "tensor: more than ", kMax, " dimensions are not supported");
    for (int i = n_; i < n; ++i) d_[i] = fill;
    n_ = n;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  // Product of all entries (1 for no entries): the element count of a shape.
  int64_t numel() const {
    int64_t p = 1;
    for (int i = 0; i < n_; ++i) p *= d_[i];
    return p;
  }

  bool operator==(const Dims& o) const { return n_ == o.n_ && std::equal(begin(), end(), o.begin()); }
  bool operator!=(const Dims& o) const { return !(*this == o); }

 private:
  template <class It> void assign(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  int64_t d_[kMax] = {};
  int n_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Dims& d) {
  os << '[';
  for (int i = 0; i < d.size(); ++i) os << (i ? "," : "") << d[i];
  return os << ']';
}

// Row-major (C order) strides of a shape.
inline Dims contiguous_strides(const Dims& sizes) {
  Dims s;
  s.resize(sizes.size());
  int64_t acc = 1;
  for (int i = sizes.size() - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= std::max<int64_t>(sizes[i], 1);
  }
  return s;
}

}  // namespace loom::kernels
