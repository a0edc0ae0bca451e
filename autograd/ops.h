// Every differentiable op, by family. Names and argument order follow PyTorch's
// functional API, so a test can be written from the PyTorch docs. Each family's header
// is next to the .cpp that holds its forwards and backwards.
#pragma once

#include "autograd/autocast.h"
#include "autograd/ops/attention.h"
#include "autograd/ops/dropout.h"
#include "autograd/ops/embedding.h"
#include "autograd/ops/index.h"
#include "autograd/ops/loss.h"
#include "autograd/ops/matmul.h"
#include "autograd/ops/norm.h"
#include "autograd/ops/pointwise.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/shape.h"
#include "autograd/ops/softmax.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"
