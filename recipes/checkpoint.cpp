#include "recipes/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <thread>

#include "autograd/ops.h"
#include "recipes/h5.h"
#include "recipes/model_config.h"

namespace loom::recipes {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRank = "rank0";  // single-process training; ranks arrive with MPI

std::string now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// --- checked datasets -----------------------------------------------------------------

size_t tensor_bytes(const ag::Tensor& contiguous) {
  return size_t(contiguous.numel()) * kernels::dtype_size(contiguous.dtype());
}

// The tensor as stored: contiguous float32 on the host (no copy when it already is, as in
// CPU training; GPU tensors are copied to the host).
ag::Tensor as_stored(const ag::Tensor& t) {
  ag::Tensor c = t.to(kernels::Device::cpu()).contiguous();
  return c.dtype() == kernels::DType::F32 ? c : c.to(kernels::DType::F32);
}

std::string crc_mismatch(const std::string& file, const std::string& path, uint32_t stored,
                         uint32_t actual) {
  return detail::cat(file, ": ", path, ": checksum mismatch (stored crc32 ", stored, ", data has ",
                     actual, "): the file is corrupted; use another checkpoint");
}

// The dataset's crc32 attribute (an error when it has none).
uint32_t stored_crc(const h5::Dataset& d) {
  LOOM_CHECK(d.has_attr("crc32"), d.file_path(), ": ", d.path(),
             ": no crc32 attribute; the file was not written by loom or was edited");
  return uint32_t(d.int_attr("crc32"));
}

// Checks a dataset's bytes against its crc32 attribute.
void check_crc(const h5::Dataset& d, const void* bytes, size_t n) {
  const uint32_t stored = stored_crc(d), actual = crc32_of(bytes, n);
  if (stored != actual) throw Error(crc_mismatch(d.file_path(), d.path(), stored, actual));
}

ag::Tensor read_tensor_checked(const h5::Group& g, const std::string& name) {
  const h5::Dataset d = g.dataset(name);
  ag::Tensor t = d.read_tensor();
  check_crc(d, t.ref().data, tensor_bytes(t));
  return t;
}

template <h5::Element T>
T read_scalar_checked(const h5::Group& g, const std::string& name) {
  const h5::Dataset d = g.dataset(name);
  const h5::Array<T> a = d.read<T>();
  LOOM_CHECK(a.shape.empty(), d.file_path(), ": ", d.path(), ": expected a scalar");
  check_crc(d, a.data.data(), sizeof(T));
  return a.data[0];
}

// --- writing --------------------------------------------------------------------------

// Every dataset of a checkpoint in the order it is written: its path, element type, bytes
// (pointing into the checkpoint's tensors and strings, or at the plan's own scalars) and
// shape. A second thread walks it computing checksums while the writer writes.
struct Plan {
  enum class Type { F32, F64, I64, U8 };
  struct Item {
    std::string path;
    Type type;
    const void* data;
    std::vector<int64_t> shape;
    size_t bytes;
  };
  std::vector<Item> items;
  std::deque<int64_t> ints;  // scalars' storage (stable addresses)
  std::deque<double> doubles;

