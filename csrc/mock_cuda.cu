// CUDA launcher of the fast mock-chip emulator: what mock_cpu.cpp's run_all computes for one batch
// (the RunArgs contract in mock_core.h), one CUDA block per batch row (one run of the chip on one
// sample), the block's threads over the neurons; the per-neuron update is lif_core.h's, the random
// numbers mock_core.h's counter-based generator, so every draw is the CPU's draw.
//
// Compiled, never run: no machine of this project has a GPU (csrc/README.md). Needs no PyTorch
// headers, so nvcc alone compiles it (tests/test_mock_cuda.py).
//
// Per step t of a row, as the CPU's row_step:
//   1. the row's FPGA events arriving at t, expanded to their route rows (Sources.first), in event
//      order then route order; bus capacity enforced (drops lowest priority first); rows summed;
//   2. the same for the routes of the neurons that spiked at t-1 (ascending neuron order);
//   3. membrane noise, lif_forward_step, the spikes of t (routed at t+1);
//   4. the recorded membranes: the membrane itself, or at a CADC sampling step a sample with read
//      noise, rounded half to even (rintf, as std::nearbyint and torch.round) and clipped to 8 bit;
// and after the last step the CADC samples are interpolated onto the step grid.
//
// What differs from the CPU build:
//   - Order of summation: none. The active list is built in the CPU's order (an ordered block-wide
//     compaction) and each thread adds the rows in list order starting from 0, as add_rows does;
//     the set of passing events is the CPU's, so the currents are the CPU's bit for bit. The one
//     exception: a route row listed twice in one step (two events of one channel arriving in the
//     same step) ties with itself in priority; if exactly one copy is dropped, the CPU's std::sort
//     leaves unspecified which, here the later one goes, so the same rows may be added in another
//     order (a last-bit difference at most; the counts agree).
//   - FMA: mock_cpu.cpp is built with -ffp-contract=off. This file's own products (noise, read
//     noise, interpolation) use __fmul_rn / __fadd_rn, which nvcc never contracts; lif_core.h's update
//     is plain C++, so to match the CPU bit for bit build with `--fmad=false` (else nvcc forms FMAs
//     there and a spike can flip where the membrane meets the threshold to the last bit).
//   - Spike events: not made here. mock_cpu.cpp collects each row's (step, neuron) pairs while it runs
//     and spike_rows adds the jittered times; here the caller derives them from `spikes` afterwards
//     (torch.nonzero of the [T, B, N] spikes lists (t, b, n) in spike_rows' order; the jitter is a
//     function of (key, kSpikeJitter, sample0 + b, t, n), so it can be drawn on the host or device).
//     So events need `spikes`, as on the CPU (which makes them only when spikes are wanted).
//   - Limits: N <= kCudaMaxNeurons (8192: at most 1024 threads, 8 neurons each); at most
//     `max_active` route rows active per row, step and kind of source (the workspace holds one list
//     per row). A row that would need more stops at that step and run_cuda_status reports it
//     (nothing is written past the workspace).
#include "mock_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "lif_core.h"
#include "mock_core.h"

