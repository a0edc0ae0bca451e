// A small RAII wrapper over the HDF5 C API (libhdf5 1.10), for checkpoints and golden
// files. Files, groups and datasets are move-only handles closed by their destructors.
// Datasets hold float32, float64, int64 or uint8 values with a shape (an empty shape is
// a scalar dataset); attributes are variable-length UTF-8 strings (as h5py writes them),
// int64 or float64 scalars, on files, groups and datasets. Names may be paths relative to
// the group ("step1/grad_w"); writing creates missing intermediate groups.
//
// Every failure throws loom::Error naming the file, the object path and what was asked:
//   h5: /runs/a/last.h5: /model/embed.weight: dataset not found
//   h5: golden.h5: /adamw/w0: expected int64 data, found float64
// HDF5's own error printing is switched off; its innermost message is appended to
// failures loom does not diagnose itself. This header is free of HDF5 types, so only
// recipes/h5.cpp includes <hdf5.h>.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "recipes/h5_write_driver.h"

namespace loom::recipes::h5 {

// The element types datasets may hold.
template <class T>
concept Element = std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, int64_t> ||
    std::same_as<T, uint8_t>;

// Values read from a dataset: row-major data and the shape ({} for a scalar).
template <Element T>
struct Array {
  std::vector<T> data;
  std::vector<int64_t> shape;
};

// Shared by files, groups and datasets: the handle, where it lives (for messages) and
// its attributes.
class Object {
 public:
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  Object(Object&& o) noexcept;
  Object& operator=(Object&& o) noexcept;
  virtual ~Object();

  const std::string& file_path() const { return file_; }
  const std::string& path() const { return path_; }  // "/model/embed.weight"

  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;  // sorted by name
  // Setting an attribute that exists replaces it.
  void set_string_attr(const std::string& name, const std::string& value);
  void set_int_attr(const std::string& name, int64_t value);
  void set_double_attr(const std::string& name, double value);
  std::string string_attr(const std::string& name) const;  // variable or fixed length
  int64_t int_attr(const std::string& name) const;         // any integer type
  double double_attr(const std::string& name) const;       // any floating type

 protected:
  Object(int64_t id, std::string file, std::string path);
  // "h5: <file>: <path>: " + what.
  [[noreturn]] void fail(const std::string& what) const;
  int64_t id_ = -1;
  std::string file_, path_;
};

class Dataset : public Object {
 public:
  std::vector<int64_t> shape() const;  // {} for a scalar
  std::string type_name() const;       // "float32", "int64", "uint8", "string", ...
  template <Element T>
  Array<T> read() const;
  // A tensor of the stored dtype (float32, float64 or int64) and shape, on the CPU.
  ag::Tensor read_tensor() const;
  // Where the data starts in the file (contiguous datasets; -1 when none is allocated):
  // for tools and fault-injection tests.
  int64_t file_offset() const;

 private:
  friend class Group;
  using Object::Object;
};

class Group : public Object {
 public:
  Group create_group(const std::string& name);  // creates missing parents too
  Group group(const std::string& name) const;   // opens an existing group
  Dataset dataset(const std::string& name) const;
  bool exists(const std::string& name) const;  // a group or dataset at this path
  bool is_group(const std::string& name) const;
  std::vector<std::string> children() const;  // names of the direct members, sorted
  // Every dataset below this group, as paths relative to it ("optim/step/embed.weight"),
  // depth first in name order.
  std::vector<std::string> datasets() const;
  // Calls fn on every dataset below this group, opened, in the order of datasets(). Each
  // member is opened once by its name in its own group (no walk from the root per dataset:
  // ~2x faster than dataset(name) for each of datasets() on a 531-dataset checkpoint).
  void for_each_dataset(const std::function<void(const Dataset&)>& fn) const;
  // Unlinks a member (HDF5 does not reclaim its space).
  void remove(const std::string& name);

  // Writes a new dataset of `shape` from contiguous row-major `data`; an existing one is
  // an error (checkpoints are written to fresh files). Returns it, still open (for its
  // attributes).
  template <Element T>
  Dataset write(const std::string& name, const T* data, const std::vector<int64_t>& shape);
  template <Element T>
  Dataset write(const std::string& name, const std::vector<T>& data,
                const std::vector<int64_t>& shape) {
    check_size(name, int64_t(data.size()), shape);
    return write(name, data.data(), shape);
  }
  template <Element T>
  Dataset write_scalar(const std::string& name, T value) {
    return write(name, &value, {});
  }
  // Any strides and float32 / float64 / int64; a CPU tensor. Never recorded on the tape.
  void write_tensor(const std::string& name, const ag::Tensor& t);

  template <Element T>
  Array<T> read(const std::string& name) const {
    return dataset(name).read<T>();
  }
  template <Element T>
  T read_scalar(const std::string& name) const;
  ag::Tensor read_tensor(const std::string& name) const { return dataset(name).read_tensor(); }

 protected:
  friend class File;
  using Object::Object;

 private:
  void check_size(const std::string& name, int64_t size, const std::vector<int64_t>& shape) const;
  std::string child_path(const std::string& name) const;
};

// A file is its root group ("/") plus the file handle.
class File : public Group {
 public:
  static File open(const std::string& path);     // read-only
  static File open_rw(const std::string& path);  // read-write, must exist
  // Creates, truncating an existing file. Written through loom's write driver
  // (h5_write_driver.h): a failed write (disk full, I/O error) is reported by flush() and
  // close() as an Error naming the file, the offset and the reason.
  static File create(const std::string& path);

  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  ~File() override;

  void flush();
  // Asks the OS to start writing the file's dirty pages to the disk now, without waiting
  // (Linux sync_file_range): a later fsync then has less left to wait for.
  void start_writeback();
  // Closes now and reports failures (the destructor closes silently). The file is released
  // once groups and datasets opened from it are destroyed too.
  void close();

 private:
  File(int64_t file_id, int64_t root_id, std::string path);
  void check_writes() const;
  int64_t file_id_ = -1;
  std::unique_ptr<WriteFailure> write_failure_;  // files made by create(); outlives the id
};

}  // namespace loom::recipes::h5
