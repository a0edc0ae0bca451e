// The write driver (see h5_write_driver.h): HDF5 1.10's virtual file driver interface
// (H5FDpublic.h) with POSIX open / pread / pwrite / ftruncate, reporting success to HDF5
// and failures to the WriteFailure given in the file-access property list.
#include "recipes/h5_write_driver.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernels/error.h"

namespace loom::recipes::h5 {

std::string WriteFailure::describe() const {
  return detail::cat("cannot write at byte ", offset, ": ", std::strerror(error));
}

namespace {

// HDF5 keeps a copy of this (fapl_size bytes) in each property list and gives it to open.
struct DriverInfo {
  WriteFailure* sink;
};

struct DriverFile {
  H5FD_t pub;  // first: HDF5 passes &pub back to every callback
  int fd = -1;
  haddr_t eoa = 0;  // HDF5's end of allocated space
  haddr_t eof = 0;  // the end of what was written
  WriteFailure* sink = nullptr;
};

DriverFile* of(H5FD_t* file) { return reinterpret_cast<DriverFile*>(file); }
const DriverFile* of(const H5FD_t* file) { return reinterpret_cast<const DriverFile*>(file); }

void record(WriteFailure* sink, int error, haddr_t at) {
  if (!sink->failed()) sink->error = error, sink->offset = at;
}
void record(DriverFile* f, int error, haddr_t at) { record(f->sink, error, at); }

H5FD_t* open_file(const char* name, unsigned flags, hid_t fapl, haddr_t) {
  const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
  // Only new files: reading and appending go through HDF5's own driver.
  if (info == nullptr || !(flags & H5F_ACC_RDWR) || !(flags & H5F_ACC_CREAT)) return nullptr;
  const int fd = ::open(name, O_RDWR | O_CREAT | (flags & H5F_ACC_EXCL ? O_EXCL : O_TRUNC), 0644);
  if (fd < 0) {
    record(info->sink, errno, 0);
    return nullptr;
  }
  auto* f = new DriverFile;
  f->fd = fd, f->sink = info->sink;
  return &f->pub;
}

herr_t close_file(H5FD_t* file) {
  DriverFile* f = of(file);
  if (::close(f->fd) != 0) record(f, errno, f->eof);
  delete f;
  return 0;
}

herr_t query(const H5FD_t*, unsigned long* flags) {
  // What HDF5's POSIX driver declares: metadata and small raw data gathered into larger
  // writes, and a file descriptor behind H5Fget_vfd_handle.
  if (flags)
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE;
  return 0;
}

haddr_t get_eoa(const H5FD_t* file, H5FD_mem_t) { return of(file)->eoa; }

herr_t set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  of(file)->eoa = addr;
  return 0;
}

haddr_t get_eof(const H5FD_t* file, H5FD_mem_t) { return of(file)->eof; }

herr_t get_handle(H5FD_t* file, hid_t, void** handle) {
  *handle = &of(file)->fd;
  return 0;
}

herr_t read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buffer) {
  DriverFile* f = of(file);
  auto* p = static_cast<char*>(buffer);
  while (size > 0) {
    const ssize_t n = ::pread(f->fd, p, size, off_t(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // past the end (as HDF5 expects: zeros) or a failed read
      if (n < 0) record(f, errno, addr);
      std::memset(p, 0, size);
      break;
    }
    p += n, addr += haddr_t(n), size -= size_t(n);
  }
  return 0;
}

herr_t write(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buffer) {
  DriverFile* f = of(file);
  if (f->sink->failed()) return 0;  // the file is lost already: write nothing more
  const auto* p = static_cast<const char*>(buffer);
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::pwrite(f->fd, p + done, size - done, off_t(addr + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      record(f, n < 0 ? errno : EIO, addr + done);
      return 0;
    }
    done += size_t(n);
  }
  f->eof = std::max(f->eof, addr + size);
  return 0;
}

herr_t flush(H5FD_t*, hid_t, hbool_t) { return 0; }  // durability is the caller's fsync

herr_t truncate(H5FD_t* file, hid_t, hbool_t) {
  DriverFile* f = of(file);
  if (f->eoa == f->eof || f->sink->failed()) return 0;
  if (::ftruncate(f->fd, off_t(f->eoa)) != 0) {
    record(f, errno, f->eoa);
    return 0;
  }
  f->eof = f->eoa;
  return 0;
}

// Positional initialisation, in H5FDpublic.h's (1.10) field order.
// clang-format off
const H5FD_class_t kDriver = {
    "loom_write",
    haddr_t(INT64_MAX),                             // maxaddr: off_t's range
    H5F_CLOSE_WEAK,                                 // (the access list asks for strong)
    nullptr,                                        // terminate
    nullptr, nullptr, nullptr,                      // superblock driver block: none
    sizeof(DriverInfo), nullptr, nullptr, nullptr,  // fapl info: copied bytewise
    0, nullptr, nullptr,                            // dxpl
    open_file, close_file,
    nullptr,                                        // cmp: files compared by address
    query,
    nullptr,                                        // get_type_map
    nullptr, nullptr,                               // alloc, free: HDF5's own
    get_eoa, set_eoa, get_eof, get_handle, read, write, flush, truncate,
    nullptr, nullptr,                               // lock, unlock: a fresh temporary file
    H5FD_FLMAP_DICHOTOMY,
};
// clang-format on

}  // namespace

int64_t write_driver_access(WriteFailure* sink) {
  static const hid_t driver = H5FDregister(&kDriver);
  LOOM_CHECK(driver >= 0, "h5: cannot register loom's HDF5 write driver");
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  LOOM_CHECK(fapl >= 0, "h5: cannot create a file-access property list");
  const DriverInfo info{sink};
  // Strong close: H5Fclose closes the file's open objects and the driver at once, so the
  // driver never writes to *sink after the caller's close (HDF5's default, weak, would
  // keep the file open while a dataset handle lives).
  if (H5Pset_driver(fapl, driver, &info) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    H5Pclose(fapl);
    throw Error("h5: cannot select loom's HDF5 write driver");
  }
  return fapl;
}

}  // namespace loom::recipes::h5
