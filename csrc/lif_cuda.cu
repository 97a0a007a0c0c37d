// CUDA launcher of the fused LIF time loop: a thread per neuron, the time loop inside it, the
// neuron's state in registers; the per-neuron arithmetic is lif_core.h, shared with the CPU.
//
// Needs no PyTorch headers (lif_ops.cpp's operators call it with raw pointers and a stream), so
// CI can compile it with nvcc alone. No machine of this project has a GPU: this file has been
// compiled, never run (csrc/README.md).
//
// Without feedback a thread owns one (row, neuron) and never waits for another; backward
// recomputes 32-step segments from the forward's checkpoints. With feedback the neurons of a row
// couple through L z_{k-1}: a block owns a row (each thread NPT neurons, NPT in {1, 2, 4, 8}, so
// N <= 8192), synchronises once per step, and keeps the indices of the previous step's spikes in
// shared memory, in ascending order (a ballot/prefix-sum compaction), so that only those columns
// of L are read, added in the CPU launcher's order; backward reads the stored v_pre.
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "lif_core.h"

namespace neurodeploy {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kMaxThreads = 1024;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("neurodeploy_lif CUDA ") + what + ": " +
                             cudaGetErrorString(err));
}

template <typename T>
__device__ __forceinline__ NeuronCoeffs<T> coeffs_of(const ForwardArgs<T>& a, int64_t n) {
  return {a.alpha[n], a.beta[n], a.v_leak[n], a.v_th[n], a.v_reset[n], a.n_ref[n]};
}

// ---- without feedback: one thread per (row, neuron) --------------------------------------------

template <typename T>
__global__ void forward_independent(const ForwardArgs<T> a) {
  const int64_t stride = a.batch * a.neurons;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= stride) return;
  const int64_t b = idx / a.neurons, n = idx % a.neurons;
  const NeuronCoeffs<T> c = coeffs_of(a, n);
  NeuronState<T> s{T(0), c.v_leak, 0};
  for (int64_t t = 0; t < a.steps; ++t) {
    if (a.checkpoint != nullptr && t > 0 && t % kSegment == 0)
      store_checkpoint(a.checkpoint, t, b, n, a.batch, a.neurons, s);
    const int64_t off = t * stride + idx;
    T p;
    bool r;
    a.z[off] = lif_forward_step(a.x[off], s, c, p, r);
    a.v[off] = s.v;
  }
}

// Per segment (last first): recompute its kSegment steps from the checkpoint into the thread's
// local arrays, then walk them backwards.
template <typename T>
__global__ void backward_independent(const BackwardArgs<T> a) {
  const ForwardArgs<T>& f = a.f;
  const int64_t stride = f.batch * f.neurons;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= stride) return;
  const int64_t b = idx / f.neurons, n = idx % f.neurons;
  const NeuronCoeffs<T> c = coeffs_of(f, n);
  const T reset_gate = a.detach_reset ? T(0) : T(1);
  NeuronAdjoint<T> adj{T(0), T(0)};
  T v_pre[kSegment];
  bool refractory[kSegment];
  for (int64_t s = num_segments(f.steps) - 1; s >= 0; --s) {
    const int64_t t0 = s * kSegment;
    const int64_t t1 = t0 + kSegment < f.steps ? t0 + kSegment : f.steps;
    NeuronState<T> st = load_checkpoint(f.checkpoint, t0, b, n, f.batch, f.neurons, c.v_leak);
    for (int64_t t = t0; t < t1; ++t)
      lif_forward_step(f.x[t * stride + idx], st, c, v_pre[t - t0], refractory[t - t0]);
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t off = t * stride + idx;
      const T gz = a.grad_z != nullptr ? a.grad_z[off] : T(0);
      const T gv = a.grad_v != nullptr ? a.grad_v[off] : T(0);
      a.grad_x[off] = lif_backward_step(gz, gv, v_pre[t - t0], refractory[t - t0], c,
                                        RuntimeSurrogate<T>{a.surrogate}, reset_gate, adj);
    }
  }
}

// ---- with feedback: one block per row ----------------------------------------------------------

struct Compaction {  // the block's shared bookkeeping for the ordered spike list
  int warp_count[kMaxThreads / 32];
  int warp_offset[kMaxThreads / 32];
  int chunk_total;
  int n_spiked;
};

