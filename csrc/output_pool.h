// Memory for the operators' large [T, B, N] outputs (lif_ops.cpp): a pool of huge-page mappings
// that a training loop reuses from call to call (output_pool.cpp says why and what it measured).
#pragma once

#include <ATen/core/Tensor.h>

namespace neurodeploy {

// An uninitialised tensor like at::empty(sizes, opts). On Linux, CPU outputs of 4 MiB and more
// get a 2 MiB-aligned mapping advised as huge pages, taken from (and given back to) the pool;
// smaller ones, other devices and other systems get at::empty's memory.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& opts);

}  // namespace neurodeploy
