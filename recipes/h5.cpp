// HDF5 wrapper (see recipes/h5.h). Datasets are stored little-endian IEEE / two's
// complement (H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_STD_I64LE, H5T_STD_U8LE), contiguous
// layout; strings as scalar variable-length UTF-8, which h5py reads as `str`.
//
// file-size: one wrapper over one C API. Files, groups, datasets and attributes share the
// handle, error-stack and type helpers at the top, which would otherwise need an internal
// header carrying <hdf5.h> types; each part alone is small.
#include "recipes/h5.h"

#include <fcntl.h>

#include <hdf5.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <type_traits>
#include <utility>

#include "autograd/tape.h"

static_assert(std::is_same_v<hid_t, int64_t>, "h5.h stores HDF5 handles as int64_t");

namespace loom::recipes::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; library code must not print. The
// stack and this setting are per thread in the thread-safe build, hence once per thread.
void quiet() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

// "; HDF5: <innermost message>" from this thread's error stack (then cleared), or "".
std::string reason() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* s = static_cast<std::string*>(out);
        if (s->empty() && e->desc) *s = e->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? "" : "; HDF5: " + msg;
}

[[noreturn]] void fail_at(const std::string& file, const std::string& path,
                          const std::string& what) {
  throw Error(detail::cat("h5: ", file, ": ", path, ": ", what));
}

// A transient HDF5 handle (dataspace, datatype, attribute, property list).
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(Id&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  hid_t release() { return std::exchange(id_, -1); }  // the caller closes it now

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  return os.str() + ']';
}

// How element type T is held in memory and in files, and its name (as describe_type gives).
struct ElementType {
  hid_t mem, file;
  const char* name;
};
template <class T>
ElementType element_type() {
  if constexpr (std::is_same_v<T, float>) return {H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, "float32"};
  if constexpr (std::is_same_v<T, double>) return {H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, "float64"};
  if constexpr (std::is_same_v<T, int64_t>) return {H5T_NATIVE_INT64, H5T_STD_I64LE, "int64"};
  if constexpr (std::is_same_v<T, uint8_t>) return {H5T_NATIVE_UINT8, H5T_STD_U8LE, "uint8"};
}

// "float32", "int16", "uint8", "string", ... for messages and Dataset::type_name().
std::string describe_type(hid_t type) {
  const size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_STRING:
      return "string";
    default:
      return "an unsupported type (HDF5 class " + std::to_string(H5Tget_class(type)) + ")";
  }
}

// Whether the object at `name` under `id` is a group.
bool opens_as_group(hid_t id, const std::string& name) {
  const Id obj(H5Oopen(id, name.c_str(), H5P_DEFAULT), H5Oclose);
  return obj.ok() && H5Iget_type(obj.get()) == H5I_GROUP;
}

// Link creation property list that creates missing intermediate groups.
Id intermediate_groups() {
  Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  return lcpl;
}

Id scalar_space() { return Id(H5Screate(H5S_SCALAR), H5Sclose); }

Id utf8_string_type() {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

std::vector<int64_t> space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Replaces attribute `name` of `obj` by a scalar of `type` holding *value.
void write_attr(const Object& obj, hid_t id, const std::string& name, hid_t type, const void* value,
                const char* what) {
  if (obj.has_attr(name) && H5Adelete(id, name.c_str()) < 0)
    fail_at(obj.file_path(), obj.path(), "cannot replace attribute '" + name + "'" + reason());
  const Id space = scalar_space();
  const Id attr(H5Acreate2(id, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), type, value) < 0)
    fail_at(obj.file_path(), obj.path(),
            detail::cat("cannot write ", what, " attribute '", name, "'", reason()));
}

// Opens attribute `name`, checking it exists, holds one value and is of `type_class`.
Id open_attr(const Object& obj, hid_t id, const std::string& name, H5T_class_t type_class,
             const char* expected) {
  if (!obj.has_attr(name))
    fail_at(obj.file_path(), obj.path(), "attribute '" + name + "' not found");
  Id attr(H5Aopen(id, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.ok())
    fail_at(obj.file_path(), obj.path(), "cannot open attribute '" + name + "'" + reason());
  const Id type(H5Aget_type(attr.get()), H5Tclose);
  const Id space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != type_class)
    fail_at(obj.file_path(), obj.path(),
            detail::cat("attribute '", name, "': expected ", expected, ", found ",
                        describe_type(type.get())));
  if (numel(space_shape(space.get())) != 1)
    fail_at(obj.file_path(), obj.path(),
            detail::cat("attribute '", name, "': expected one value, found shape ",
                        shape_str(space_shape(space.get()))));
  return attr;
}