// Rebuilds spiked[] = ascending indices n with flag[m] set (n = m * blockDim.x + threadIdx.x).
// Every thread of the block must call it (ballots and barriers inside).
template <int NPT>
__device__ void compact_spikes(const bool (&flag)[NPT], int* spiked, Compaction& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int base = 0;
#pragma unroll
  for (int m = 0; m < NPT; ++m) {
    const unsigned mask = __ballot_sync(kFullMask, flag[m]);
    if (lane == 0) sh.warp_count[warp] = __popc(mask);
    __syncthreads();
    if (warp == 0) {  // exclusive prefix sum over the warps' counts
      const int own = lane < warps ? sh.warp_count[lane] : 0;
      int sum = own;
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(kFullMask, sum, o);
        if (lane >= o) sum += y;
      }
      if (lane < warps) sh.warp_offset[lane] = sum - own;
      if (lane == 31) sh.chunk_total = sum;
    }
    __syncthreads();
    if (flag[m])
      spiked[base + sh.warp_offset[warp] + __popc(mask & ((1u << lane) - 1u))] =
          m * blockDim.x + threadIdx.x;
    base += sh.chunk_total;
    __syncthreads();  // warp_count / chunk_total are reused by the next chunk
  }
  if (threadIdx.x == 0) sh.n_spiked = base;
  __syncthreads();
}

// All steps of row blockIdx.x with event-driven feedback: writes z, v and, when training
// (a.v_pre set), v_pre and the refractory flags that backward reads.
template <typename T, int NPT>
__device__ void row_steps(const ForwardArgs<T>& a, int* spiked, Compaction& sh) {
  const int64_t b = blockIdx.x, n_all = a.neurons, stride = a.batch * n_all;
  NeuronCoeffs<T> c[NPT];
  NeuronState<T> st[NPT];
  bool valid[NPT], flag[NPT];
#pragma unroll
  for (int m = 0; m < NPT; ++m) {
    const int64_t n = m * blockDim.x + threadIdx.x;
    valid[m] = n < n_all;
    if (valid[m]) {
      c[m] = coeffs_of(a, n);
      st[m] = {T(0), c[m].v_leak, 0};
    }
  }
  if (threadIdx.x == 0) sh.n_spiked = 0;
  __syncthreads();
  for (int64_t t = 0; t < a.steps; ++t) {
    T lat[NPT];
#pragma unroll
    for (int m = 0; m < NPT; ++m) lat[m] = T(0);
    const int n_spiked = sh.n_spiked;
    for (int s = 0; s < n_spiked; ++s) {  // only the columns of neurons that spiked at t-1
      const T* col = a.lateral_t + static_cast<int64_t>(spiked[s]) * n_all;
#pragma unroll
      for (int m = 0; m < NPT; ++m)
        if (valid[m]) lat[m] += col[m * blockDim.x + threadIdx.x];
    }
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
      flag[m] = false;
      if (!valid[m]) continue;
      const int64_t off = t * stride + b * n_all + m * blockDim.x + threadIdx.x;
      T p;
      bool r;
      const T z = lif_forward_step(a.x[off] + lat[m], st[m], c[m], p, r);
      flag[m] = z > T(0);
      a.z[off] = z;
      a.v[off] = st[m].v;
      if (a.v_pre != nullptr) a.v_pre[off] = p;
      if (a.refractory != nullptr) a.refractory[off] = r;
    }
    compact_spikes<NPT>(flag, spiked, sh);  // its first barrier also ends the reads of spiked[]
  }
}

// __launch_bounds__: a block may have 1024 threads, so at most 64 registers each (the register
// file is 64 K per block); without it the NPT = 8 variants would fail to launch.
template <typename T, int NPT>
__global__ void __launch_bounds__(kMaxThreads) forward_lateral(const ForwardArgs<T> a) {
  extern __shared__ int spiked[];  // [N]
  __shared__ Compaction sh;
  row_steps<T, NPT>(a, spiked, sh);
}

// Per step (last first): gz_lat[n] = (gI_{t+1} L)[n] = sum_j gI_{t+1}[j] L[j, n] from the row's
// gI_{t+1} in shared memory, then the neuron's reverse step on the stored v_pre. Sparse backward
// (a.sparse_band > 0, lif_cpu.cpp's backward_lateral_sparse): a neuron outside the band at step t
// skips its sum (its gz is multiplied by sigma' = 0), exactly as on the CPU.
template <typename T, int NPT>
__global__ void __launch_bounds__(kMaxThreads) backward_lateral(const BackwardArgs<T> a) {
  extern __shared__ unsigned char smem[];
  T* g_next = reinterpret_cast<T*>(smem);  // [N] gI_{t+1} of this row
  const ForwardArgs<T>& f = a.f;
  const int64_t b = blockIdx.x, n_all = f.neurons, stride = f.batch * n_all;
  const T reset_gate = a.detach_reset ? T(0) : T(1);
  NeuronAdjoint<T> adj[NPT];
#pragma unroll
  for (int m = 0; m < NPT; ++m) adj[m] = {T(0), T(0)};
  for (int64_t n = threadIdx.x; n < n_all; n += blockDim.x) g_next[n] = T(0);
  __syncthreads();
  for (int64_t t = f.steps - 1; t >= 0; --t) {
    T gz_lat[NPT];
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
      gz_lat[m] = T(0);
      const int64_t n = m * blockDim.x + threadIdx.x;
      if (n >= n_all) continue;
      if (a.sparse_band > T(0) &&
          !sparse_active(f.v_pre[t * stride + b * n_all + n], f.v_th[n], a.sparse_band))
        continue;
      for (int64_t j = 0; j < n_all; ++j) gz_lat[m] += g_next[j] * a.lateral[j * n_all + n];
    }
    __syncthreads();  // all reads of g_next done before it is overwritten
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
      const int64_t n = m * blockDim.x + threadIdx.x;
      if (n >= n_all) continue;
      const int64_t off = t * stride + b * n_all + n;
      const T gz = (a.grad_z != nullptr ? a.grad_z[off] : T(0)) + gz_lat[m];
      const T gv = a.grad_v != nullptr ? a.grad_v[off] : T(0);
      const bool r = f.refractory != nullptr && f.refractory[off] != 0;
      const T g = lif_backward_step(gz, gv, f.v_pre[off], r, coeffs_of(f, n),
                                    RuntimeSurrogate<T>{a.surrogate}, reset_gate, adj[m]);
      a.grad_x[off] = g;
      g_next[n] = g;
    }
    __syncthreads();
  }
}

