// CPU launcher of the fast mock-chip emulator (mock_core.h; the twin is backends/mock/chip.py).
// Built with -DNEURODEPLOY_WITH_CUDA, `run` also takes CUDA tensors and hands them to the CUDA
// launcher (mock_cuda.cu; section "CUDA" below); everything else runs on the CPU.
//
// A task is a block of batch rows (each one run of the chip on one sample), advanced step by step
// together; each row's state lives in the block's arrays — input events added row by row of the route matrix, the FPGA and
// on-chip buses' capacity enforced per step, membrane noise drawn from the counter-based generator,
// the neuron update of lif_core.h (the fused kernel's, so the ideal chip's spikes are the twin's),
// the CADC sampled, read-noised, quantised and interpolated at the end of the row. Nothing of the
// row leaves its task but the outputs, so rows need no synchronisation.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "lif_core.h"
#include "mock_core.h"
#include "output_pool.h"

#ifdef NEURODEPLOY_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <string>

#include "mock_cuda.h"
#endif

namespace neurodeploy {
namespace mock {
namespace {

// Rows advanced together, step by step: their outputs of one step are one contiguous stretch of
// the time-major [T, B, N] arrays (a row alone writes 0.5 KB per step to pages ~1 MB apart, which
// made writing both outputs cost more than the whole neuron update).
constexpr int64_t kBlock = 16;

struct BlockWork {
  explicit BlockWork(const RunArgs& a)
      : i_syn(kBlock * a.neurons), v(kBlock * a.neurons), ref(kBlock * a.neurons), spiked(kBlock * a.neurons),
        x(a.neurons), lat(a.neurons), z(a.neurons), normal(a.neurons), halves(2 * ((a.neurons + 1) / 2)),
        samples(a.cadc_lower && a.membrane ? kBlock * a.cadc_count * a.n_recorded : 0),
        bus_count(std::max(a.inputs.n_buses, a.neurons_out.n_buses), 0) {}
  std::vector<float> i_syn, v;  // [kBlock, N]
  std::vector<int32_t> ref, spiked;  // [kBlock, N]; a row's spikes of the last step: spiked[r N .. r N + n)
  std::vector<float> x, lat, z, normal;  // [N], one row's step at a time
  std::vector<uint16_t> halves;  // [N rounded up to even]: the table index of each of the step's normals
  std::vector<float> samples;  // [kBlock, cadc_count, R] of the recorded neurons
  int64_t event[kBlock], last_event[kBlock], n_spiked[kBlock];
  std::vector<int32_t> active;  // rows of the route matrix with an event this step
  std::vector<int64_t> bus_count;
  std::vector<std::pair<uint32_t, int32_t>> contest;  // (priority, position in `active`)
};

// Drops the events of `active` that overflow their bus (more than `capacity` in this step):
// within a bus the highest priorities pass. Returns the number dropped; `active` keeps its order.
int64_t limit_buses(const Sources& s, int64_t capacity, uint64_t base, BlockWork& w) {
  std::vector<int32_t>& active = w.active;
  if (s.bus == nullptr || static_cast<int64_t>(active.size()) <= capacity) return 0;
  bool over = false;
  for (int32_t r : active) over |= ++w.bus_count[s.bus[r]] > capacity;
  if (!over) {
    for (int32_t r : active) w.bus_count[s.bus[r]] = 0;
    return 0;
  }
  int64_t dropped = 0;
  for (size_t i = 0; i < active.size(); ++i) {
    const int32_t bus = s.bus[active[i]];
    if (w.bus_count[bus] <= capacity) continue;
    w.contest.clear();  // every event of this overflowing bus, ranked once
    for (size_t j = i; j < active.size(); ++j)
      if (active[j] >= 0 && s.bus[active[j]] == bus)
        w.contest.emplace_back(draw(base, static_cast<uint32_t>(active[j])), static_cast<int32_t>(j));
    std::sort(w.contest.begin(), w.contest.end(),
              [](const auto& p, const auto& q) { return p.first > q.first; });
    for (size_t k = static_cast<size_t>(capacity); k < w.contest.size(); ++k)
      active[w.contest[k].second] = -1;
    dropped += static_cast<int64_t>(w.contest.size()) - capacity;
    w.bus_count[bus] = 0;
  }
  for (int32_t r : active)
    if (r >= 0) w.bus_count[s.bus[r]] = 0;
  active.erase(std::remove(active.begin(), active.end(), -1), active.end());
  return dropped;
}

// out = sum of the matrix rows in `active`, in their order (row order = the twin's product order).
void add_rows(const Sources& s, const std::vector<int32_t>& active, int64_t n_all, float* __restrict__ out) {
  std::fill(out, out + n_all, 0.0f);
  for (int32_t r : active) {
    const float* __restrict__ row = s.matrix + static_cast<int64_t>(r) * n_all;
#pragma omp simd
    for (int64_t n = 0; n < n_all; ++n) out[n] += row[n];
  }
}

// Step t of row b (the block's row r): events in, noise, neuron update, spikes out, CADC sample.
template <bool kRef, bool kNoise, bool kCadc>
ND_INLINE void row_step(const RunArgs& a, int64_t t, int64_t b, int64_t r, BlockWork& w,
                        std::vector<int32_t>* events) {
  const int64_t n_all = a.neurons, stride = a.batch * n_all;
  const uint64_t sample = static_cast<uint64_t>(a.sample0 + b);
  float* __restrict__ i_syn = w.i_syn.data() + r * n_all;
  float* __restrict__ v = w.v.data() + r * n_all;
  int32_t* __restrict__ ref = w.ref.data() + r * n_all;
  int32_t* __restrict__ spiked = w.spiked.data() + r * n_all;
  float* __restrict__ x = w.x.data();
  float* __restrict__ lat = w.lat.data();
  float* __restrict__ zl = w.z.data();
  const float* __restrict__ alpha = a.alpha;
  const float* __restrict__ beta = a.beta;
  const float* __restrict__ v_leak = a.v_leak;
  const float* __restrict__ v_th = a.v_th;
  const float* __restrict__ v_reset = a.v_reset;
  const int32_t* __restrict__ n_ref = a.n_ref;
  int64_t* counters = a.counters + b * kCounters;
  // FPGA events arriving now; their routes compete for the buses, then add their rows.
  w.active.clear();
  int64_t& event = w.event[r];
  for (; event < w.last_event[r] && a.in_step[event] == t; ++event) {
    const int32_t c = a.in_channel[event];
    for (int64_t q = a.inputs.first[c]; q < a.inputs.first[c + 1]; ++q) w.active.push_back(static_cast<int32_t>(q));
  }
  if (!w.active.empty())
    counters[kInputDropped] += limit_buses(a.inputs, a.capacity, step_base(a.key, kInputPriority, sample, t), w);
  add_rows(a.inputs, w.active, n_all, x);
  // On-chip events of the previous step's spikes, one step of routing latency later.
  w.active.clear();
  for (int64_t s = 0; s < w.n_spiked[r]; ++s) {
    const int32_t j = spiked[s];
    for (int64_t q = a.neurons_out.first[j]; q < a.neurons_out.first[j + 1]; ++q)
      w.active.push_back(static_cast<int32_t>(q));
  }
  if (!w.active.empty())
    counters[kNeuronDropped] +=
        limit_buses(a.neurons_out, a.capacity, step_base(a.key, kNeuronPriority, sample, t), w);
  add_rows(a.neurons_out, w.active, n_all, lat);
  if constexpr (kNoise) {
    // normal_at(base, n) for every n: the hashes in one vector loop, then one look-up per neuron (scalar
    // loads: the gather instructions were slower here); sigma n is added in the neuron update's loop.
    const uint64_t base = step_base(a.key, kMembraneNoise, sample, t);
    const float* __restrict__ table = a.table;
    uint16_t* __restrict__ half = w.halves.data();
    float* __restrict__ normal = w.normal.data();
    const int64_t words = (n_all + 1) / 2;
#pragma omp simd
    for (int64_t k = 0; k < words; ++k) {
      const uint32_t h = draw(base, static_cast<uint32_t>(k));
      half[2 * k] = static_cast<uint16_t>(table_index(h, 0));
      half[2 * k + 1] = static_cast<uint16_t>(table_index(h, 1));
    }
    for (int64_t n = 0; n < n_all; ++n) normal[n] = table[half[n]];
  }
  const int64_t off = t * stride + b * n_all;
  float* __restrict__ z_out = a.spikes ? a.spikes + off : nullptr;
  const int64_t n_rec = a.n_recorded;
  const int32_t* __restrict__ recorded = a.recorded;
  const float* __restrict__ normal = w.normal.data();
  const float* __restrict__ sigma = a.noise_sigma;
  float* __restrict__ v_out = (!kCadc && a.membrane) ? a.membrane + t * a.batch * n_rec + b * n_rec : nullptr;
#pragma omp simd
  for (int64_t n = 0; n < n_all; ++n) {
    const NeuronCoeffs<float> c{alpha[n], beta[n], v_leak[n], v_th[n], v_reset[n], n_ref[n]};
    NeuronState<float> s{i_syn[n], v[n], ref[n]};
    float p;
    bool refractory;
    // (input + noise) + lateral: the twin's order of the sums
    const float input = kNoise ? x[n] + normal[n] * sigma[n] : x[n];
    zl[n] = lif_forward_step<float, kRef>(input + lat[n], s, c, p, refractory);
    i_syn[n] = s.i_syn;
    v[n] = s.v;
    ref[n] = s.refractory_steps;
  }
  if (z_out) std::copy(zl, zl + n_all, z_out);
  if (v_out)
    for (int64_t i = 0; i < n_rec; ++i) v_out[i] = v[recorded[i]];
  // Spikes are rare: stretches of 16 neurons without one are skipped after a vector test, the others
  // compacted without branches.
  int64_t n_spiked = 0, routed = 0;
  for (int64_t n0 = 0; n0 < n_all; n0 += 16) {
    const int64_t n1 = std::min(n0 + 16, n_all);
    int32_t any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t n = n0; n < n1; ++n) any |= zl[n] > 0.0f;
    if (!any) continue;
    for (int64_t n = n0; n < n1; ++n) {
      spiked[n_spiked] = static_cast<int32_t>(n);
      n_spiked += zl[n] > 0.0f;
    }
  }
  w.n_spiked[r] = n_spiked;
  for (int64_t s = 0; s < n_spiked; ++s) routed += a.routes_per_neuron[spiked[s]];
  counters[kEventsInternal] += routed;
  if (events) {  // (step, neuron) pairs, in step order
    for (int64_t s = 0; s < n_spiked; ++s) {
      events->push_back(static_cast<int32_t>(t));
      events->push_back(spiked[s]);
    }
  }
  if constexpr (kCadc) {
    const int64_t j = (t - a.cadc_first) / a.cadc_every;
    if (a.membrane && t >= a.cadc_first && j < a.cadc_count && t == a.cadc_first + j * a.cadc_every) {
      float* __restrict__ sampled = w.samples.data() + (r * a.cadc_count + j) * n_rec;
      const uint64_t base = step_base(a.key, kCadcReadNoise, sample, static_cast<uint64_t>(j));
      const float read_noise = a.read_noise;
      const float* __restrict__ table = a.table;
#pragma omp simd
      for (int64_t i = 0; i < n_rec; ++i) {  // a neuron's draw is its own, whichever others are recorded
        const int32_t n = recorded[i];
        float value = v[n];
        if (read_noise > 0.0f) value = value + normal_at(base, static_cast<uint32_t>(n), table) * read_noise;
        value = std::nearbyint(value);  // round half to even, as torch.round
        sampled[i] = std::min(std::max(value, 0.0f), 255.0f);
      }
    }
  }
}

// Rows [b0, b1) (at most kBlock), all steps; then their CADC readings onto the step grid.
template <bool kRef, bool kNoise, bool kCadc>
void run_block(const RunArgs& a, int64_t b0, int64_t b1, BlockWork& w, std::vector<std::vector<int32_t>>* events) {
  const int64_t n_all = a.neurons;
  for (int64_t r = 0; r < b1 - b0; ++r) {
    for (int64_t n = 0; n < n_all; ++n) {
      w.i_syn[r * n_all + n] = 0.0f;
      w.v[r * n_all + n] = a.v_leak[n];
      w.ref[r * n_all + n] = 0;
    }
    w.event[r] = a.in_offsets[b0 + r];
    w.last_event[r] = a.in_offsets[b0 + r + 1];
    w.n_spiked[r] = 0;
  }
  for (int64_t t = 0; t < a.steps; ++t)
    for (int64_t r = 0; r < b1 - b0; ++r)
      row_step<kRef, kNoise, kCadc>(a, t, b0 + r, r, w, events ? &(*events)[b0 + r] : nullptr);
  if constexpr (kCadc) {
    if (a.membrane == nullptr) return;
    for (int64_t t = 0; t < a.steps; ++t) {
      const float wl = a.cadc_wlow[t], wh = a.cadc_whigh[t];
      for (int64_t r = 0; r < b1 - b0; ++r) {
        const int64_t n_rec = a.n_recorded;
        const float* __restrict__ low = w.samples.data() + (r * a.cadc_count + a.cadc_lower[t]) * n_rec;
        const float* __restrict__ high = w.samples.data() + (r * a.cadc_count + a.cadc_upper[t]) * n_rec;
        float* __restrict__ out = a.membrane + t * a.batch * n_rec + (b0 + r) * n_rec;
        int64_t outside = 0;
#pragma omp simd reduction(+ : outside)
        for (int64_t n = 0; n < n_rec; ++n) {
          const float m = low[n] * wl + high[n] * wh;
          out[n] = m;
          outside += (m < a.cadc_low) | (m > a.cadc_high);
        }
        a.counters[(b0 + r) * kCounters + kCadcOutside] += outside;
      }
    }
  }
}

template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

// `events` (when given) receives each row's (step, neuron) pairs of its spikes.
void run_all(const RunArgs& a, std::vector<std::vector<int32_t>>* events) {
  with_flag(a.any_refractory, [&](auto ref) {
    with_flag(a.noise_sigma != nullptr, [&](auto noise) {
      with_flag(a.cadc_lower != nullptr, [&](auto cadc) {
        // Rows are independent. Each thread takes the next block when it is done with one, so that a core
        // slowed by other work (a shared machine) does not hold up the batch, as a static split would.
        const int64_t blocks = (a.batch + kBlock - 1) / kBlock;
        std::atomic<int64_t> next{0};
        at::parallel_for(0, std::min<int64_t>(blocks, at::get_num_threads()), 1, [&](int64_t, int64_t) {
          BlockWork w(a);
          for (int64_t k = next++; k < blocks; k = next++)
            run_block<decltype(ref)::value, decltype(noise)::value, decltype(cadc)::value>(
                a, k * kBlock, std::min(a.batch, (k + 1) * kBlock), w, events);
        });
      });
    });
  });
}

// A spike's time on the FPGA clock grid after Gaussian jitter: round((t dt + jitter n) / clock) clock, >= 0,
// n the normal of neuron `neuron` at `base` = step_base(key, kSpikeJitter, sample, t). One function for the
// CPU's events and the CUDA run's (spike_rows_of_spikes), so that the two cannot drift apart.
double spike_time_s(int64_t t, uint64_t base, int32_t neuron, const float* table, double dt_s, double clock_s,
                    double jitter_s) {
  double time_s = static_cast<double>(t) * dt_s;
  if (jitter_s > 0.0)
    time_s = time_s + jitter_s * static_cast<double>(normal_at(base, static_cast<uint32_t>(neuron), table));
  return std::max(std::nearbyint(time_s / clock_s), 0.0) * clock_s;
}

// The spikes as rows (time_s, batch, neuron) in (step, batch, neuron) order (torch.nonzero's), the
// time from spike_time_s.
at::Tensor spike_rows(const std::vector<std::vector<int32_t>>& events, const RunArgs& a, double dt_s,
                      double clock_s, double jitter_s) {
  int64_t total = 0;
  for (const auto& e : events) total += static_cast<int64_t>(e.size()) / 2;
  at::Tensor out = at::empty({total, 3}, at::TensorOptions().dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  std::vector<size_t> cursor(events.size(), 0);
  for (int64_t t = 0; t < a.steps; ++t) {
    const uint64_t step = static_cast<uint64_t>(t);
    for (size_t b = 0; b < events.size(); ++b) {
      const std::vector<int32_t>& e = events[b];
      size_t& i = cursor[b];
      if (i >= e.size() || e[i] != t) continue;
      const uint64_t base = step_base(a.key, kSpikeJitter, static_cast<uint64_t>(a.sample0) + b, step);
      for (; i < e.size() && e[i] == t; i += 2) {
        *o++ = spike_time_s(t, base, e[i + 1], a.table, dt_s, clock_s, jitter_s);
        *o++ = static_cast<double>(b);
        *o++ = static_cast<double>(e[i + 1]);
      }
    }
  }
  return out;
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.numel() ? t.data_ptr<T>() : nullptr;
}

void check(bool ok, const char* what) { TORCH_CHECK(ok, "neurodeploy_mock.run: ", what); }

#ifdef NEURODEPLOY_WITH_CUDA
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

// Every tensor on the device of the first: the CPU, or one CUDA device in a CUDA build. The launchers read
// raw pointers, so a tensor left behind on another device would be read as garbage, not copied.
void check_one_device(std::initializer_list<const at::Tensor*> tensors) {
  const at::Device device = (*tensors.begin())->device();
  check(device.is_cpu() || (kWithCuda && device.is_cuda()),
        kWithCuda ? "tensors must be on the CPU or a CUDA device" : "tensors must be on the CPU (built without CUDA)");
  for (const at::Tensor* t : tensors) check(t->device() == device, "every tensor must be on the same device");
}

Sources sources(const at::Tensor& matrix, const at::Tensor& first, const at::Tensor& bus, int64_t neurons) {
  check(matrix.dtype() == at::kFloat && matrix.is_contiguous() && matrix.dim() == 2 &&
            (matrix.size(0) == 0 || matrix.size(1) == neurons),
        "a route matrix must be contiguous float32 [rows, neurons]");
  check(first.dtype() == at::kLong && first.is_contiguous() && first.numel() >= 1, "route offsets: int64");
  check(bus.numel() == 0 || (bus.dtype() == at::kInt && bus.numel() == matrix.size(0)), "buses: int32 [rows]");
  check(first[-1].item<int64_t>() == matrix.size(0), "route offsets must end at the number of rows");
  const int64_t n_buses = bus.numel() ? bus.max().item<int32_t>() + 1 : 0;
  return {matrix.data_ptr<float>(), first.data_ptr<int64_t>(), ptr_or_null<int32_t>(bus), n_buses};
}

#ifdef NEURODEPLOY_WITH_CUDA
// ---- CUDA ----------------------------------------------------------------------------------------
//
// run() on CUDA tensors: the same checks and the same RunArgs (device pointers), then mock_cuda.cu's
// launcher instead of run_all. Only what the launcher leaves to its caller is here: the outputs, the
// workspace, the stream, the error report and the spike events (mock_cuda.h).

// The launcher's max_active (mock_cuda.h): the most route rows that one row's FPGA events of one step
// expand to, and no fewer than the on-chip route rows (the previous step's spikes route through at most
// all of them), so no row can outgrow its list. Exact for the inputs: the kernel lists a step's events
// as a run of equal arrival steps, as this pass counts them. On host copies of the event lists: one
// pass over E events, small beside the [T, B, N] outputs.
int64_t max_active_rows(const at::Tensor& in_offsets, const at::Tensor& in_step, const at::Tensor& in_channel,
                        const at::Tensor& in_first, int64_t on_chip_rows) {
  const at::Tensor offsets = in_offsets.cpu(), step = in_step.cpu(), channel = in_channel.cpu(), first = in_first.cpu();
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int32_t* st = step.data_ptr<int32_t>();
  const int32_t* ch = channel.data_ptr<int32_t>();
  const int64_t* f = first.data_ptr<int64_t>();
  int64_t most = on_chip_rows;
  for (int64_t b = 0; b + 1 < offsets.numel(); ++b) {
    int64_t rows = 0;  // route rows of row b's events arriving at event e's step, up to e
    for (int64_t e = off[b]; e < off[b + 1]; ++e) {
      if (e > off[b] && st[e] != st[e - 1]) rows = 0;
      rows += f[ch[e] + 1] - f[ch[e]];
      most = std::max(most, rows);
    }
  }
  return most;
}

// Enqueues the runs on the device's current stream (PyTorch's, so they order with the copies around
// them) and waits for it: run_cuda_status synchronises and reports a failed kernel or a row that
// outgrew max_active. Any error raises with the launcher's message.
void launch_cuda(const RunArgs& a, int64_t max_active, const at::Device& device) {
  const size_t bytes = run_cuda_workspace_bytes(a, max_active);
  at::Tensor workspace =
      at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(at::kByte).device(device));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  std::string message;
  cudaError_t err = launch_run_cuda(a, max_active, workspace.data_ptr(), bytes, stream, &message);
  if (err == cudaSuccess) err = run_cuda_status(workspace.data_ptr(), stream, &message);
  TORCH_CHECK(err == cudaSuccess, message.empty() ? std::string(cudaGetErrorString(err)) : message);
}

// The spike events of a CUDA run, spike_rows' rows in spike_rows' order: the kernel keeps no per-row
// event lists, so they come from `spikes` afterwards. nonzero runs on the device (only the indices cross
// to the host) and lists (t, b, n) in C order, which is spike_rows' order; `> 0` is the CPU's test for a
// spike. The jitter is drawn here, from the host copy of the table: the same function of
// (key, kSpikeJitter, sample0 + b, t, n) as on the CPU.
at::Tensor spike_rows_of_spikes(const at::Tensor& spikes, const RunArgs& a, const at::Tensor& table_host,
                                double dt_s, double clock_s, double jitter_s) {
  const at::Tensor index = at::nonzero(spikes > 0.0f).cpu().contiguous();  // [n, 3] int64
  const int64_t total = index.size(0);
  at::Tensor out = at::empty({total, 3}, at::TensorOptions().dtype(at::kDouble));
  const int64_t* i = index.data_ptr<int64_t>();
  const float* table = table_host.data_ptr<float>();
  double* o = out.data_ptr<double>();
  for (int64_t k = 0; k < total; ++k, i += 3) {
    const int64_t t = i[0], b = i[1];
    const uint64_t base =
        step_base(a.key, kSpikeJitter, static_cast<uint64_t>(a.sample0) + static_cast<uint64_t>(b),
                  static_cast<uint64_t>(t));
    *o++ = spike_time_s(t, base, static_cast<int32_t>(i[2]), table, dt_s, clock_s, jitter_s);
    *o++ = static_cast<double>(b);
    *o++ = static_cast<double>(i[2]);
  }
  return out;
}

// The outputs of run() for `a` (inputs filled, device pointers) on CUDA: spikes, membranes and counters
// on the device, the spike events on the host, as run() returns them on the CPU.
std::vector<at::Tensor> run_cuda(RunArgs a, const at::Device& device, int64_t max_active,
                                 const at::Tensor& table_host, bool want_spikes, double dt_s, double clock_s,
                                 double jitter_s) {
  const c10::cuda::CUDAGuard guard(device);  // allocations and the launch on the tensors' device
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor spikes = at::empty({a.steps, a.batch, want_spikes ? a.neurons : 0}, opts);
  at::Tensor membrane = at::empty({a.steps, a.batch, a.n_recorded}, opts);
  at::Tensor counters = at::zeros({a.batch, kCounters}, opts.dtype(at::kLong));  // the kernel adds to them
  a.spikes = want_spikes ? spikes.data_ptr<float>() : nullptr;
  a.membrane = a.n_recorded > 0 ? membrane.data_ptr<float>() : nullptr;
  a.counters = counters.data_ptr<int64_t>();
  if (a.batch > 0) launch_cuda(a, max_active, device);  // no rows: nothing to launch (and no counters)
  at::Tensor rows = want_spikes ? spike_rows_of_spikes(spikes, a, table_host, dt_s, clock_s, jitter_s)
                                : at::empty({0, 3}, at::TensorOptions().dtype(at::kDouble));
  return {spikes, membrane, counters.sum(0), rows};
}
#endif  // NEURODEPLOY_WITH_CUDA

}  // namespace

std::vector<at::Tensor> run(const at::Tensor& in_offsets, const at::Tensor& in_step, const at::Tensor& in_channel,
                            const at::Tensor& in_matrix, const at::Tensor& in_first, const at::Tensor& in_bus,
                            const at::Tensor& rec_matrix, const at::Tensor& rec_first, const at::Tensor& rec_bus,
                            int64_t capacity, const at::Tensor& alpha, const at::Tensor& beta,
                            const at::Tensor& v_leak, const at::Tensor& v_th, const at::Tensor& v_reset,
                            const at::Tensor& n_ref, const at::Tensor& noise_sigma, const at::Tensor& table,
                            const at::Tensor& cadc_lower, const at::Tensor& cadc_upper, const at::Tensor& cadc_wlow,
                            const at::Tensor& cadc_whigh, int64_t cadc_first, int64_t cadc_every, double read_noise,
                            double cadc_low, double cadc_high, const at::Tensor& routes_per_neuron, int64_t steps,
                            int64_t key, int64_t sample0, bool want_spikes, const at::Tensor& recorded,
                            double dt_s,
                            double clock_s, double jitter_s) {
  check_one_device({&alpha, &beta, &v_leak, &v_th, &v_reset, &n_ref, &noise_sigma, &table, &in_offsets, &in_step,
                    &in_channel, &in_matrix, &in_first, &in_bus, &rec_matrix, &rec_first, &rec_bus, &cadc_lower,
                    &cadc_upper, &cadc_wlow, &cadc_whigh, &routes_per_neuron, &recorded});
  const int64_t neurons = alpha.numel(), batch = in_offsets.numel() - 1;
  for (const at::Tensor* t : {&alpha, &beta, &v_leak, &v_th, &v_reset, &table, &cadc_wlow, &cadc_whigh, &noise_sigma})
    check(t->dtype() == at::kFloat && t->is_contiguous(), "parameters, weights and the table must be float32");
  for (const at::Tensor* t : {&n_ref, &in_step, &in_channel, &cadc_lower, &cadc_upper, &routes_per_neuron})
    check(t->dtype() == at::kInt && t->is_contiguous(), "steps, channels and counts must be int32");
  check(in_offsets.dtype() == at::kLong && batch >= 0, "event offsets: int64 [B + 1]");
  check(table.numel() == kTableSize, "the normal table must have 8192 entries");
  check(noise_sigma.numel() == 0 || noise_sigma.numel() == neurons, "noise sigma: [N] or empty");
  check(cadc_lower.numel() == 0 || cadc_lower.numel() == steps, "CADC interpolation: [T] or empty");
  check(in_channel.numel() == 0 || in_channel.max().item<int32_t>() + 1 < in_first.numel(),
        "an event's channel has no routes entry");
  RunArgs a{};
  a.steps = steps;
  a.batch = batch;
  a.neurons = neurons;
  a.in_offsets = in_offsets.data_ptr<int64_t>();
  a.in_step = in_step.data_ptr<int32_t>();
  a.in_channel = in_channel.data_ptr<int32_t>();
  a.inputs = sources(in_matrix, in_first, in_bus, neurons);
  a.neurons_out = sources(rec_matrix, rec_first, rec_bus, neurons);
  check(rec_first.numel() == neurons + 1, "on-chip route offsets: [N + 1]");
  a.capacity = capacity;
  a.alpha = alpha.data_ptr<float>();
  a.beta = beta.data_ptr<float>();
  a.v_leak = v_leak.data_ptr<float>();
  a.v_th = v_th.data_ptr<float>();
  a.v_reset = v_reset.data_ptr<float>();
  a.n_ref = n_ref.data_ptr<int32_t>();
  a.any_refractory = n_ref.numel() && n_ref.max().item<int32_t>() > 0;
  a.noise_sigma = ptr_or_null<float>(noise_sigma);
  a.table = table.data_ptr<float>();
  a.cadc_lower = ptr_or_null<int32_t>(cadc_lower);
  a.cadc_upper = ptr_or_null<int32_t>(cadc_upper);
  a.cadc_wlow = ptr_or_null<float>(cadc_wlow);
  a.cadc_whigh = ptr_or_null<float>(cadc_whigh);
  a.cadc_first = cadc_first;
  a.cadc_every = std::max<int64_t>(1, cadc_every);
  a.cadc_count = a.cadc_lower ? cadc_upper.max().item<int32_t>() + 1 : 0;
  a.read_noise = static_cast<float>(read_noise);
  a.cadc_low = static_cast<float>(cadc_low);
  a.cadc_high = static_cast<float>(cadc_high);
  a.routes_per_neuron = routes_per_neuron.data_ptr<int32_t>();
  a.key = static_cast<uint64_t>(key);
  a.sample0 = sample0;
  check(recorded.dtype() == at::kInt && recorded.is_contiguous(), "recorded neurons: int32");
  check(recorded.numel() == 0 || (recorded.min().item<int32_t>() >= 0 && recorded.max().item<int32_t>() < neurons),
        "a recorded neuron is out of range");
  a.recorded = recorded.data_ptr<int32_t>();
  a.n_recorded = recorded.numel();
#ifdef NEURODEPLOY_WITH_CUDA
  if (alpha.is_cuda()) {
    const int64_t max_active = max_active_rows(in_offsets, in_step, in_channel, in_first, rec_matrix.size(0));
    return run_cuda(a, alpha.device(), max_active, table.cpu(), want_spikes, dt_s, clock_s, jitter_s);
  }
#endif
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor spikes = want_spikes ? empty_output({steps, batch, neurons}, opts) : at::empty({steps, batch, 0}, opts);
  const bool want_membrane = recorded.numel() > 0;
  at::Tensor membrane = empty_output({steps, batch, recorded.numel()}, opts);
  at::Tensor counters = at::zeros({batch, kCounters}, at::TensorOptions().dtype(at::kLong));
  a.spikes = want_spikes ? spikes.data_ptr<float>() : nullptr;
  a.membrane = want_membrane ? membrane.data_ptr<float>() : nullptr;
  a.counters = counters.data_ptr<int64_t>();
  std::vector<std::vector<int32_t>> events(want_spikes ? batch : 0);
  run_all(a, want_spikes ? &events : nullptr);
  at::Tensor rows = want_spikes ? spike_rows(events, a, dt_s, clock_s, jitter_s)
                                : at::empty({0, 3}, at::TensorOptions().dtype(at::kDouble));
  return {spikes, membrane, counters.sum(0), rows};
}

// MADC traces [T, B] of independent neurons: run b records neuron `neuron[b]`, simulated alone (exact when no
// neuron feeds another). Its input is the events' currents onto that neuron plus its membrane noise, the
// same draws as the neuron gets in a whole-chip run of that sample. The MADC reads the membrane (source 0)
// or the synaptic input line I + v_leak (source 1): m = round(gain u + offset), clipped to 10 bit when
// `quantise`.
at::Tensor madc_alone(const at::Tensor& neuron, const at::Tensor& in_offsets, const at::Tensor& in_step,
                      const at::Tensor& in_channel, const at::Tensor& in_matrix, const at::Tensor& alpha,
                      const at::Tensor& beta, const at::Tensor& v_leak, const at::Tensor& v_th,
                      const at::Tensor& v_reset, const at::Tensor& n_ref, const at::Tensor& noise_sigma,
                      const at::Tensor& table, int64_t steps, int64_t key, int64_t sample0, int64_t source,
                      double gain, double offset, bool quantise) {
  const int64_t runs = neuron.numel(), neurons = alpha.numel();
  check(neuron.dtype() == at::kLong && in_offsets.numel() == runs + 1, "madc_alone: a neuron per run");
  check(in_matrix.dtype() == at::kFloat && in_matrix.is_contiguous() && in_matrix.dim() == 2 &&
            (in_matrix.size(0) == 0 || in_matrix.size(1) == neurons),
        "madc_alone: per-source input matrix [channels, N]");
  check(in_channel.numel() == 0 || in_channel.max().item<int32_t>() < in_matrix.size(0),
        "madc_alone: an event's channel has no row");
  check(runs == 0 || (neuron.min().item<int64_t>() >= 0 && neuron.max().item<int64_t>() < neurons),
        "madc_alone: neuron out of range");
  at::Tensor out = at::empty({steps, runs}, at::TensorOptions().dtype(at::kFloat));
  const int64_t* nrn = neuron.data_ptr<int64_t>();
  const int64_t* offsets = in_offsets.data_ptr<int64_t>();
  const int32_t* ev_step = in_step.data_ptr<int32_t>();
  const int32_t* ev_channel = in_channel.data_ptr<int32_t>();
  const float* matrix = in_matrix.data_ptr<float>();
  const float* al = alpha.data_ptr<float>();
  const float* be = beta.data_ptr<float>();
  const float* vl = v_leak.data_ptr<float>();
  const float* vt = v_th.data_ptr<float>();
  const float* vr = v_reset.data_ptr<float>();
  const int32_t* nr = n_ref.data_ptr<int32_t>();
  const float* sigma = ptr_or_null<float>(noise_sigma);
  const float* tab = table.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float g = static_cast<float>(gain), off = static_cast<float>(offset);
  // Blocks of runs advance together, so that a step's outputs are one contiguous stretch of [T, B].
  const int64_t blocks = (runs + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 4, [&](int64_t begin, int64_t end) {
    NeuronCoeffs<float> c[kBlock];
    NeuronState<float> s[kBlock];
    float current[kBlock];
    int64_t e[kBlock];
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b0 = k * kBlock, rows = std::min(kBlock, runs - b0);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t j = nrn[b0 + r];
        c[r] = NeuronCoeffs<float>{al[j], be[j], vl[j], vt[j], vr[j], nr[j]};
        s[r] = NeuronState<float>{0.0f, vl[j], 0};
        current[r] = 0.0f;
        e[r] = offsets[b0 + r];
      }
      for (int64_t t = 0; t < steps; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t b = b0 + r, j = nrn[b];
          float x = 0.0f;
          for (; e[r] < offsets[b + 1] && ev_step[e[r]] == t; ++e[r])
            x += matrix[static_cast<int64_t>(ev_channel[e[r]]) * neurons + j];
          if (sigma)
            x = x + normal_at(step_base(static_cast<uint64_t>(key), kMembraneNoise, static_cast<uint64_t>(sample0 + b),
                                        static_cast<uint64_t>(t)),
                              static_cast<uint32_t>(j), tab) * sigma[j];
          float u;
          if (source == 1) {
            current[r] = c[r].alpha * current[r] + x;
            u = current[r] + c[r].v_leak;
          } else {
            float p;
            bool refractory;
            lif_forward_step<float, true>(x, s[r], c[r], p, refractory);
            u = s[r].v;
          }
          float m = g * u + off;
          if (quantise) m = std::min(std::max(std::nearbyint(m), 0.0f), 1023.0f);
          o[t * runs + b] = m;
        }
      }
    }
  });
  return out;
}