// The one number in attribute `name`, of class `type_class`, converted to `mem`.
template <class T>
T number_attr(const Object& obj, hid_t id, const std::string& name, H5T_class_t type_class,
              const char* expected, hid_t mem) {
  const Id attr = open_attr(obj, id, name, type_class, expected);
  T v = 0;
  if (H5Aread(attr.get(), mem, &v) < 0)
    fail_at(obj.file_path(), obj.path(), "cannot read attribute '" + name + "'" + reason());
  return v;
}

// Reads all of dataset `id` (of `shape`, stored as `type`) into `data` as `mem`.
void read_all(const Dataset& d, hid_t id, hid_t mem, const std::string& type,
              const std::vector<int64_t>& shape, void* data) {
  if (numel(shape) > 0 && H5Dread(id, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail_at(d.file_path(), d.path(),
            detail::cat("cannot read ", type, " ", shape_str(shape), " data", reason()));
}

// Opens the group or dataset at `name` under `id`, checking what it is.
hid_t open_object(const Group& g, hid_t id, const std::string& name, const std::string& path,
                  H5I_type_t want) {
  const char* kind = want == H5I_GROUP ? "group" : "dataset";
  if (!g.exists(name)) fail_at(g.file_path(), path, detail::cat(kind, " not found"));
  const hid_t obj = H5Oopen(id, name.c_str(), H5P_DEFAULT);
  if (obj < 0) fail_at(g.file_path(), path, detail::cat("cannot open ", kind, reason()));
  const H5I_type_t got = H5Iget_type(obj);
  if (got != want) {
    H5Oclose(obj);
    fail_at(g.file_path(), path,
            detail::cat("is a ",
                        got == H5I_GROUP     ? "group"
                        : got == H5I_DATASET ? "dataset"
                                             : "named type",
                        ", not a ", kind));
  }
  return obj;
}

[[noreturn]] void fail_file(const std::string& path, const std::string& what) {
  throw Error(detail::cat("h5: ", path, ": ", what));
}

// Opens an existing HDF5 file with `flags` (H5F_ACC_RDONLY or H5F_ACC_RDWR).
hid_t open_existing(const std::string& path, unsigned flags) {
  quiet();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail_file(path, "file not found");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail_file(path, "not an HDF5 file" + reason());
  const hid_t fid = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  if (fid < 0)
    fail_file(path, detail::cat("cannot open for ", flags == H5F_ACC_RDWR ? "writing" : "reading",
                                reason()));
  return fid;
}

}  // namespace

// --- Object: handle + attributes --------------------------------------------------------

Object::Object(int64_t id, std::string file, std::string path)
    : id_(id), file_(std::move(file)), path_(std::move(path)) {}

Object::Object(Object&& o) noexcept
    : id_(std::exchange(o.id_, -1)), file_(std::move(o.file_)), path_(std::move(o.path_)) {}

Object& Object::operator=(Object&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) H5Oclose(id_);
    id_ = std::exchange(o.id_, -1);
    file_ = std::move(o.file_);
    path_ = std::move(o.path_);
  }
  return *this;
}

Object::~Object() {
  if (id_ >= 0) H5Oclose(id_);
}

void Object::fail(const std::string& what) const { fail_at(file_, path_, what); }

bool Object::has_attr(const std::string& name) const {
  quiet();
  const htri_t e = H5Aexists(id_, name.c_str());
  if (e < 0) fail("cannot look up attribute '" + name + "'" + reason());
  return e > 0;
}

std::vector<std::string> Object::attr_names() const {
  quiet();
  std::vector<std::string> names;
  hsize_t idx = 0;
  const herr_t r = H5Aiterate2(
      id_, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->emplace_back(name);
        return 0;
      },
      &names);
  if (r < 0) fail("cannot list attributes" + reason());
  return names;
}

void Object::set_string_attr(const std::string& name, const std::string& value) {
  quiet();
  const Id type = utf8_string_type();
  const char* p = value.c_str();
  write_attr(*this, id_, name, type.get(), &p, "string");
}

void Object::set_int_attr(const std::string& name, int64_t value) {
  quiet();
  write_attr(*this, id_, name, H5T_STD_I64LE, &value, "int64");
}