  void tensor(const std::string& path, const ag::Tensor& t) {  // contiguous float32
    LOOM_ASSERT(t.is_contiguous() && t.dtype() == kernels::DType::F32);
    items.push_back({path, Type::F32, t.ref().data, t.sizes().vec(), tensor_bytes(t)});
  }
  void int_scalar(const std::string& path, int64_t v) {
    items.push_back({path, Type::I64, &ints.emplace_back(v), {}, sizeof(int64_t)});
  }
  void u64_scalar(const std::string& path, uint64_t v) {  // bitwise in an int64
    int_scalar(path, std::bit_cast<int64_t>(v));
  }
  void double_scalar(const std::string& path, double v) {
    items.push_back({path, Type::F64, &doubles.emplace_back(v), {}, sizeof(double)});
  }
  void bytes(const std::string& path, const std::string& b) {
    items.push_back({path, Type::U8, b.data(), {int64_t(b.size())}, b.size()});
  }
};

Plan plan_of(const Checkpoint& c) {
  Plan p;
  for (const auto& [name, t] : c.model_state) p.tensor("model/" + name, t);
  p.bytes("tokenizer/model", c.tokenizer_bytes);
  if (!c.training) return p;
  const TrainingState& s = *c.training;
  for (const ParamOptimState& o : s.params) {
    p.int_scalar("optim/step/" + o.name, o.step);
    p.tensor("optim/exp_avg/" + o.name, o.exp_avg);
    p.tensor("optim/exp_avg_sq/" + o.name, o.exp_avg_sq);
  }
  const std::string rng = std::string("rng/") + kRank + "/", data = std::string("data/") + kRank + "/";
  for (const RngStream& r : s.rng) {
    p.u64_scalar(rng + r.name + "/seed", r.seed);
    p.u64_scalar(rng + r.name + "/offset", r.offset);
  }
  p.u64_scalar(data + "seed", s.loader.seed);
  p.int_scalar(data + "epoch", s.loader.epoch);
  p.int_scalar(data + "cursor", s.loader.cursor);
  for (const auto& [name, v] : s.metrics) p.double_scalar("metrics/" + name, v);
  return p;
}

h5::Dataset write_item(h5::File& f, const Plan::Item& it) {
  switch (it.type) {
    case Plan::Type::F32: return f.write(it.path, static_cast<const float*>(it.data), it.shape);
    case Plan::Type::F64: return f.write(it.path, static_cast<const double*>(it.data), it.shape);
    case Plan::Type::I64: return f.write(it.path, static_cast<const int64_t*>(it.data), it.shape);
    case Plan::Type::U8: return f.write(it.path, static_cast<const uint8_t*>(it.data), it.shape);
  }
  LOOM_UNREACHABLE("write_item: unknown element type");
}

void write_file(const std::string& path, const Checkpoint& c) {
  h5::File f = h5::File::create(path);
  f.set_string_attr("format", "loom-checkpoint");
  f.set_int_attr("format_version", kCheckpointFormatVersion);
  f.set_int_attr("step", c.meta.step);
  f.set_int_attr("epoch", c.meta.epoch);
  f.set_int_attr("tokens_seen", c.meta.tokens_seen);
  f.set_int_attr("world_size", c.meta.world_size);
  f.set_string_attr("loom_version", LOOM_VERSION);
  f.set_string_attr("created", now_iso8601());
  f.set_string_attr("config", c.meta.config_toml);
  f.set_string_attr("checksum", "crc32");
  f.create_group("model");
  const Plan plan = plan_of(c);
  // Checksums come from a second thread in plan order; each dataset gets its crc32 right
  // after its data, while it is still open (reopening every dataset costs ~10 ms).
  std::vector<uint32_t> crcs(plan.items.size());
  std::atomic<size_t> crcs_ready{0};
  std::thread checksums([&] {
    for (size_t i = 0; i < plan.items.size(); ++i) {
      crcs[i] = crc32_of(plan.items[i].data, plan.items[i].bytes);
      crcs_ready.store(i + 1, std::memory_order_release);
      crcs_ready.notify_one();
    }
  });
  struct Join {  // also when a write throws: the thread reads the plan
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{checksums};
  // Writeback to the disk starts every 32 MiB, so it runs beside the rest of the write and
  // the parent's final fsync finds little left.
  size_t unsynced = 0;
  for (size_t i = 0; i < plan.items.size(); ++i) {
    h5::Dataset d = write_item(f, plan.items[i]);
    for (size_t ready; (ready = crcs_ready.load(std::memory_order_acquire)) <= i;)
      crcs_ready.wait(ready, std::memory_order_acquire);
    d.set_int_attr("crc32", crcs[i]);
    if ((unsynced += plan.items[i].bytes) >= (size_t(32) << 20)) f.start_writeback(), unsynced = 0;
  }
  if (c.training) {
    h5::Group optim = f.exists("optim") ? f.group("optim") : f.create_group("optim");
    optim.set_string_attr("type", c.training->optimizer);
    optim.set_double_attr("lr", c.training->lr);
    optim.set_int_attr("params", int64_t(c.training->params.size()));
  }
  f.flush();
  f.close();
}

// Forces a file's (or folder's) data to the disk, so a rename never exposes a file whose
// blocks are still only in the page cache when the machine loses power.
void fsync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  LOOM_CHECK(fd >= 0, "save_checkpoint: ", p.string(), ": cannot open to sync");
  const int rc = ::fsync(fd);
  ::close(fd);
  LOOM_CHECK(rc == 0, "save_checkpoint: ", p.string(), ": fsync failed (disk full or failing?)");
}

// --- reading --------------------------------------------------------------------------

TrainingState read_training(const h5::File& f, const std::string& path,
                            const ag::NamedTensors& model) {
  LOOM_CHECK(f.exists("optim"), path,
             ": no training state (/optim is missing): a weights-only checkpoint cannot be "
             "resumed; start a new run from its weights with --init-from ", path);
  TrainingState s;
  const h5::Group optim = f.group("optim");
  s.optimizer = optim.string_attr("type");
  LOOM_CHECK(s.optimizer == "adamw", path, ": /optim: optimizer \"", s.optimizer,
             "\" is not one loom resumes (adamw)");
  s.lr = optim.double_attr("lr");
  const std::vector<std::string> names = optim.group("step").children();
  LOOM_CHECK(int64_t(names.size()) == optim.int_attr("params"), path, ": /optim/step has ",
             names.size(), " parameters but /optim says ", optim.int_attr("params"),
             ": a dataset was removed; use another checkpoint");
  for (const char* moment : {"exp_avg", "exp_avg_sq"}) {
    const std::vector<std::string> m = optim.group(moment).children();
    for (const std::string& n : m)
      LOOM_CHECK(std::binary_search(names.begin(), names.end(), n), path, ": /optim/", moment,
                 "/", n, ": unexpected (no /optim/step/", n, ")");
  }
  for (const std::string& name : names) {
    const auto it = std::find_if(model.begin(), model.end(),
                                 [&](const ag::NamedTensor& p) { return p.name == name; });
    LOOM_CHECK(it != model.end(), path, ": /optim/step/", name, ": no parameter of that name in /model");
    ParamOptimState p;
    p.name = name;
    p.step = read_scalar_checked<int64_t>(optim, "step/" + name);
    p.exp_avg = read_tensor_checked(optim, "exp_avg/" + name);
    p.exp_avg_sq = read_tensor_checked(optim, "exp_avg_sq/" + name);
    for (const ag::Tensor* t : {&p.exp_avg, &p.exp_avg_sq})
      LOOM_CHECK(t->sizes() == it->tensor.sizes(), path, ": /optim/.../", name, ": shape ",
                 t->sizes(), " differs from the parameter's ", it->tensor.sizes());
    s.params.push_back(std::move(p));
  }
  const h5::Group rng = f.group(std::string("rng/") + kRank);
  for (const std::string& stream : rng.children())
    s.rng.push_back({stream, std::bit_cast<uint64_t>(read_scalar_checked<int64_t>(rng, stream + "/seed")),
                     std::bit_cast<uint64_t>(read_scalar_checked<int64_t>(rng, stream + "/offset"))});
  const h5::Group loader = f.group(std::string("data/") + kRank);
  s.loader.seed = std::bit_cast<uint64_t>(read_scalar_checked<int64_t>(loader, "seed"));
  s.loader.epoch = read_scalar_checked<int64_t>(loader, "epoch");
  s.loader.cursor = read_scalar_checked<int64_t>(loader, "cursor");
  const h5::Group metrics = f.group("metrics");
  for (const std::string& name : metrics.children())
    s.metrics.emplace_back(name, read_scalar_checked<double>(metrics, name));
  return s;
}

}  // namespace

