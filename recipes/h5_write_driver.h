// An HDF5 file driver for writing new files, that never tells HDF5 a write failed.
//
// HDF5 1.10 cannot recover from a failed write: once its POSIX driver reports an error
// (disk full, I/O error), closing the file fails and the library aborts at exit. With this
// driver every write is a pwrite whose first failure (errno and file offset) is recorded in
// a WriteFailure the caller owns, and HDF5 is told it succeeded; later writes of the file
// are skipped. HDF5 then closes the file normally and the caller reports the recorded
// failure (h5::File does, after flush and close). Reads of the file being written (HDF5
// rereads metadata it evicted from its cache) see zeros where a write failed.
//
// The files are ordinary HDF5 files (no driver block in the superblock): h5py, h5dump and
// loom read them with the default driver.
#pragma once

#include <cstdint>
#include <string>

namespace loom::recipes::h5 {

struct WriteFailure {
  int error = 0;        // errno of the first failed write, truncate or close; 0: none
  uint64_t offset = 0;  // the file offset it was writing
  bool failed() const { return error != 0; }
  std::string describe() const;  // "cannot write at byte 65536: File too large"
};

// A new file-access property list (an hid_t; the caller closes it with H5Pclose) that
// creates files through the driver, recording into *sink, which must outlive H5Fclose of
// the file (the list asks for a strong close: H5Fclose also closes the file's objects).
int64_t write_driver_access(WriteFailure* sink);

}  // namespace loom::recipes::h5