void Object::set_double_attr(const std::string& name, double value) {
  quiet();
  write_attr(*this, id_, name, H5T_IEEE_F64LE, &value, "float64");
}

std::string Object::string_attr(const std::string& name) const {
  quiet();
  const Id attr = open_attr(*this, id_, name, H5T_STRING, "a string");
  const Id type(H5Aget_type(attr.get()), H5Tclose);
  const auto failed = [&] { fail("cannot read attribute '" + name + "'" + reason()); };
  if (H5Tis_variable_str(type.get()) > 0) {
    const Id mem = utf8_string_type();
    char* p = nullptr;
    if (H5Aread(attr.get(), mem.get(), &p) < 0) failed();
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t size = H5Tget_size(type.get());
  const Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), size);
  std::string s(size, '\0');
  if (H5Aread(attr.get(), mem.get(), s.data()) < 0) failed();
  return s.substr(0, s.find('\0'));  // fixed-length strings are NUL-padded
}

int64_t Object::int_attr(const std::string& name) const {
  quiet();
  return number_attr<int64_t>(*this, id_, name, H5T_INTEGER, "an integer", H5T_NATIVE_INT64);
}

double Object::double_attr(const std::string& name) const {
  quiet();
  return number_attr<double>(*this, id_, name, H5T_FLOAT, "a floating-point value",
                             H5T_NATIVE_DOUBLE);
}

// --- Dataset ------------------------------------------------------------------------------

std::vector<int64_t> Dataset::shape() const {
  quiet();
  const Id space(H5Dget_space(id_), H5Sclose);
  if (!space.ok()) fail("cannot read the shape" + reason());
  if (H5Sget_simple_extent_type(space.get()) == H5S_NULL)
    fail("dataset has no data (null dataspace)");
  return space_shape(space.get());
}

int64_t Dataset::file_offset() const {
  const haddr_t a = H5Dget_offset(id_);
  return a == HADDR_UNDEF ? -1 : int64_t(a);
}

std::string Dataset::type_name() const {
  quiet();
  const Id type(H5Dget_type(id_), H5Tclose);
  if (!type.ok()) fail("cannot read the type" + reason());
  return describe_type(type.get());
}

// The stored type must be exactly T's (no conversions: float64 data read as float32 is
// more likely a mistake than a wish; callers convert explicitly).
template <Element T>
Array<T> Dataset::read() const {
  const ElementType e = element_type<T>();
  const std::string stored = type_name();
  if (stored != e.name) fail(detail::cat("expected ", e.name, " data, found ", stored));
  Array<T> a{std::vector<T>(), shape()};
  a.data.resize(size_t(numel(a.shape)));
  read_all(*this, id_, e.mem, stored, a.shape, a.data.data());
  return a;
}

ag::Tensor Dataset::read_tensor() const {
  const std::string stored = type_name();
  const std::vector<int64_t> s = shape();
  if (s.size() > size_t(ag::Dims::kMax))
    fail(detail::cat("shape ", shape_str(s), " has more than ", ag::Dims::kMax,
                     " dimensions, which tensors do not support"));
  const auto read_as = [&](ag::DType dtype, hid_t mem) {
    ag::Tensor t = ag::empty(ag::Dims(s), dtype);
    read_all(*this, id_, mem, stored, s, t.ref().data);
    return t;
  };
  if (stored == "float32") return read_as(ag::DType::F32, H5T_NATIVE_FLOAT);
  if (stored == "float64") return read_as(ag::DType::F64, H5T_NATIVE_DOUBLE);
  if (stored == "int64") return read_as(ag::DType::I64, H5T_NATIVE_INT64);
  fail("expected float32, float64 or int64 data for a tensor, found " + stored);
}

// --- Group --------------------------------------------------------------------------------

