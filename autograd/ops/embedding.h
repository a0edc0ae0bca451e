#pragma once

#include "autograd/tensor.h"

namespace loom::ag {}  // namespace loom::ag
