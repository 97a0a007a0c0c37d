// The fast emulator of the mock BSS-2 chip (mock_cpu.cpp): its counter-based random numbers and the
// raw-pointer description of one run. The readable twin is neurodeploy/backends/mock/chip.py; the
// Python side of this path is neurodeploy/backends/mock/fast.py (its docstring states the contract).
//
// Random numbers: every draw is a pure function of (key, stream, sample, step, index), so a run's
// noise depends on the chip's seed and on which samples it sees, not on the batch size, the thread
// count or the order in which rows are computed:
//   base  = splitmix64(splitmix64(splitmix64(key + stream G) + sample) + step)      once per step
//   h(k)  = lowbias32((lo32(base) + k * 0x9E3779B9) xor hi32(base))                 a 32-bit word
// lowbias32 (C. Wellons' integer hash) is a bijection of 32-bit words, so the words of one step are
// distinct. Normals come two per word: the one of index i is an inverse-CDF look-up of the top 13 bits
// of a 16-bit half,
//   n(i) = Q[half(h(i / 2), i mod 2) >> 3],  half(h, 0) = h & 0xFFFF,  half(h, 1) = h >> 16,
//   Q[j] = Phi^-1((j + 1/2) / 8192) / sqrt(m2),
// m2 the mean of Phi^-1(.)^2 over the table, so that Var n = 1 exactly; kurtosis 2.995, the largest
// distance of its CDF from the normal's 8e-5, the tails stop at 3.84 sigma (a normal passes them once
// in 8,000 draws). Why so: the look-ups are scalar loads, and they were half of the emulator's time
// with two look-ups per normal in a 256 KB table; one per normal in a 32 KB table stays in L1.
// Priorities for the buses are the words h(k) themselves.
// This is in the spirit of Philox (a keyed bijection of a counter), not Philox: 10-round Philox
// plus Box-Muller would cost more than the whole neuron update at the rate this path runs.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ND_MOCK_INLINE __host__ __device__ __forceinline__
#else
#define ND_MOCK_INLINE inline __attribute__((always_inline))
#endif

namespace neurodeploy {
namespace mock {

constexpr int64_t kTableBits = 13;
constexpr int64_t kTableSize = int64_t(1) << kTableBits;
constexpr uint32_t kTableShift = 16 - kTableBits;  // a 16-bit half → its table index

// Independent streams of draws of one run (the Python side uses the same numbers).
enum Stream : uint64_t {
  kMembraneNoise = 1,
  kCadcReadNoise = 2,
  kInputPriority = 3,
  kNeuronPriority = 4,
  kSpikeJitter = 5,
};

ND_MOCK_INLINE uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

ND_MOCK_INLINE uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// The per-step word every draw of (stream, sample, step) starts from.
ND_MOCK_INLINE uint64_t step_base(uint64_t key, uint64_t stream, uint64_t sample, uint64_t step) {
  return splitmix64(splitmix64(splitmix64(key + stream * 0x9E3779B97F4A7C15ull) + sample) + step);
}

ND_MOCK_INLINE uint32_t draw(uint64_t base, uint32_t index) {
  return lowbias32((static_cast<uint32_t>(base) + index * 0x9E3779B9u) ^
                   static_cast<uint32_t>(base >> 32));
}

// The table index of normal `index` in word h = h(index / 2): the top bits of its low (even index) or
// high (odd) half.
ND_MOCK_INLINE uint32_t table_index(uint32_t h, uint32_t index) {
  return ((index & 1u) ? (h >> 16) : (h & 0xFFFFu)) >> kTableShift;
}

// Standard normal `index` of (stream, sample, step), `base` = step_base(...).
ND_MOCK_INLINE float normal_at(uint64_t base, uint32_t index, const float* table) {
  return table[table_index(draw(base, index >> 1), index)];
}

// One kind of event source (FPGA input channels, or on-chip neurons) and where its events go:
// the rows first[s] .. first[s+1]-1 of `matrix` [rows, N] are the currents one event of source s
// adds (one row per route, or one row per source when nothing can be dropped). With `bus` given
// (compact bus ids [rows] < n_buses), a bus carries at most `capacity` events per step; the others
// are dropped, lowest priority first.
struct Sources {
  const float* matrix;
  const int64_t* first;
  const int32_t* bus;  // null: no bus can overflow
  int64_t n_buses;
};

struct RunArgs {
  int64_t steps, batch, neurons;
  // Input events of row b: in_step/in_channel[in_offsets[b] .. in_offsets[b+1]), sorted by arrival
  // step, then channel (arrival = binned step + one step of routing latency).
  const int64_t* in_offsets;
  const int32_t* in_step;
  const int32_t* in_channel;
  Sources inputs, neurons_out;  // FPGA routes; on-chip routes (a spike at k arrives at k + 1)
  int64_t capacity;
  const float *alpha, *beta, *v_leak, *v_th, *v_reset;
  const int32_t* n_ref;
  bool any_refractory;
  const float* noise_sigma;  // [N] input noise per step (CADC), or null
  const float* table;        // [kTableSize] the normal quantiles
  // CADC: samples at steps cadc_first + j cadc_every (j < cadc_count), 8 bit with read noise, and
  // step t reads s[lower[t]] wl[t] + s[upper[t]] wh[t]; cadc_lower null: the membrane itself.
  const int32_t *cadc_lower, *cadc_upper;
  const float *cadc_wlow, *cadc_whigh;
  int64_t cadc_first, cadc_every, cadc_count;
  float read_noise, cadc_low, cadc_high;
  const int32_t* routes_per_neuron;  // [N] events one spike sends (for the events_internal counter)
  uint64_t key;
  int64_t sample0;  // the global index of row 0 (rows are samples sample0, sample0 + 1, ...)
  float* spikes;    // [T, B, N] or null
  const int32_t* recorded;  // [R] the neurons whose membranes are read out
  int64_t n_recorded;
  float* membrane;  // [T, B, R] or null
  int64_t* counters;  // [B, kCounters]
};

enum Counter : int64_t {
  kInputDropped = 0,
  kNeuronDropped = 1,
  kCadcOutside = 2,
  kEventsInternal = 3,
  kCounters = 4,
};

}  // namespace mock
}  // namespace neurodeploy