// ---- host side ---------------------------------------------------------------------------------

struct RowLaunch {
  int npt, threads;
};

RowLaunch row_launch(int64_t n_all) {
  for (int npt : {1, 2, 4, 8}) {
    if (n_all <= static_cast<int64_t>(npt) * kMaxThreads) {
      const int64_t per = (n_all + npt - 1) / npt;
      return {npt, static_cast<int>(std::max<int64_t>(32, (per + 31) / 32 * 32))};
    }
  }
  throw std::runtime_error("neurodeploy_lif CUDA: lateral feedback supports N <= 8192, got " +
                           std::to_string(n_all));
}

template <typename Kernel>
void allow_shared(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)  // above the default dynamic shared-memory limit: opt in
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(bytes)),
          "shared memory");
}

template <typename T, int NPT>
void launch_forward_lateral(const ForwardArgs<T>& a, int threads, cudaStream_t stream) {
  const size_t bytes = static_cast<size_t>(a.neurons) * sizeof(int);
  allow_shared(forward_lateral<T, NPT>, bytes);
  forward_lateral<T, NPT><<<static_cast<unsigned>(a.batch), threads, bytes, stream>>>(a);
}

template <typename T, int NPT>
void launch_backward_lateral(const BackwardArgs<T>& a, int threads, cudaStream_t stream) {
  const size_t bytes = static_cast<size_t>(a.f.neurons) * sizeof(T);
  allow_shared(backward_lateral<T, NPT>, bytes);
  backward_lateral<T, NPT><<<static_cast<unsigned>(a.f.batch), threads, bytes, stream>>>(a);
}

template <typename T>
void forward_impl(const ForwardArgs<T>& a, cudaStream_t stream) {
  if (a.lateral_t == nullptr) {
    const int64_t total = a.batch * a.neurons, threads = 256;
    forward_independent<T>
        <<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, stream>>>(a);
  } else {
    const RowLaunch l = row_launch(a.neurons);
    switch (l.npt) {
      case 1: launch_forward_lateral<T, 1>(a, l.threads, stream); break;
      case 2: launch_forward_lateral<T, 2>(a, l.threads, stream); break;
      case 4: launch_forward_lateral<T, 4>(a, l.threads, stream); break;
      default: launch_forward_lateral<T, 8>(a, l.threads, stream); break;
    }
  }
  check(cudaGetLastError(), "forward launch");
}

template <typename T>
void backward_impl(const BackwardArgs<T>& a, cudaStream_t stream) {
  if (a.lateral == nullptr) {
    const int64_t total = a.f.batch * a.f.neurons, threads = 256;
    backward_independent<T>
        <<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, stream>>>(a);
  } else {
    const RowLaunch l = row_launch(a.f.neurons);
    switch (l.npt) {
      case 1: launch_backward_lateral<T, 1>(a, l.threads, stream); break;
      case 2: launch_backward_lateral<T, 2>(a, l.threads, stream); break;
      case 4: launch_backward_lateral<T, 4>(a, l.threads, stream); break;
      default: launch_backward_lateral<T, 8>(a, l.threads, stream); break;
    }
  }
  check(cudaGetLastError(), "backward launch");
}

}  // namespace

void lif_forward_cuda(const ForwardArgs<float>& a, void* stream) {
  forward_impl(a, static_cast<cudaStream_t>(stream));
}
void lif_forward_cuda(const ForwardArgs<double>& a, void* stream) {
  forward_impl(a, static_cast<cudaStream_t>(stream));
}
void lif_backward_cuda(const BackwardArgs<float>& a, void* stream) {
  backward_impl(a, static_cast<cudaStream_t>(stream));
}
void lif_backward_cuda(const BackwardArgs<double>& a, void* stream) {
  backward_impl(a, static_cast<cudaStream_t>(stream));
}

}  // namespace neurodeploy