namespace neurodeploy {
namespace mock {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kMaxThreads = 1024;
constexpr int kMaxPerThread = 8;  // neurons per thread: kCudaMaxNeurons = kMaxThreads * kMaxPerThread
static_assert(kCudaMaxNeurons == int64_t(kMaxThreads) * kMaxPerThread, "the limit in mock_cuda.h");

// ---- workspace -----------------------------------------------------------------------------------
//
// [kStatusBytes: RunStatus][row 0's scratch][row 1's scratch]...; a row's scratch (RowLayout):
//   active[max_active]    route rows of the current list (-1: dropped at a bus)
//   priority[max_active]  their priorities, bus_of[max_active] their buses (only while contested)
//   bus_count[n_buses]    events per bus in this step (zero between steps)
//   samples[C, R]         the CADC samples of the recorded neurons (CADC with membranes only)
// In global memory, not shared: the sizes depend on the routing and the CADC schedule, and a
// list is read by all threads of the row at the same index (one broadcast load, cached).

// Written by the first row that runs out of room; the launcher zeroes it before the launch.
struct RunStatus {
  unsigned int overflow;  // 0: every row fitted
  int64_t row, step, needed;
};
constexpr size_t kStatusBytes = 256;
static_assert(sizeof(RunStatus) <= kStatusBytes, "the status fits its slot");

struct RowLayout {
  int64_t max_active, n_buses, n_samples;
  size_t active, priority, bus_of, bus_count, samples, row_bytes;  // byte offsets in a row's scratch
};

struct RowScratch {
  int32_t* active;
  uint32_t* priority;
  int32_t* bus_of;
  int32_t* bus_count;
  float* samples;
};

size_t aligned(int64_t bytes) { return (static_cast<size_t>(bytes) + 15) / 16 * 16; }

RowLayout row_layout(const RunArgs& a, int64_t max_active) {
  RowLayout l{};
  l.max_active = std::max<int64_t>(max_active, 0);
  l.n_buses = std::max(a.inputs.bus ? a.inputs.n_buses : 0, a.neurons_out.bus ? a.neurons_out.n_buses : 0);
  l.n_samples = (a.cadc_lower && a.membrane) ? a.cadc_count * a.n_recorded : 0;
  size_t at = 0;
  l.active = at;
  at += aligned(l.max_active * 4);
  l.priority = at;
  at += aligned(l.max_active * 4);
  l.bus_of = at;
  at += aligned(l.max_active * 4);
  l.bus_count = at;
  at += aligned(l.n_buses * 4);
  l.samples = at;
  at += aligned(l.n_samples * 4);
  l.row_bytes = at;
  return l;
}

__device__ RowScratch scratch_of(unsigned char* workspace, const RowLayout& l, int64_t b) {
  unsigned char* row = workspace + kStatusBytes + static_cast<size_t>(b) * l.row_bytes;
  return {reinterpret_cast<int32_t*>(row + l.active), reinterpret_cast<uint32_t*>(row + l.priority),
          reinterpret_cast<int32_t*>(row + l.bus_of), reinterpret_cast<int32_t*>(row + l.bus_count),
          reinterpret_cast<float*>(row + l.samples)};
}

__device__ void report_overflow(unsigned char* workspace, int64_t b, int64_t t, int64_t needed) {
  RunStatus* s = reinterpret_cast<RunStatus*>(workspace);
  if (threadIdx.x == 0 && atomicCAS(&s->overflow, 0u, 1u) == 0u) {
    s->row = b;
    s->step = t;
    s->needed = needed;
  }
}

// ---- the active list of route rows ---------------------------------------------------------------

struct BlockScan {
  long long warp_sum[kMaxThreads / 32];
  long long total;
};

// Exclusive prefix sum of `value` over the block in thread order; *total receives the block's sum.
// Every thread must call it (barriers inside); blockDim.x is a multiple of 32.
__device__ long long exclusive_scan(long long value, BlockScan& sh, long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  long long inclusive = value;
  for (int o = 1; o < 32; o <<= 1) {
    const long long y = __shfl_up_sync(kFullMask, inclusive, o);
    if (lane >= o) inclusive += y;
  }
  if (lane == 31) sh.warp_sum[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {  // the warps' sums, scanned by one warp (at most 32 warps)
    const long long own = lane < warps ? sh.warp_sum[lane] : 0;
    long long sum = own;
    for (int o = 1; o < 32; o <<= 1) {
      const long long y = __shfl_up_sync(kFullMask, sum, o);
      if (lane >= o) sum += y;
    }
    if (lane < warps) sh.warp_sum[lane] = sum - own;
    if (lane == 31) sh.total = sum;
  }
  __syncthreads();
  const long long offset = sh.warp_sum[warp] + inclusive - value;
  *total = sh.total;
  __syncthreads();  // warp_sum and total are reused by the next call
  return offset;
}

// Builds the list of route rows first[s] .. first[s + 1] - 1 of the sources s of a sequence of items,
// in item order (the CPU's order). Items come in `chunks` chunks of one per thread, chunk by chunk,
// thread by thread; source_of(c) is this thread's source in chunk c, or -1 for none. Returns the
// list's length, or a number above max_active (the same for every thread) when it does not fit:
// then the list is incomplete and nothing was written past max_active.
template <typename SourceOf>
__device__ int64_t list_routes(int64_t chunks, SourceOf source_of, const int64_t* first, const RowScratch& w,
                               int64_t max_active, BlockScan& sh) {
  int64_t length = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t s = source_of(c);
    const int64_t begin = s >= 0 ? first[s] : 0;
    const int64_t count = s >= 0 ? first[s + 1] - begin : 0;
    long long total;
    const int64_t at = length + exclusive_scan(count, sh, &total);
    if (length + total > max_active) return length + total;
    for (int64_t q = 0; q < count; ++q) w.active[at + q] = static_cast<int32_t>(begin + q);
    length += total;
  }
  __syncthreads();  // the list is complete before anyone reads it
  return length;
}

// Whether entry i of an overflowing bus passes: fewer than `capacity` entries of its bus outrank it.
// Draws of one step are distinct for distinct rows (lowbias32 is a bijection), so only a row listed
// twice ties with itself; there the earlier position ranks first, so that exactly `capacity` pass.
// O(list) per contested entry: contests happen only under congestion, and lists are short.
__device__ bool passes(int64_t i, int64_t length, int64_t capacity, const RowScratch& w) {
  const int32_t bus = w.bus_of[i];
  const uint32_t mine = w.priority[i];
  int64_t ahead = 0;
  for (int64_t j = 0; j < length && ahead < capacity; ++j)
    if (w.bus_of[j] == bus && (w.priority[j] > mine || (w.priority[j] == mine && j < i))) ++ahead;
  return ahead < capacity;
}

// mock_cpu.cpp's limit_buses: the events of the list beyond `capacity` on one bus in this step are
// dropped, the highest priorities pass (priority = draw(base, route row)). A dropped entry becomes -1,
// so the list keeps its order. Returns the number this thread dropped (the block's sum is the CPU's).
__device__ int64_t limit_buses(const Sources& s, int64_t capacity, uint64_t base, int64_t length,
                               const RowScratch& w) {
  if (s.bus == nullptr || length <= capacity) return 0;  // the same for every thread: nothing overflows
  for (int64_t i = threadIdx.x; i < length; i += blockDim.x) {
    const int32_t r = w.active[i];
    w.bus_of[i] = s.bus[r];
    w.priority[i] = draw(base, static_cast<uint32_t>(r));
    atomicAdd(&w.bus_count[w.bus_of[i]], 1);
  }
  __syncthreads();
  int64_t dropped = 0;
  for (int64_t i = threadIdx.x; i < length; i += blockDim.x) {
    if (w.bus_count[w.bus_of[i]] <= capacity || passes(i, length, capacity, w)) continue;
    w.active[i] = -1;  // only this thread touches active[i]; passes() reads bus_of and priority
    ++dropped;
  }
  __syncthreads();  // every count read before it is cleared
  for (int64_t i = threadIdx.x; i < length; i += blockDim.x) w.bus_count[w.bus_of[i]] = 0;
  __syncthreads();  // the drops are visible, the counts zero for the next list
  return dropped;
}

// out[m] = the sum of the listed rows at this thread's neuron m (m blockDim + threadIdx.x), in list
// order starting from 0: mock_cpu.cpp's add_rows, the same additions in the same order.
template <int NPT>
__device__ void add_rows(const float* matrix, const RowScratch& w, int64_t length, int64_t n_all,
                         float (&out)[NPT]) {
#pragma unroll
  for (int m = 0; m < NPT; ++m) out[m] = 0.0f;
  for (int64_t i = 0; i < length; ++i) {
    const int32_t r = w.active[i];  // the same address for every thread: a broadcast
    if (r < 0) continue;
    const float* row = matrix + static_cast<int64_t>(r) * n_all;
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
      const int64_t n = static_cast<int64_t>(m) * blockDim.x + threadIdx.x;
      if (n < n_all) out[m] += row[n];
    }
  }
}

// ---- the neurons and the readout -----------------------------------------------------------------

// Read from global memory every step rather than held in registers: with 8 neurons per thread the
// coefficients would not fit the 64 registers a 1024-thread block allows (the loads are cached).
__device__ NeuronCoeffs<float> coeffs_of(const RunArgs& a, int64_t n) {
  return {a.alpha[n], a.beta[n], a.v_leak[n], a.v_th[n], a.v_reset[n], a.n_ref[n]};
}

// std::min(std::max(v, 0), 255) as the CPU writes it (the same result for NaN: NaN, not 0).
__device__ float clip_8bit(float v) {
  v = v < 0.0f ? 0.0f : v;
  return 255.0f < v ? 255.0f : v;
}

// The recorded membranes of step t (v_now: the row's membranes after the step, in shared memory):
// without CADC the membrane itself into `membrane`; with CADC, at a sampling step j, the sample with
// read noise keyed by (sample, j, neuron), rounded and clipped, into the row's samples.
__device__ void read_out(const RunArgs& a, int64_t t, int64_t b, uint64_t sample, const float* v_now,
                         const RowScratch& w) {
  const int64_t n_rec = a.n_recorded;
  if (a.cadc_lower == nullptr) {
    float* out = a.membrane + t * a.batch * n_rec + b * n_rec;
    for (int64_t i = threadIdx.x; i < n_rec; i += blockDim.x) out[i] = v_now[a.recorded[i]];
    return;
  }
  const int64_t j = (t - a.cadc_first) / a.cadc_every;
  if (t < a.cadc_first || j >= a.cadc_count || t != a.cadc_first + j * a.cadc_every) return;
  const uint64_t base = step_base(a.key, kCadcReadNoise, sample, static_cast<uint64_t>(j));
  for (int64_t i = threadIdx.x; i < n_rec; i += blockDim.x) {
    const int32_t n = a.recorded[i];  // a neuron's draw is its own, whichever others are recorded
    float value = v_now[n];
    if (a.read_noise > 0.0f)
      value = __fadd_rn(value, __fmul_rn(normal_at(base, static_cast<uint32_t>(n), a.table), a.read_noise));
    w.samples[j * n_rec + i] = clip_8bit(rintf(value));  // rintf: round half to even
  }
}

// After the last step: step t reads s[lower[t]] wl[t] + s[upper[t]] wh[t] of the row's samples.
// Returns the number of this thread's readings outside [cadc_low, cadc_high].
// Every j < cadc_count must have been sampled (readout.cadc_grid's schedules are): samples are not zeroed.
__device__ int64_t interpolate(const RunArgs& a, int64_t b, const RowScratch& w) {
  const int64_t n_rec = a.n_recorded;
  int64_t outside = 0;
  for (int64_t i = threadIdx.x; i < n_rec; i += blockDim.x) {
    for (int64_t t = 0; t < a.steps; ++t) {
      const float low = w.samples[a.cadc_lower[t] * n_rec + i], high = w.samples[a.cadc_upper[t] * n_rec + i];
      const float m = __fadd_rn(__fmul_rn(low, a.cadc_wlow[t]), __fmul_rn(high, a.cadc_whigh[t]));
      a.membrane[t * a.batch * n_rec + b * n_rec + i] = m;
      outside += (m < a.cadc_low) | (m > a.cadc_high);
    }
  }
  return outside;
}

__device__ void add_counter(const RunArgs& a, int64_t b, Counter k, int64_t value) {
  if (value != 0)
    atomicAdd(reinterpret_cast<unsigned long long*>(a.counters + b * kCounters + k),
              static_cast<unsigned long long>(value));  // two's complement: the int64 sum
}

// ---- the kernel ----------------------------------------------------------------------------------

// All steps of row blockIdx.x. Thread k owns neurons m blockDim.x + k (m < NPT), their state in
// registers; the row's lists live in its workspace scratch.
template <int NPT, bool kRef>
__global__ void __launch_bounds__(kMaxThreads)
    run_rows(const RunArgs a, const RowLayout layout, unsigned char* workspace) {
  extern __shared__ float v_now[];  // [N] the membranes after the step, when some are read out
  __shared__ BlockScan scan;
  __shared__ int64_t event_begin, event_end;  // this step's FPGA events: in_step/in_channel[begin, end)
  const int64_t b = blockIdx.x, n_all = a.neurons, stride = a.batch * n_all;
  const uint64_t sample = static_cast<uint64_t>(a.sample0 + b);
  const RowScratch w = scratch_of(workspace, layout, b);
  const int64_t max_active = layout.max_active;

  NeuronState<float> state[NPT];
#pragma unroll
  for (int m = 0; m < NPT; ++m) {
    const int64_t n = static_cast<int64_t>(m) * blockDim.x + threadIdx.x;
    state[m] = {0.0f, n < n_all ? a.v_leak[n] : 0.0f, 0};
  }
  unsigned spiked = 0;  // bit m: neuron m of this thread spiked at the previous step
  for (int64_t i = threadIdx.x; i < layout.n_buses; i += blockDim.x) w.bus_count[i] = 0;
  if (threadIdx.x == 0) event_end = a.in_offsets[b];
  int64_t in_dropped = 0, out_dropped = 0, internal = 0;  // this thread's shares of the counters
  __syncthreads();

  for (int64_t t = 0; t < a.steps; ++t) {
    // 1. FPGA events arriving now. They are sorted by step; one thread finds this step's (a few per
    // step), consuming them only while in_step == t, exactly as the CPU's cursor does.
    if (threadIdx.x == 0) {
      int64_t e = event_end;
      const int64_t last = a.in_offsets[b + 1];
      event_begin = e;
      while (e < last && a.in_step[e] == t) ++e;
      event_end = e;
    }
    __syncthreads();
    const int64_t e0 = event_begin, e1 = event_end;
    int64_t length = list_routes(
        (e1 - e0 + blockDim.x - 1) / blockDim.x,
        [&](int64_t c) -> int64_t {
          const int64_t e = e0 + c * blockDim.x + threadIdx.x;
          return e < e1 ? a.in_channel[e] : -1;
        },
        a.inputs.first, w, max_active, scan);
    if (length > max_active) {  // the same for every thread: the whole block leaves
      report_overflow(workspace, b, t, length);
      return;
    }
    if (length > 0)
      in_dropped += limit_buses(a.inputs, a.capacity, step_base(a.key, kInputPriority, sample, t), length, w);
    float x[NPT];
    add_rows<NPT>(a.inputs.matrix, w, length, n_all, x);
    __syncthreads();  // the list is rebuilt next

    // 2. On-chip events of the previous step's spikes (one step of routing latency), in ascending
    // neuron order: chunk m holds the neurons m blockDim.x + k.
    length = list_routes(
        NPT,
        [&](int64_t m) -> int64_t {
          return (spiked >> m) & 1u ? m * blockDim.x + threadIdx.x : -1;
        },
        a.neurons_out.first, w, max_active, scan);
    if (length > max_active) {
      report_overflow(workspace, b, t, length);
      return;
    }
    if (length > 0)
      out_dropped +=
          limit_buses(a.neurons_out, a.capacity, step_base(a.key, kNeuronPriority, sample, t), length, w);
    float lat[NPT];
    add_rows<NPT>(a.neurons_out.matrix, w, length, n_all, lat);
    __syncthreads();

    // 3. Membrane noise and the neuron update; spikes out.
    const uint64_t noise_base = step_base(a.key, kMembraneNoise, sample, t);
    spiked = 0;
#pragma unroll
    for (int m = 0; m < NPT; ++m) {
      const int64_t n = static_cast<int64_t>(m) * blockDim.x + threadIdx.x;
      if (n >= n_all) continue;
      float xn = x[m];
      if (a.noise_sigma != nullptr)
        xn = __fadd_rn(xn, __fmul_rn(normal_at(noise_base, static_cast<uint32_t>(n), a.table), a.noise_sigma[n]));
      float v_pre;
      bool refractory;
      const float z = lif_forward_step<float, kRef>(xn + lat[m], state[m], coeffs_of(a, n), v_pre, refractory);
      if (a.spikes != nullptr) a.spikes[t * stride + b * n_all + n] = z;
      if (z > 0.0f) {
        spiked |= 1u << m;
        internal += a.routes_per_neuron[n];
      }
      if (a.membrane != nullptr) v_now[n] = state[m].v;
    }

    // 4. The readout of the recorded neurons (any thread reads any neuron: through shared memory).
    if (a.membrane != nullptr) {
      __syncthreads();
      read_out(a, t, b, sample, v_now, w);
      __syncthreads();  // v_now is rewritten at the next step
    }
  }

  int64_t outside = 0;
  if (a.cadc_lower != nullptr && a.membrane != nullptr) {
    __syncthreads();  // every sample written
    outside = interpolate(a, b, w);
  }
  add_counter(a, b, kInputDropped, in_dropped);
  add_counter(a, b, kNeuronDropped, out_dropped);
  add_counter(a, b, kEventsInternal, internal);
  add_counter(a, b, kCadcOutside, outside);
}

// ---- host side -----------------------------------------------------------------------------------

cudaError_t fail(std::string* message, cudaError_t err, const std::string& why) {
  if (message) *message = "neurodeploy_mock CUDA: " + why;
  return err;
}

cudaError_t invalid(std::string* message, const std::string& why) {
  return fail(message, cudaErrorInvalidValue, why);
}

// The first argument problem the kernel cannot take, or "" (sizes and pointers only: the contents
// of device arrays are not read here).
std::string argument_problem(const RunArgs& a, int64_t max_active) {
  if (a.steps < 0 || a.batch < 0 || a.neurons < 0 || a.n_recorded < 0) return "negative size";
  if (a.neurons > kCudaMaxNeurons)
    return "at most " + std::to_string(kCudaMaxNeurons) + " neurons, got " + std::to_string(a.neurons);
  if (a.batch > INT_MAX) return "batch larger than the grid";
  if (max_active < 0 || max_active > INT32_MAX) return "max_active must be in [0, 2^31)";
  if (!a.in_offsets || !a.inputs.first || !a.neurons_out.first || !a.alpha || !a.beta || !a.v_leak || !a.v_th ||
      !a.v_reset || !a.n_ref || !a.routes_per_neuron || !a.counters)
    return "a required pointer is null";
  if ((a.noise_sigma || a.read_noise > 0.0f) && !a.table) return "noise without the normal table";
  if (a.membrane && a.n_recorded > 0 && !a.recorded) return "membranes without the recorded neurons";
  if (a.cadc_lower && (!a.cadc_upper || !a.cadc_wlow || !a.cadc_whigh || a.cadc_every < 1 || a.cadc_count < 0))
    return "incomplete CADC schedule (lower, upper, weights, every >= 1)";
  if ((a.inputs.bus || a.neurons_out.bus) && a.capacity < 0) return "negative bus capacity";
  return "";
}

template <int NPT, bool kRef>
cudaError_t launch(const RunArgs& a, const RowLayout& l, unsigned char* workspace, int threads, size_t shared,
                   cudaStream_t stream) {
  run_rows<NPT, kRef><<<static_cast<unsigned>(a.batch), threads, shared, stream>>>(a, l, workspace);
  return cudaGetLastError();
}

template <int NPT>
cudaError_t launch_npt(const RunArgs& a, const RowLayout& l, unsigned char* workspace, int threads, size_t shared,
                       cudaStream_t stream) {
  // kRef: no refractory counter arithmetic when no neuron has a refractory period (as the CPU).
  return a.any_refractory ? launch<NPT, true>(a, l, workspace, threads, shared, stream)
                          : launch<NPT, false>(a, l, workspace, threads, shared, stream);
}

}  // namespace

