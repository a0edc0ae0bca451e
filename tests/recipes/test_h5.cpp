// recipes/h5: round trips of every element type and shape (scalars, empty, nested paths),
// attributes on files, groups and datasets, tensors with any strides, reading the shared
// golden file written by h5py, the exact error messages, and a failed write (the file
// size limit standing in for a full disk) reported at close with HDF5 still usable.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "autograd/ops.h"
#include "recipes/h5.h"
#include "common/temp_dir.h"
#include "common/specs.h"

namespace loom::recipes::h5 {
namespace {

namespace fs = std::filesystem;

// A unique path in the temp directory, removed at scope exit.
struct TempPath {
  std::string path;
  TempPath() {
    std::random_device rd;
    path = (fs::temp_directory_path() /
            ("loom_test_h5_" + std::to_string(rd()) + "_" + std::to_string(rd()) + ".h5"))
               .string();
  }
  ~TempPath() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

std::string golden_path() { return test::spec_path("model_golden.h5"); }

TEST_CASE("h5: datasets of every type and shape round-trip exactly") {
  const TempPath tmp;
  const std::vector<float> f32 = {1.5f, -2.25f, 3e-8f, 1e30f, 0.f, -0.f};
  const std::vector<double> f64 = {0.1, -1e-300, 3.141592653589793, 2.0};
  const std::vector<int64_t> i64 = {0, -1, int64_t(1) << 62, 7, -(int64_t(1) << 40), 5, 6, 8};
  const std::vector<uint8_t> u8 = {0, 1, 127, 128, 255};
  {
    File f = File::create(tmp.path);
    f.write("f32", f32, {2, 3});
    f.write("f64", f64, {4});
    f.write("nested/deeper/i64", i64, {2, 2, 2});  // creates the intermediate groups
    Group g = f.create_group("bytes");
    g.write("u8", u8, {5});
    g.write("empty", std::vector<float>{}, {0, 3});
    f.write_scalar("s_f32", 0.5f);
    f.write_scalar("s_f64", -1e100);
    f.write_scalar<int64_t>("s_i64", -42);
    f.write_scalar<uint8_t>("s_u8", 200);
    f.close();
  }
  const File f = File::open(tmp.path);
  CHECK(f.children() == std::vector<std::string>{"bytes", "f32", "f64", "nested", "s_f32", "s_f64",
                                                 "s_i64", "s_u8"});
  const Array<float> a = f.read<float>("f32");
  CHECK(a.data == f32);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(std::signbit(a.data[5]));  // -0 kept bit for bit
  CHECK(f.read<double>("f64").data == f64);
  const Array<int64_t> b = f.group("nested").read<int64_t>("deeper/i64");
  CHECK(b.data == i64);
  CHECK(b.shape == std::vector<int64_t>{2, 2, 2});
  CHECK(f.read<uint8_t>("bytes/u8").data == u8);
  const Array<float> e = f.read<float>("bytes/empty");
  CHECK(e.data.empty());
  CHECK(e.shape == std::vector<int64_t>{0, 3});
  CHECK(f.read_scalar<float>("s_f32") == 0.5f);
  CHECK(f.read_scalar<double>("s_f64") == -1e100);
  CHECK(f.read_scalar<int64_t>("s_i64") == -42);
  CHECK(f.read_scalar<uint8_t>("s_u8") == 200);
  CHECK(f.dataset("s_f64").shape().empty());
  CHECK(f.dataset("s_u8").type_name() == "uint8");
  CHECK(f.dataset("nested/deeper/i64").path() == "/nested/deeper/i64");
  CHECK(f.group("nested").group("deeper").path() == "/nested/deeper");
  CHECK(f.exists("nested/deeper/i64"));
  CHECK_FALSE(f.exists("nested/missing/i64"));  // a missing parent is "no", not an error
  CHECK_FALSE(f.exists("f32x"));
  CHECK_FALSE(f.exists("f32/x"));  // below a dataset
  CHECK(f.is_group("nested/deeper"));
  CHECK_FALSE(f.is_group("f32"));
}

TEST_CASE("h5: string, int64 and double attributes on files, groups and datasets") {
  const TempPath tmp;
  const std::string config = "[model]\nd_model = 256\nname = \"café → ñ\"\n";
  {
    File f = File::create(tmp.path);
    f.set_string_attr("format", "loom-checkpoint");
    f.set_int_attr("format_version", 1);
    f.set_string_attr("empty", "");
    Group g = f.create_group("model");
    g.set_string_attr("config", config);
    g.set_double_attr("lr", 1e-3);
    g.set_int_attr("step", -(int64_t(1) << 50));
    f.write_scalar("model/x", 1.0);
    f.group("model").dataset("x").set_double_attr("checksum", 0.25);
    g.set_int_attr("step", 7);  // replaces
  }
  File f = File::open_rw(tmp.path);
  CHECK(f.string_attr("format") == "loom-checkpoint");
  CHECK(f.int_attr("format_version") == 1);
  CHECK(f.string_attr("empty").empty());
  CHECK(f.attr_names() == std::vector<std::string>{"empty", "format", "format_version"});
  const Group g = f.group("model");
  CHECK(g.string_attr("config") == config);
  CHECK(g.double_attr("lr") == 1e-3);
  CHECK(g.int_attr("step") == 7);
  CHECK(g.dataset("x").double_attr("checksum") == 0.25);
  CHECK(g.has_attr("lr"));
  CHECK_FALSE(g.has_attr("momentum"));
  f.write_scalar<int64_t>("added", 3);  // read-write mode
  f.flush();
  CHECK(f.read_scalar<int64_t>("added") == 3);
}

TEST_CASE("h5: tensors of any strides are written row-major and read back") {
  using namespace loom::ag;
  const TempPath tmp;
  const Tensor m = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor mt = m.transpose(0, 1);  // [3,2], not contiguous
  Tensor w = from_vector<double>({0.5, -1.5, 2.5}, {3});
  w.set_requires_grad(true);
  {
    File f = File::create(tmp.path);
    f.write_tensor("mt", mt);
    f.write_tensor("w", w);
    f.write_tensor("ids", arange(5));
    f.write_tensor("s", scalar(2.5));
  }
  const File f = File::open(tmp.path);
  CHECK(f.read<float>("mt").data == std::vector<float>{1, 4, 2, 5, 3, 6});
  const Tensor r = f.read_tensor("mt");
  CHECK(r.dtype() == DType::F32);
  CHECK(r.sizes() == Dims{3, 2});
  CHECK(r.to_vector<float>() == mt.to_vector<float>());
  CHECK(f.read_tensor("w").to_vector<double>() == w.to_vector<double>());
  CHECK(f.read_tensor("ids").to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  const Tensor s = f.read_tensor("s");
  CHECK(s.dim() == 0);
  CHECK(s.item<float>() == 2.5f);
  CHECK(tape_size() == 0);
}

TEST_CASE("h5: reads the golden file written by h5py") {
  const File f = File::open(golden_path());
  const Group c = f.group("sinusoidal_mha_pre");
  const Array<int64_t> src = c.read<int64_t>("inputs/src");
  CHECK(src.shape == std::vector<int64_t>{3, 8});
  CHECK(std::vector<int64_t>(src.data.begin(), src.data.begin() + 8) ==
        std::vector<int64_t>{5, 9, 13, 22, 7, 31, 11, 3});
  const ag::Tensor t = c.read_tensor("inputs/src");
  CHECK(t.dtype() == ag::DType::I64);
  CHECK(t.to_vector<int64_t>() == src.data);
  CHECK(c.string_attr("config").rfind("[model]", 0) == 0);  // variable-length UTF-8
  CHECK(c.dataset("expected/loss").shape().empty());
  CHECK(std::isfinite(c.read_scalar<double>("expected/loss")));
  CHECK(f.group("adamw").string_attr("settings") ==
        "lr=1e-2 betas=(0.9,0.98) eps=1e-9; weight_decay 0.1 on w, 0.0 on b; decoupled (AdamW)");
  const std::vector<std::string> adamw = f.group("adamw").children();
  CHECK(adamw == std::vector<std::string>{"b0", "step1", "step2", "step3", "w0"});
}

TEST_CASE("h5: errors name the file, the object and what was asked") {
  const std::string golden = golden_path();
  const File f = File::open(golden);
  const std::string at = "h5: " + golden + ": ";
  CHECK_THROWS_WITH_AS(f.dataset("model/embed.weight"),
                       (at + "/model/embed.weight: dataset not found").c_str(), Error);
  CHECK_THROWS_WITH_AS(
      f.group("sinusoidal_mha_pre").read<float>("inputs/src"),
      (at + "/sinusoidal_mha_pre/inputs/src: expected float32 data, found int64").c_str(), Error);
  CHECK_THROWS_WITH_AS(f.group("nope"), (at + "/nope: group not found").c_str(), Error);
  CHECK_THROWS_WITH_AS(f.dataset("adamw"), (at + "/adamw: is a group, not a dataset").c_str(),
                       Error);
  CHECK_THROWS_WITH_AS(f.group("adamw/w0"), (at + "/adamw/w0: is a dataset, not a group").c_str(),
                       Error);
  CHECK_THROWS_WITH_AS(f.read_scalar<double>("adamw/w0"),
                       (at + "/adamw/w0: expected a scalar, found shape [3,4]").c_str(), Error);
  CHECK_THROWS_WITH_AS(f.group("adamw").string_attr("config"),
                       (at + "/adamw: attribute 'config' not found").c_str(), Error);
  CHECK_THROWS_WITH_AS(
      f.group("adamw").int_attr("settings"),
      (at + "/adamw: attribute 'settings': expected an integer, found string").c_str(), Error);

  const TempPath tmp;
  CHECK_THROWS_WITH_AS(File::open(tmp.path), ("h5: " + tmp.path + ": file not found").c_str(),
                       Error);
  std::ofstream(tmp.path) << "not hdf5\n";
  CHECK_THROWS_WITH_AS(File::open(tmp.path), ("h5: " + tmp.path + ": not an HDF5 file").c_str(),
                       Error);
  {
    File w = File::create(tmp.path);
    w.write("x", std::vector<double>{1, 2}, {2});
    CHECK_THROWS_WITH_AS(
        w.write("x", std::vector<double>{1, 2}, {2}),
        ("h5: " + tmp.path + ": /x: cannot write float64 [2] dataset: the name already exists")
            .c_str(),
        Error);
    CHECK_THROWS_WITH_AS(
        w.write("y", std::vector<double>{1, 2, 3}, {2, 2}),
        ("h5: " + tmp.path + ": /y: cannot write 3 values as shape [2,2] (4 elements)").c_str(),
        Error);
    CHECK_THROWS_WITH_AS(
        w.write_tensor("b", ag::ones({2}, ag::DType::Bool)),
        ("h5: " + tmp.path + ": /b: cannot write a bool tensor (float32, float64 or int64)")
            .c_str(),
        Error);
  }
  const File r = File::open(tmp.path);
  CHECK_THROWS_WITH_AS(r.read<int64_t>("x"),
                       ("h5: " + tmp.path + ": /x: expected int64 data, found float64").c_str(),
                       Error);
  // Writing through a read-only handle: HDF5's reason is appended.
  File ro = File::open(tmp.path);
  CHECK_THROWS_WITH_AS(ro.write_scalar("z", 1.0),
                       doctest::Contains(("h5: " + tmp.path +
                                          ": /z: cannot write float64 [] dataset: HDF5 refused to "
                                          "create it; HDF5: ")
                                             .c_str()),
                       Error);
}

TEST_CASE("h5: a failed write is reported at close, and HDF5 stays usable after it") {
  const TempPath tmp;
  CHECK_THROWS_WITH_AS(File::create("/nonexistent-loom-dir/x.h5"),
                       "h5: /nonexistent-loom-dir/x.h5: cannot create file: No such file or directory",
                       Error);
  std::vector<double> values(32768);  // 256 KiB
  for (size_t i = 0; i < values.size(); ++i) values[i] = double(i) * 0.5;
  {
    // A full disk: no write may reach past 64 KiB (EFBIG instead of SIGXFSZ).
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = old;
    limited.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &limited) == 0);
    File w = File::create(tmp.path);
    w.write("big", values, {int64_t(values.size())});  // HDF5 is told it succeeded
    w.write("after", values, {int64_t(values.size())});
    const std::string e = test::error_of([&] { w.close(); });
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    CHECK(e == "h5: " + tmp.path + ": cannot write at byte 65536: File too large");
    CHECK(fs::file_size(tmp.path) <= 64 * 1024);  // nothing was written past the failure
  }
  // The library closed the broken file cleanly: new files work in the same process.
  {
    File w = File::create(tmp.path);
    w.write("big", values, {int64_t(values.size())});
    w.close();
  }
  CHECK(File::open(tmp.path).read<double>("big").data == values);
}

}  // namespace
}  // namespace loom::recipes::h5
