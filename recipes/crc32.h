// CRC-32 of checkpoint datasets (the `crc32` attribute): the zlib / PNG polynomial, so
// Python's zlib.crc32 over a dataset's bytes gives the same number.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loom::recipes {

// CRC-32 of n bytes.
uint32_t crc32_of(const void* bytes, size_t n);
// The CRC-32 of earlier bytes (crc) continued over n more: crc32_of(a + b) ==
// crc32_update(crc32_of(a), b).
uint32_t crc32_update(uint32_t crc, const void* bytes, size_t n);

}  // namespace loom::recipes