double TrainingState::metric(const std::string& name) const {
  for (const auto& [n, v] : metrics)
    if (n == name) return v;
  throw Error(detail::cat("checkpoint: /metrics/", name, " is missing"));
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  const fs::path dest(path);
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOOM_CHECK(!ec, "save_checkpoint: ", dir.string(), ": cannot create the folder: ", ec.message());
  const fs::path tmp = dir / (".tmp-" + dest.filename().string() + "-" + std::to_string(getpid()));
  try {
    ag::NoGrad no_grad;
    Checkpoint stored;  // the same tensors (handles), contiguous float32
    stored.meta = c.meta;
    stored.tokenizer_bytes = c.tokenizer_bytes;  // (bytes: a copy of a few hundred KB)
    for (const auto& [name, t] : c.model_state) stored.model_state.push_back({name, as_stored(t)});
    if (c.training) {
      stored.training = *c.training;
      for (ParamOptimState& p : stored.training->params)
        p.exp_avg = as_stored(p.exp_avg), p.exp_avg_sq = as_stored(p.exp_avg_sq);
    }
    write_file(tmp.string(), stored);
    // The disk flush and the read-back (from the page cache) overlap.
    std::exception_ptr sync_error;
    std::thread sync([&] {
      try {
        fsync_path(tmp);
      } catch (...) {
        sync_error = std::current_exception();
      }
    });
    const std::vector<std::string> problems = verify_checkpoint(tmp.string());
    sync.join();
    if (sync_error) std::rethrow_exception(sync_error);
    LOOM_CHECK(problems.empty(), "save_checkpoint: ", path, ": the written file does not read back: ",
               problems.front());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, dest, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(detail::cat("save_checkpoint: cannot rename ", tmp.string(), " to ", path, ": ",
                            ec.message()));
  }
  fsync_path(dir);
}

