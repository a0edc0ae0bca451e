#include "kernels/error.h"

namespace loom::detail {

void throw_internal(const char* file, int line, const char* what) {
  throw InternalError(cat(file, ":", line, ": internal check failed: ", what,
                          " (this is a bug in loom; please report it)"));
}

}  // namespace loom::detail