std::string Group::child_path(const std::string& name) const {
  if (!name.empty() && name[0] == '/') return name;
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

bool Group::exists(const std::string& name) const {
  quiet();
  if (name.empty()) fail("empty name");
  // H5Lexists fails (rather than saying no) when a parent is missing or not a group, so
  // walk down the path one component at a time.
  for (size_t end = name.find('/', 1);; end = name.find('/', end + 1)) {
    const std::string prefix = name.substr(0, end);
    const htri_t link = H5Lexists(id_, prefix.c_str(), H5P_DEFAULT);
    if (link < 0) fail_at(file_, child_path(prefix), "cannot look up" + reason());
    if (link == 0 || H5Oexists_by_name(id_, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);  // false for a dangling soft link
      return false;
    }
    if (end == std::string::npos || end + 1 == name.size()) return true;
    if (!opens_as_group(id_, prefix)) return false;
  }
}

bool Group::is_group(const std::string& name) const {
  return exists(name) && opens_as_group(id_, name);
}

Group Group::group(const std::string& name) const {
  quiet();
  const std::string path = child_path(name);
  return Group(open_object(*this, id_, name, path, H5I_GROUP), file_, path);
}

Dataset Group::dataset(const std::string& name) const {
  quiet();
  const std::string path = child_path(name);
  return Dataset(open_object(*this, id_, name, path, H5I_DATASET), file_, path);
}

Group Group::create_group(const std::string& name) {
  quiet();
  const std::string path = child_path(name);
  if (exists(name)) fail_at(file_, path, "cannot create group: the name already exists");
  const Id lcpl = intermediate_groups();
  const hid_t g = H5Gcreate2(id_, name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) fail_at(file_, path, "cannot create group" + reason());
  return Group(g, file_, path);
}

std::vector<std::string> Group::children() const {
  quiet();
  std::vector<std::string> names;
  hsize_t idx = 0;
  const herr_t r = H5Literate(
      id_, H5_INDEX_NAME, H5_ITER_INC, &idx,
      [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->emplace_back(name);
        return 0;
      },
      &names);
  if (r < 0) fail("cannot list members" + reason());
  return names;
}

std::vector<std::string> Group::datasets() const {
  std::vector<std::string> out;
  const size_t prefix = path_ == "/" ? 1 : path_.size() + 1;
  for_each_dataset([&](const Dataset& d) { out.push_back(d.path().substr(prefix)); });
  return out;
}

void Group::for_each_dataset(const std::function<void(const Dataset&)>& fn) const {
  for (const std::string& child : children()) {
    quiet();
    const std::string path = child_path(child);
    const hid_t obj = H5Oopen(id_, child.c_str(), H5P_DEFAULT);
    if (obj < 0) fail_at(file_, path, "cannot open" + reason());
    const H5I_type_t type = H5Iget_type(obj);
    if (type == H5I_GROUP) {
      Group(obj, file_, path).for_each_dataset(fn);
    } else if (type == H5I_DATASET) {
      fn(Dataset(obj, file_, path));
    } else {
      H5Oclose(obj);  // a named datatype: not data
    }
  }
}

void Group::remove(const std::string& name) {
  quiet();
  if (H5Ldelete(id_, name.c_str(), H5P_DEFAULT) < 0)
    fail_at(file_, child_path(name), "cannot remove it" + reason());
}

void Group::check_size(const std::string& name, int64_t size,
                       const std::vector<int64_t>& shape) const {
  if (size != numel(shape))
    fail_at(file_, child_path(name),
            detail::cat("cannot write ", size, " values as shape ", shape_str(shape), " (",
                        numel(shape), " elements)"));
}

template <Element T>
Dataset Group::write(const std::string& name, const T* data, const std::vector<int64_t>& shape) {
  quiet();
  const std::string path = child_path(name);
  const auto failed = [&](const std::string& why) {
    fail_at(file_, path,
            detail::cat("cannot write ", element_type<T>().name, " ", shape_str(shape),
                        " dataset: ", why));
  };
  for (int64_t s : shape)
    if (s < 0) failed("sizes must be non-negative");
  if (exists(name)) failed("the name already exists");
  const std::vector<hsize_t> dims(shape.begin(), shape.end());
  const Id space = shape.empty()
                       ? scalar_space()
                       : Id(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  const Id lcpl = intermediate_groups();
  Id d(H5Dcreate2(id_, name.c_str(), element_type<T>().file, space.get(), lcpl.get(), H5P_DEFAULT,
                  H5P_DEFAULT),
       H5Dclose);
  if (!d.ok()) failed("HDF5 refused to create it" + reason());
  if (numel(shape) > 0 &&
      H5Dwrite(d.get(), element_type<T>().mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    failed("HDF5 refused the data" + reason());
  return Dataset(d.release(), file_, path);
}

template <Element T>
T Group::read_scalar(const std::string& name) const {
  const Dataset d = dataset(name);
  const std::vector<int64_t> s = d.shape();
  if (!s.empty()) fail_at(file_, d.path(), "expected a scalar, found shape " + shape_str(s));
  return d.read<T>().data[0];
}

void Group::write_tensor(const std::string& name, const ag::Tensor& t) {
  LOOM_CHECK(t.defined(), "h5: ", file_, ": ", child_path(name),
             ": cannot write an undefined tensor");
  LOOM_CHECK(t.device().is_cpu(), "h5: ", file_, ": ", child_path(name), ": tensor is on ",
             t.device(), "; move it to cpu first");
  ag::NoGrad no_grad;
  const ag::Tensor c = t.contiguous();  // any strides in, row-major out
  const std::vector<int64_t> shape = c.sizes().vec();
  switch (c.dtype()) {
    case ag::DType::F32:
      write(name, c.data<float>(), shape);
      return;
    case ag::DType::F64:
      write(name, c.data<double>(), shape);
      return;
    case ag::DType::I64:
      write(name, c.data<int64_t>(), shape);
      return;
    default:
      fail_at(file_, child_path(name),
              detail::cat("cannot write a ", c.dtype(), " tensor (float32, float64 or int64)"));
  }
}

#define LOOM_H5_INSTANTIATE(T)                                                              \
  template Array<T> Dataset::read<T>() const;                                               \
  template Dataset Group::write<T>(const std::string&, const T*, const std::vector<int64_t>&); \
  template T Group::read_scalar<T>(const std::string&) const;
LOOM_H5_INSTANTIATE(float)
LOOM_H5_INSTANTIATE(double)
LOOM_H5_INSTANTIATE(int64_t)
LOOM_H5_INSTANTIATE(uint8_t)
#undef LOOM_H5_INSTANTIATE

// --- File ---------------------------------------------------------------------------------

File::File(int64_t file_id, int64_t root_id, std::string path)
    : Group(root_id, std::move(path), "/"), file_id_(file_id) {}

File::File(File&& o) noexcept
    : Group(std::move(o)),
      file_id_(std::exchange(o.file_id_, -1)),
      write_failure_(std::move(o.write_failure_)) {}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (file_id_ >= 0) H5Fclose(file_id_);
    file_id_ = std::exchange(o.file_id_, -1);
    write_failure_ = std::move(o.write_failure_);
    Group::operator=(std::move(o));
  }
  return *this;
}

File::~File() {
  // The root group first: HDF5 1.10 crashes at exit if a group outlives a file whose close
  // failed (e.g. a full disk).
  if (id_ >= 0) H5Oclose(std::exchange(id_, -1));
  if (file_id_ >= 0) H5Fclose(file_id_);
}

File File::open(const std::string& path) {
  const hid_t fid = open_existing(path, H5F_ACC_RDONLY);
  return File(fid, H5Gopen2(fid, "/", H5P_DEFAULT), path);
}

File File::open_rw(const std::string& path) {
  const hid_t fid = open_existing(path, H5F_ACC_RDWR);
  return File(fid, H5Gopen2(fid, "/", H5P_DEFAULT), path);
}

File File::create(const std::string& path) {
  quiet();
  auto failure = std::make_unique<WriteFailure>();
  const Id fapl(write_driver_access(failure.get()), H5Pclose);
  const hid_t fid = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (fid < 0)
    fail_file(path, "cannot create file" +
                        (failure->failed() ? ": " + std::string(std::strerror(failure->error)) : reason()));
  File f(fid, H5Gopen2(fid, "/", H5P_DEFAULT), path);
  f.write_failure_ = std::move(failure);
  return f;
}

void File::check_writes() const {
  if (write_failure_ && write_failure_->failed()) fail_file(file_, write_failure_->describe());
}

void File::flush() {
  quiet();
  LOOM_CHECK(file_id_ >= 0, "h5: ", file_, ": flush: the file is closed");
  if (H5Fflush(file_id_, H5F_SCOPE_GLOBAL) < 0) fail_file(file_, "cannot flush" + reason());
  check_writes();
}

void File::start_writeback() {
  quiet();
  LOOM_CHECK(file_id_ >= 0, "h5: ", file_, ": start_writeback: the file is closed");
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file_id_, H5P_DEFAULT, &handle) < 0 || handle == nullptr) return;
  // Advisory: an error here only means the final fsync does all the work.
  ::sync_file_range(*static_cast<int*>(handle), 0, 0, SYNC_FILE_RANGE_WRITE);
}

void File::close() {
  quiet();
  if (id_ >= 0) H5Oclose(std::exchange(id_, -1));
  if (file_id_ >= 0 && H5Fclose(std::exchange(file_id_, -1)) < 0)
    fail_file(file_, "cannot close" + reason());
  check_writes();
}

}  // namespace loom::recipes::h5