void save_checkpoint(const std::string& path, const ag::NamedTensors& model_state,
                     const std::string& tokenizer_bytes, const CheckpointMeta& meta) {
  Checkpoint c;
  c.meta = meta;
  c.model_state = model_state;
  c.tokenizer_bytes = tokenizer_bytes;
  save_checkpoint(path, c);
}

Checkpoint load_checkpoint(const std::string& path, LoadParts parts) {
  const h5::File f = h5::File::open(path);
  LOOM_CHECK(f.has_attr("format") && f.string_attr("format") == "loom-checkpoint", path,
             ": not a loom checkpoint (no format = \"loom-checkpoint\" attribute at /)");
  Checkpoint c;
  c.meta.format_version = f.int_attr("format_version");
  LOOM_CHECK(c.meta.format_version <= kCheckpointFormatVersion, path, ": format_version ",
             c.meta.format_version, " is newer than this loom reads (", kCheckpointFormatVersion,
             "); update loom");
  c.meta.step = f.int_attr("step");
  c.meta.epoch = f.int_attr("epoch");
  c.meta.tokens_seen = f.int_attr("tokens_seen");
  c.meta.world_size = f.has_attr("world_size") ? f.int_attr("world_size") : 1;
  c.meta.config_toml = f.string_attr("config");
  c.meta.loom_version = f.has_attr("loom_version") ? f.string_attr("loom_version") : "";
  c.meta.created = f.has_attr("created") ? f.string_attr("created") : "";
  c.model_config = parse_model_config(c.meta.config_toml, path + " (config attribute)");
  const h5::Group model = f.group("model");
  for (const std::string& name : model.children()) {
    ag::Tensor t = read_tensor_checked(model, name);
    LOOM_CHECK(t.dtype() == kernels::DType::F32, path, ": /model/", name, ": ", t.dtype(),
               " data; parameters are stored as float32");
    c.model_state.push_back({name, std::move(t)});
  }
  const h5::Group tok = f.group("tokenizer");
  const h5::Dataset tok_data = tok.dataset("model");
  const h5::Array<uint8_t> bytes = tok_data.read<uint8_t>();
  check_crc(tok_data, bytes.data.data(), bytes.data.size());
  c.tokenizer_bytes.assign(bytes.data.begin(), bytes.data.end());
  if (parts == LoadParts::Everything) c.training = read_training(f, path, c.model_state);
  return c;
}