// Input spike times [B, C] (model seconds, NaN: none) → each run's events on the hardware step grid, the
// twin of fast.py's event_lists_numpy (chip.clock_events + a sort): the FPGA clock cycle
// round(t / speedup / clock), its step round(cycle clock / dt) (round half to even, as numpy), events
// outside [0, steps) not binned; arrival one step later (routing), those arriving after the run lost.
// Returns {offsets [B + 1] int64, arrival step [E] int32, channel [E] int32, binned events (int64 scalar)},
// each run's events sorted by arrival, then channel. One pass in C++: in numpy this took a quarter of
// a Yin-Yang batch's time on two threads.
std::vector<at::Tensor> bin_events(const at::Tensor& times_s, double speedup, double clock_s, double dt_s,
                                   int64_t steps) {
  check(times_s.dtype() == at::kDouble && (times_s.dim() == 2 || times_s.dim() == 3),
        "bin_events: float64 times [B, channels] or spike trains [B, channels, K]");
  const at::Tensor t = times_s.contiguous();
  const int64_t runs = t.size(0), channels = t.size(1), per_channel = t.dim() == 3 ? t.size(2) : 1;
  const double* tp = t.data_ptr<double>();
  at::Tensor offsets = at::empty({runs + 1}, at::TensorOptions().dtype(at::kLong));
  int64_t* off = offsets.data_ptr<int64_t>();
  std::vector<int32_t> arrival, channel;
  arrival.reserve(static_cast<size_t>(runs * channels));
  channel.reserve(static_cast<size_t>(runs * channels));
  int64_t binned = 0;
  off[0] = 0;
  for (int64_t b = 0; b < runs; ++b) {
    const size_t first = arrival.size();
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t k = 0; k < per_channel; ++k) {
        const double cycle = std::nearbyint(tp[(b * channels + c) * per_channel + k] / speedup / clock_s);
        const double step = std::nearbyint(cycle * clock_s / dt_s);
        if (!std::isfinite(step) || step < 0.0 || step >= static_cast<double>(steps)) continue;
        // Kept even when it arrives after the run's end: it counts as binned once duplicates are merged.
        arrival.push_back(static_cast<int32_t>(step) + 1);
        channel.push_back(static_cast<int32_t>(c));
      }
    }
    // Sort by arrival, then channel (what appending by channel and a stable sort by arrival would give).
    std::vector<int64_t> packed(arrival.size() - first);
    for (size_t i = first; i < arrival.size(); ++i)
      packed[i - first] = (static_cast<int64_t>(arrival[i]) << 32) | static_cast<int64_t>(channel[i]);
    std::sort(packed.begin(), packed.end());
    for (size_t i = first; i < arrival.size(); ++i) {
      arrival[i] = static_cast<int32_t>(packed[i - first] >> 32);
      channel[i] = static_cast<int32_t>(packed[i - first] & 0xffffffff);
    }
    // A train's events of one channel on one step merge into one (the twin's grid_events); with one spike
    // per channel no two entries are equal. Then drop what arrives after the run's end (sorted last).
    size_t kept = first;
    for (size_t i = first; i < arrival.size(); ++i) {
      if (i > first && kept > first && arrival[i] == arrival[kept - 1] && channel[i] == channel[kept - 1]) continue;
      arrival[kept] = arrival[i];
      channel[kept] = channel[i];
      ++kept;
    }
    binned += static_cast<int64_t>(kept - first);
    while (kept > first && arrival[kept - 1] >= steps) --kept;
    arrival.resize(kept);
    channel.resize(kept);
    off[b + 1] = static_cast<int64_t>(arrival.size());
  }
  const auto as_tensor = [](const std::vector<int32_t>& v) {
    at::Tensor out = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(at::kInt));
    std::copy(v.begin(), v.end(), out.data_ptr<int32_t>());
    return out;
  };
  return {offsets, as_tensor(arrival), as_tensor(channel), at::scalar_tensor(binned, at::TensorOptions().dtype(at::kLong))};
}