size_t run_cuda_workspace_bytes(const RunArgs& a, int64_t max_active) {
  return kStatusBytes + static_cast<size_t>(std::max<int64_t>(a.batch, 0)) * row_layout(a, max_active).row_bytes;
}

cudaError_t launch_run_cuda(const RunArgs& a, int64_t max_active, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream, std::string* message) {
  if (message) message->clear();
  const std::string problem = argument_problem(a, max_active);
  if (!problem.empty()) return invalid(message, problem);
  const size_t needed = run_cuda_workspace_bytes(a, max_active);
  if (workspace == nullptr || workspace_bytes < needed)
    return invalid(message, "workspace of " + std::to_string(workspace_bytes) + " bytes, needs " +
                                std::to_string(needed));
  unsigned char* ws = static_cast<unsigned char*>(workspace);
  // The status is zeroed on the stream, so run_cuda_status never reads a previous launch's.
  cudaError_t err = cudaMemsetAsync(ws, 0, kStatusBytes, stream);
  if (err != cudaSuccess) return fail(message, err, std::string("status reset: ") + cudaGetErrorString(err));
  if (a.batch == 0) return cudaSuccess;
  // The fewest neurons per thread that cover the row with at most 1024 threads (a multiple of 32).
  int npt = 1;
  while (static_cast<int64_t>(npt) * kMaxThreads < a.neurons) npt *= 2;
  const int64_t per_thread = (a.neurons + npt - 1) / npt;
  const int threads = static_cast<int>(std::max<int64_t>(32, (per_thread + 31) / 32 * 32));
  // At most 8192 floats = 32 KiB: within the default dynamic shared-memory limit, no opt-in needed.
  const size_t shared = a.membrane ? static_cast<size_t>(a.neurons) * sizeof(float) : 0;
  const RowLayout l = row_layout(a, max_active);
  switch (npt) {
    case 1: err = launch_npt<1>(a, l, ws, threads, shared, stream); break;
    case 2: err = launch_npt<2>(a, l, ws, threads, shared, stream); break;
    case 4: err = launch_npt<4>(a, l, ws, threads, shared, stream); break;
    default: err = launch_npt<kMaxPerThread>(a, l, ws, threads, shared, stream); break;
  }
  if (err != cudaSuccess) return fail(message, err, std::string("launch: ") + cudaGetErrorString(err));
  return cudaSuccess;
}

cudaError_t run_cuda_status(const void* workspace, cudaStream_t stream, std::string* message) {
  if (message) message->clear();
  if (workspace == nullptr) return invalid(message, "no workspace");
  RunStatus s{};
  cudaError_t err = cudaMemcpyAsync(&s, workspace, sizeof(s), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return fail(message, err, std::string("run failed: ") + cudaGetErrorString(err));
  if (s.overflow != 0)
    return invalid(message, "row " + std::to_string(s.row) + " needed at least " + std::to_string(s.needed) +
                                " active route rows at step " + std::to_string(s.step) +
                                ", more than max_active; its outputs are incomplete (launch again with a "
                                "larger max_active)");
  return cudaSuccess;
}

}  // namespace mock
}  // namespace neurodeploy
