// CUDA launcher of the fast mock-chip emulator (mock_cuda.cu): the same runs as mock_cpu.cpp's
// run_all, one CUDA block per batch row. Raw pointers and the CUDA runtime only (no PyTorch
// headers), so that nvcc alone compiles it. Compiled, never run: no machine of this project has a
// GPU (csrc/README.md).
//
// Use: ask run_cuda_workspace_bytes for the scratch size, allocate that much device memory, call
// launch_run_cuda (asynchronous on `stream`), then run_cuda_status (waits for the stream) before
// reading the outputs. Every pointer in RunArgs is a device pointer; `counters` must be zeroed
// by the caller (the kernel adds to it); `spikes` and `membrane` are written where non-null.
// Spike events (mock_cpu.cpp's per-row (step, neuron) lists and spike_rows' jittered times) are
// not made here: the caller derives them from `spikes` afterwards (see mock_cuda.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "mock_core.h"

namespace neurodeploy {
namespace mock {

// The launcher's size limits (checked on the host before the launch).
constexpr int64_t kCudaMaxNeurons = 8192;  // a block of at most 1024 threads, 8 neurons each

// Device scratch for `a` when at most `max_active` route rows are active in one row, one step and
// one kind of source (the FPGA events' routes, or the routes of the previous step's spikes,
// counted before any drop). A safe bound: max(rows of neurons_out.matrix, the largest sum over one
// (row, step) of the route counts first[c + 1] - first[c] of the input events arriving then).
size_t run_cuda_workspace_bytes(const RunArgs& a, int64_t max_active);

// Enqueues the runs of `a` on `stream`. Returns cudaSuccess, cudaErrorInvalidValue for arguments
// the kernel cannot take (sizes, missing pointers, a workspace smaller than
// run_cuda_workspace_bytes; nothing is launched then), or the launch's own error; `message`
// (optional) receives the reason.
cudaError_t launch_run_cuda(const RunArgs& a, int64_t max_active, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream, std::string* message = nullptr);

// Waits for `stream`, then reports whether some row needed more than `max_active` active route rows
// (cudaErrorInvalidValue: that row stopped at that step, its outputs are incomplete; launch again with
// a larger limit) or the kernel failed. `workspace` is the one given to launch_run_cuda.
cudaError_t run_cuda_status(const void* workspace, cudaStream_t stream, std::string* message = nullptr);

}  // namespace mock
}  // namespace neurodeploy