// Standard normals of the counter-based generator at (sample[i], step[i], index[i]) of `stream`.
at::Tensor normals(int64_t key, int64_t stream, const at::Tensor& sample, const at::Tensor& step,
                   const at::Tensor& index, const at::Tensor& table) {
  check(sample.dtype() == at::kLong && step.dtype() == at::kLong && index.dtype() == at::kLong,
        "normals: int64 counters");
  check(table.dtype() == at::kFloat && table.numel() == kTableSize, "normals: the 8192-entry table");
  const at::Tensor s = sample.contiguous(), k = step.contiguous(), i = index.contiguous();
  at::Tensor out = at::empty({s.numel()}, at::TensorOptions().dtype(at::kFloat));
  const int64_t* sp = s.data_ptr<int64_t>();
  const int64_t* kp = k.data_ptr<int64_t>();
  const int64_t* ip = i.data_ptr<int64_t>();
  const float* tp = table.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t n = 0; n < s.numel(); ++n)
    op[n] = normal_at(step_base(static_cast<uint64_t>(key), static_cast<uint64_t>(stream), static_cast<uint64_t>(sp[n]),
                                static_cast<uint64_t>(kp[n])),
                      static_cast<uint32_t>(ip[n]), tp);
  return out;
}

// The raw 32-bit draws (bus priorities; tests check their uniformity), as int64.
at::Tensor draws(int64_t key, int64_t stream, int64_t sample, int64_t step, int64_t count) {
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  const uint64_t base = step_base(static_cast<uint64_t>(key), static_cast<uint64_t>(stream),
                                  static_cast<uint64_t>(sample), static_cast<uint64_t>(step));
  for (int64_t n = 0; n < count; ++n) op[n] = draw(base, static_cast<uint32_t>(n));
  return out;
}

}  // namespace mock
}  // namespace neurodeploy

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("run", &neurodeploy::mock::run, "one batch of runs of the emulated chip");
  m.def("madc_alone", &neurodeploy::mock::madc_alone, "MADC traces of independent neurons, one per run");
  m.def("bin_events", &neurodeploy::mock::bin_events, "input spike times → each run's events on the step grid");
  m.def("normals", &neurodeploy::mock::normals, "standard normals of the counter-based generator");
  m.def("draws", &neurodeploy::mock::draws, "raw 32-bit draws of the counter-based generator");
}