// Verification reads every dataset's bytes from the file itself: HDF5 opens the file and
// gives each dataset's type, shape, checksum and the offset of its contiguous storage;
// the bytes are read with pread and checksummed on two threads.
std::vector<std::string> verify_checkpoint(const std::string& path) {
  std::vector<std::string> problems;
  struct Item {
    std::string path;
    uint32_t stored;
    int64_t offset;
    size_t bytes;
  };
  std::vector<Item> items;
  try {
    const h5::File f = h5::File::open(path);
    LOOM_CHECK(f.has_attr("format") && f.string_attr("format") == "loom-checkpoint", path,
               ": not a loom checkpoint (no format = \"loom-checkpoint\" attribute at /)");
    const int64_t version = f.int_attr("format_version");
    LOOM_CHECK(version <= kCheckpointFormatVersion, path, ": format_version ", version,
               " is newer than this loom reads (", kCheckpointFormatVersion, ")");
    for (const char* a : {"step", "epoch", "tokens_seen", "config"})
      LOOM_CHECK(f.has_attr(a), path, ": the root attribute ", a, " is missing");
    parse_model_config(f.string_attr("config"), path + " (config attribute)");
    f.for_each_dataset([&](const h5::Dataset& d) {
      try {
        const std::string type = d.type_name();
        const size_t element = type == "uint8" ? 1 : type == "float32" ? 4 : type == "float64" || type == "int64" ? 8 : 0;
        LOOM_CHECK(element > 0, path, ": ", d.path(), ": unexpected ", type, " data");
        size_t n = element;
        for (int64_t s : d.shape()) n *= size_t(s);
        const int64_t offset = d.file_offset();
        LOOM_CHECK(n == 0 || offset >= 0, path, ": ", d.path(), ": its data was never written");
        items.push_back({d.path(), stored_crc(d), offset, n});
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    });
  } catch (const Error& e) {
    problems.push_back(e.what());
    return problems;
  }
  const uintmax_t size = std::filesystem::file_size(path);
  // Two threads, each over a contiguous half of the bytes with its own descriptor and a
  // 4 MiB buffer (the data streams through; nothing stays resident); verdicts in item order.
  std::vector<std::string> verdicts(items.size());
  auto check = [&](size_t begin, size_t end) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    std::vector<unsigned char> buf(size_t(4) << 20);
    for (size_t i = begin; i < end; ++i) {
      const Item& it = items[i];
      if (it.bytes > 0 && uintmax_t(it.offset) + it.bytes > size) {
        verdicts[i] = detail::cat(path, ": ", it.path, ": its data lies past the end of the file (",
                                  size, " bytes): the file is truncated; use another checkpoint");
        continue;
      }
      uint32_t crc = 0;
      for (size_t done = 0; done < it.bytes;) {
        const ssize_t got = fd < 0 ? -1 : ::pread(fd, buf.data(), std::min(buf.size(), it.bytes - done),
                                                  off_t(it.offset) + off_t(done));
        if (got <= 0) {
          verdicts[i] = detail::cat(path, ": ", it.path, ": cannot read its data back");
          break;
        }
        crc = crc32_update(crc, buf.data(), size_t(got));
        done += size_t(got);
      }
      if (verdicts[i].empty() && uint32_t(crc) != it.stored)
        verdicts[i] = crc_mismatch(path, it.path, it.stored, uint32_t(crc));
    }
    if (fd >= 0) ::close(fd);
  };
  size_t total = 0, half = 0, split = 0;
  for (const Item& it : items) total += it.bytes;
  while (split < items.size() && half + items[split].bytes <= total / 2) half += items[split++].bytes;
  std::thread second(check, split, items.size());
  check(0, split);
  second.join();
  for (std::string& v : verdicts)
    if (!v.empty()) problems.push_back(std::move(v));
  return problems;
}

}  // namespace loom::recipes
