// CPU launcher of the fused LIF time loop (OpenMP); the operators that call it
// (torch.ops.neurodeploy_lif.{lif_forward, lif_backward}) are in lif_ops.cpp.
//
// Without feedback every neuron is independent: one OpenMP task is a chunk of neurons of one
// batch row, and the time loop runs inside it with the state in stack arrays, so nothing is
// allocated per step. With feedback the neurons of a row couple through L z_{k-1}, so a task is
// a whole row; the feedback is event-driven: only the columns of L of the neurons that spiked
// at k-1 are added (L is stored transposed so that a column is contiguous).
//
// Training without feedback keeps no per-step trace: forward stores the state every kSegment
// steps, and backward recomputes one segment at a time from its checkpoint (bit-identical: same
// code, same inputs) before walking it backwards. With feedback, forward keeps v_pre (see
// lif_core.h), and with a surrogate that is nonzero everywhere backward cannot be event-driven:
// it is one GEMM per step, gI_k L, from the BLAS that PyTorch ships. With a surrogate that is 0
// outside a band, the sparse backward (backward_lateral_sparse) computes gI_k L only for the
// neurons inside it.
#include "lif_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "lif_core.h"

namespace neurodeploy {
namespace {

// Neurons per task: 128 floats = 512 contiguous bytes per stream and step, few enough that a
// chunk's state and its recomputed segment (32 x 128 values) stay in L1.
constexpr int64_t kChunk = 128;

// Threads for a parallel region over `work` neuron-steps: at most PyTorch's setting, and one per
// kGrain of work, since waking a thread (worse: one that shares its core with another process)
// costs more than a small problem. Regions hand out tasks with schedule(guided): large
// contiguous blocks first, so that no two cores write neighbouring chunks at the same time (a
// one-task `dynamic` hand-out made 2 threads slower than 1 here), then smaller ones, so that a
// thread whose core is busy with another process does not hold up the region as a static split
// would.
constexpr int64_t kGrain = 1 << 14;
int threads(int64_t work) {
  const int64_t wanted = std::max<int64_t>(1, work / kGrain);
  return static_cast<int>(std::min<int64_t>(std::max(1, at::get_num_threads()), wanted));
}

// Calls f(std::true_type / std::false_type): optional arrays become compile-time switches,
// since a run-time `if (ptr)` around a load or store keeps GCC from vectorising the loop.
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

// Calls f(std::integral_constant<SurrogateKind, kind>): the surrogate, too, is a compile-time
// switch of the backward loops (a run-time switch inside them would be evaluated per element).
template <typename F>
void with_surrogate(SurrogateKind kind, F&& f) {
  using K = SurrogateKind;
  switch (kind) {
    case K::kArctan: f(std::integral_constant<K, K::kArctan>{}); break;
    case K::kTriangle: f(std::integral_constant<K, K::kTriangle>{}); break;
    case K::kSlayer: f(std::integral_constant<K, K::kSlayer>{}); break;
    case K::kSuperSpikeTruncated: f(std::integral_constant<K, K::kSuperSpikeTruncated>{}); break;
    default: f(std::integral_constant<K, K::kSuperSpike>{}); break;
  }
}

// Consecutive steps of one chunk lie B*N elements apart, a new page every step, where the
// hardware prefetcher loses the stream; asking for the lines of a step ahead made the chunked
// loop ~4x faster here (5 -> 1.2 ns per neuron-step, one thread).
constexpr int64_t kAhead = 2;  // steps ahead; 1 to 4 measured within noise of each other
template <int kWrite, typename T>
ND_INLINE void prefetch_step(const T* p, int64_t len) {
  for (int64_t j = 0; j < len; j += 64 / static_cast<int64_t>(sizeof(T)))
    __builtin_prefetch(p + j, kWrite, 3);
}

// ---- forward and recompute over a range of steps -----------------------------------------------

// kInfer writes z and v; kTrain also what backward needs (checkpoints; with feedback v_pre and
// the refractory flags); kRecompute writes only v_pre and the refractory flag of step t into
// row t - t0 of a segment buffer (for backward).
enum class Mode { kInfer, kTrain, kRecompute };

// State before step t0 of neurons [n0, n0+len) of row b: rest, or the checkpoint (lif_core.h's
// load_checkpoint / store_checkpoint, one neuron at a time, into the chunk's stack arrays).
template <typename T>
void load_state(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t0,
                T* __restrict__ i_syn, T* __restrict__ v, int32_t* __restrict__ ref) {
  const T* __restrict__ v_leak = a.v_leak + n0;
  const T* const checkpoint = a.checkpoint;  // locals, not `a.`: see run_chunk
  const int64_t batch = a.batch, neurons = a.neurons;
  for (int64_t j = 0; j < len; ++j) {
    const NeuronState<T> s =
        load_checkpoint<T>(checkpoint, t0, b, n0 + j, batch, neurons, v_leak[j]);
    i_syn[j] = s.i_syn;
    v[j] = s.v;
    ref[j] = s.refractory_steps;
  }
}

template <typename T>
void store_state(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t0,
                 const T* __restrict__ i_syn, const T* __restrict__ v,
                 const int32_t* __restrict__ ref) {
  T* const checkpoint = a.checkpoint;
  const int64_t batch = a.batch, neurons = a.neurons;
  for (int64_t j = 0; j < len; ++j)
    store_checkpoint<T>(checkpoint, t0, b, n0 + j, batch, neurons,
                        NeuronState<T>{i_syn[j], v[j], ref[j]});
}

// Steps [t0, t1) of neurons [n0, n0+len) of row b, no feedback; state in stack arrays.
// In kRecompute, vp_buf / rf_buf are [kSegment, kChunk]. kRef: some neuron has a refractory
// period (a.any_refractory).
template <typename T, Mode kMode, bool kRef>
void run_chunk(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t0,
               int64_t t1, T* __restrict__ vp_buf, uint8_t* __restrict__ rf_buf) {
  T i_syn[kChunk], v[kChunk];
  int32_t ref[kChunk];
  load_state(a, b, n0, len, t0, i_syn, v, ref);
  // Local restrict copies: loads through `a.` would be re-read after every store (aliasing),
  // which keeps GCC from vectorising ("evolution of base is not affine").
  const T* __restrict__ alpha = a.alpha + n0;
  const T* __restrict__ beta = a.beta + n0;
  const T* __restrict__ v_leak = a.v_leak + n0;
  const T* __restrict__ v_th = a.v_th + n0;
  const T* __restrict__ v_reset = a.v_reset + n0;
  const int32_t* __restrict__ n_ref = a.n_ref + n0;
  constexpr bool kWrite = kMode != Mode::kRecompute;
  const int64_t stride = a.batch * a.neurons;
  for (int64_t t = t0; t < t1; ++t) {
    if (kMode == Mode::kTrain && t > 0 && t % kSegment == 0)
      store_state(a, b, n0, len, t, i_syn, v, ref);
    const int64_t off = t * stride + b * a.neurons + n0;
    const T* __restrict__ x = a.x + off;
    T* __restrict__ z = kWrite ? a.z + off : nullptr;
    T* __restrict__ vo = kWrite ? a.v + off : nullptr;
    T* __restrict__ vp = kWrite ? nullptr : vp_buf + (t - t0) * kChunk;
    uint8_t* __restrict__ rf = kWrite ? nullptr : rf_buf + (t - t0) * kChunk;
    if (t + kAhead < t1) {
      prefetch_step<0>(x + kAhead * stride, len);
      if constexpr (kWrite) {
        prefetch_step<1>(z + kAhead * stride, len);
        prefetch_step<1>(vo + kAhead * stride, len);
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const NeuronCoeffs<T> c{alpha[j], beta[j], v_leak[j], v_th[j], v_reset[j], n_ref[j]};
      NeuronState<T> s{i_syn[j], v[j], ref[j]};
      T p;
      bool r;
      const T zj = lif_forward_step<T, kRef>(x[j], s, c, p, r);
      i_syn[j] = s.i_syn;
      v[j] = s.v;
      ref[j] = s.refractory_steps;
      if constexpr (kWrite) {
        z[j] = zj;
        vo[j] = s.v;
      } else {
        vp[j] = p;
        if constexpr (kRef) rf[j] = r;
      }
    }
  }
}

// One thread's arrays for a whole row (allocated once per call and thread, never per step).
template <typename T>
struct RowWork {
  explicit RowWork(int64_t n) : i_syn(n), v(n), lat(n), z(n), ref(n), spiked(n) {}
  std::vector<T> i_syn, v, lat, z;
  std::vector<int32_t> ref, spiked;
};

// lat = sum of the columns L[:, j] of the spiked neurons j, in ascending j (the CUDA launcher
// adds them in the same order, so both round alike).
template <typename T>
void add_spiked_columns(const T* lateral_t, const int32_t* spiked, int64_t n_spiked,
                        int64_t n_all, T* __restrict__ lat) {
  std::fill(lat, lat + n_all, T(0));
  int64_t s = 0;
  for (; s + 4 <= n_spiked; s += 4) {  // four columns per pass over lat, same rounding order
    const T* __restrict__ c0 = lateral_t + static_cast<int64_t>(spiked[s]) * n_all;
    const T* __restrict__ c1 = lateral_t + static_cast<int64_t>(spiked[s + 1]) * n_all;
    const T* __restrict__ c2 = lateral_t + static_cast<int64_t>(spiked[s + 2]) * n_all;
    const T* __restrict__ c3 = lateral_t + static_cast<int64_t>(spiked[s + 3]) * n_all;
#pragma omp simd
    for (int64_t n = 0; n < n_all; ++n) lat[n] = (((lat[n] + c0[n]) + c1[n]) + c2[n]) + c3[n];
  }
  for (; s < n_spiked; ++s) {
    const T* __restrict__ col = lateral_t + static_cast<int64_t>(spiked[s]) * n_all;
#pragma omp simd
    for (int64_t n = 0; n < n_all; ++n) lat[n] += col[n];
  }
}

// Indices of the spiking neurons, branch-free (spikes are rare and random: a branch mispredicts).
template <typename T>
int64_t compact_spikes(const T* z, int64_t n_all, int32_t* spiked) {
  int64_t count = 0;
  for (int64_t n = 0; n < n_all; ++n) {
    spiked[count] = static_cast<int32_t>(n);
    count += z[n] > T(0);
  }
  return count;
}

// All steps of row b with event-driven feedback; kTrain also writes v_pre and the flags.
template <typename T, Mode kMode, bool kRef>
void run_row_lateral(const ForwardArgs<T>& a, int64_t b, RowWork<T>& w) {
  static_assert(kMode != Mode::kRecompute, "with feedback, backward reads the stored v_pre");
  const int64_t n_all = a.neurons, stride = a.batch * n_all;
  T* __restrict__ i_syn = w.i_syn.data();
  T* __restrict__ v = w.v.data();
  T* __restrict__ lat = w.lat.data();
  T* __restrict__ zl = w.z.data();
  int32_t* __restrict__ ref = w.ref.data();
  load_state(a, b, 0, n_all, 0, i_syn, v, ref);
  int64_t n_spiked = 0;
  const T* __restrict__ alpha = a.alpha;
  const T* __restrict__ beta = a.beta;
  const T* __restrict__ v_leak = a.v_leak;
  const T* __restrict__ v_th = a.v_th;
  const T* __restrict__ v_reset = a.v_reset;
  const int32_t* __restrict__ n_ref = a.n_ref;
  constexpr bool kTrace = kMode == Mode::kTrain;
  for (int64_t t = 0; t < a.steps; ++t) {
    add_spiked_columns(a.lateral_t, w.spiked.data(), n_spiked, n_all, lat);
    const int64_t off = t * stride + b * n_all;
    const T* __restrict__ x = a.x + off;
    T* __restrict__ z = a.z + off;
    T* __restrict__ vo = a.v + off;
    T* __restrict__ vp = kTrace ? a.v_pre + off : nullptr;
    uint8_t* __restrict__ rf = kTrace && kRef ? a.refractory + off : nullptr;
    if (t + 1 < a.steps) prefetch_step<0>(x + stride, n_all);
#pragma omp simd
    for (int64_t n = 0; n < n_all; ++n) {
      const NeuronCoeffs<T> c{alpha[n], beta[n], v_leak[n], v_th[n], v_reset[n], n_ref[n]};
      NeuronState<T> s{i_syn[n], v[n], ref[n]};
      T p;
      bool r;
      zl[n] = lif_forward_step<T, kRef>(x[n] + lat[n], s, c, p, r);
      i_syn[n] = s.i_syn;
      v[n] = s.v;
      ref[n] = s.refractory_steps;
      z[n] = zl[n];
      vo[n] = s.v;
      if constexpr (kTrace) vp[n] = p;
      if constexpr (kTrace && kRef) rf[n] = r;
    }
    n_spiked = compact_spikes(zl, n_all, w.spiked.data());
  }
}

template <typename T>
void forward_cpu(const ForwardArgs<T>& a) {
  const int64_t n_all = a.neurons;
  with_flag(a.checkpoint != nullptr || a.v_pre != nullptr, [&](auto train) {
    constexpr Mode kMode = decltype(train)::value ? Mode::kTrain : Mode::kInfer;
    with_flag(a.any_refractory, [&](auto ref) {
      constexpr bool kRef = decltype(ref)::value;
      if (a.lateral_t == nullptr) {
        const int64_t chunks = (n_all + kChunk - 1) / kChunk, tasks = a.batch * chunks;
#pragma omp parallel for schedule(guided) num_threads(threads(a.steps * a.batch * n_all))
        for (int64_t task = 0; task < tasks; ++task) {
          const int64_t b = task / chunks, n0 = (task % chunks) * kChunk;
          run_chunk<T, kMode, kRef>(a, b, n0, std::min(kChunk, n_all - n0), 0, a.steps, nullptr,
                                    nullptr);
        }
        return;
      }
#pragma omp parallel num_threads(threads(a.steps * a.batch * n_all))
      {
        RowWork<T> w(n_all);
#pragma omp for schedule(guided)
        for (int64_t b = 0; b < a.batch; ++b) run_row_lateral<T, kMode, kRef>(a, b, w);
      }
    });
  });
}

// ---- backward ----------------------------------------------------------------------------------

// Reverse steps t_hi-1 ... t_lo of neurons [n0, n0+len) of row b. v_pre / refractory of step t
// are at vp[(t - seg0) * vp_stride + j] (the recomputed segment starting at seg0). `adj_i` /
// `adj_v` carry the adjoints between steps; with kLat, `grad_z_lateral` is (gI_{t+1} L)[b, n0:]
// for the single step t_lo.
template <typename T, SurrogateKind kSg, bool kGz, bool kGv, bool kRef, bool kLat>
void backward_steps(const BackwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t_hi,
                    int64_t t_lo, int64_t seg0, const T* vp_base, const uint8_t* rf_base,
                    int64_t vp_stride, T* __restrict__ adj_i, T* __restrict__ adj_v,
                    const T* __restrict__ grad_z_lateral) {
  const T* __restrict__ alpha = a.f.alpha + n0;
  const T* __restrict__ beta = a.f.beta + n0;
  const T* __restrict__ v_th = a.f.v_th + n0;
  const T* __restrict__ v_reset = a.f.v_reset + n0;
  const FixedSurrogate<kSg, T> surrogate{a.surrogate.p0, a.surrogate.p1};
  const T reset_gate = a.detach_reset ? T(0) : T(1);
  const int64_t stride = a.f.batch * a.f.neurons;
  for (int64_t t = t_hi - 1; t >= t_lo; --t) {
    const int64_t off = t * stride + b * a.f.neurons + n0;
    const T* __restrict__ vp = vp_base + (t - seg0) * vp_stride;
    const uint8_t* __restrict__ rf = kRef ? rf_base + (t - seg0) * vp_stride : nullptr;
    const T* __restrict__ g_z = kGz ? a.grad_z + off : nullptr;
    const T* __restrict__ g_v = kGv ? a.grad_v + off : nullptr;
    T* __restrict__ gx = a.grad_x + off;
    if (t - kAhead >= t_lo) {
      if constexpr (kGz) prefetch_step<0>(g_z - kAhead * stride, len);
      if constexpr (kGv) prefetch_step<0>(g_v - kAhead * stride, len);
      prefetch_step<1>(gx - kAhead * stride, len);
    }
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const NeuronCoeffs<T> c{alpha[j], beta[j], T(0), v_th[j], v_reset[j], 0};
      T gz = T(0), gv = T(0);
      bool r = false;
      if constexpr (kGz) gz = g_z[j];
      if constexpr (kLat) gz += grad_z_lateral[j];
      if constexpr (kGv) gv = g_v[j];
      if constexpr (kRef) r = rf[j] != 0;
      NeuronAdjoint<T> ad{adj_i[j], adj_v[j]};
      gx[j] = lif_backward_step(gz, gv, vp[j], r, c, surrogate, reset_gate, ad);
      adj_i[j] = ad.i_syn;
      adj_v[j] = ad.v;
    }
  }
}

// Active neurons (lif_core.h's sparse_active) among `rows` rows of `len` values of v_pre, `stride`
// apart, for neurons n0.. of the layer.
template <typename T>
int64_t count_active(const BackwardArgs<T>& a, int64_t n0, int64_t len, int64_t rows,
                     const T* vp, int64_t stride) {
  const T* __restrict__ v_th = a.f.v_th + n0;
  const T band = a.sparse_band;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < len; ++j) count += sparse_active(vp[r * stride + j], v_th[j], band);
  return count;
}

// Without feedback the backward is element-wise and each neuron's adjoints run through every
// step (through v and I even where the surrogate is 0), so the sparse backward computes the
// same, and only counts the active neurons (that dL/dz is needed only there matters to whoever
// computes grad_z: the next layer's W^T gI, outside this kernel).
template <typename T, SurrogateKind kSg, bool kGz, bool kGv, bool kRef>
void backward_independent(const BackwardArgs<T>& a) {
  const int64_t n_all = a.f.neurons, chunks = (n_all + kChunk - 1) / kChunk;
  const int64_t tasks = a.f.batch * chunks, segments = num_segments(a.f.steps);
  const bool sparse = a.sparse_band > T(0);
  int64_t active = 0;
#pragma omp parallel for schedule(guided) num_threads(threads(a.f.steps * a.f.batch * n_all)) \
    reduction(+ : active)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / chunks, n0 = (task % chunks) * kChunk;
    const int64_t len = std::min(kChunk, n_all - n0);
    T vp_buf[kSegment * kChunk];
    uint8_t rf_buf[kRef ? kSegment * kChunk : 1];
    T adj_i[kChunk] = {}, adj_v[kChunk] = {};
    for (int64_t s = segments - 1; s >= 0; --s) {
      const int64_t t0 = s * kSegment, t1 = std::min(a.f.steps, t0 + kSegment);
      run_chunk<T, Mode::kRecompute, kRef>(a.f, b, n0, len, t0, t1, vp_buf, rf_buf);
      backward_steps<T, kSg, kGz, kGv, kRef, false>(a, b, n0, len, t1, t0, t0, vp_buf, rf_buf,
                                                    kChunk, adj_i, adj_v, nullptr);
      if (sparse) active += count_active(a, n0, len, t1 - t0, vp_buf, kChunk);
    }
  }
  if (sparse) *a.active_count = active;
}

// With feedback the rows' neurons couple in every step: time loop outside, one element-wise
// pass over the stored v_pre and one GEMM per step. Buffers are allocated once per call.
template <typename T, SurrogateKind kSg, bool kGz, bool kGv, bool kRef>
void backward_lateral(const BackwardArgs<T>& a, const at::Tensor& grad_x,
                      const at::Tensor& lateral) {
  const int64_t n_all = a.f.neurons, batch = a.f.batch, stride = batch * n_all;
  const int64_t chunks = (n_all + kChunk - 1) / kChunk, tasks = batch * chunks;
  const auto opts = grad_x.options();
  at::Tensor adj_i = at::zeros({batch, n_all}, opts), adj_v = at::zeros({batch, n_all}, opts);
  at::Tensor gz_lat = at::zeros({batch, n_all}, opts);
  T* ai = adj_i.data_ptr<T>();
  T* av = adj_v.data_ptr<T>();
  const T* gl = gz_lat.data_ptr<T>();
  for (int64_t k = a.f.steps - 1; k >= 0; --k) {
#pragma omp parallel for schedule(guided) num_threads(threads(batch * n_all))
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / chunks, n0 = (task % chunks) * kChunk, o = b * n_all + n0;
      backward_steps<T, kSg, kGz, kGv, kRef, true>(
          a, b, n0, std::min(kChunk, n_all - n0), k + 1, k, 0, a.f.v_pre + o,
          kRef ? a.f.refractory + o : nullptr, stride, ai + o, av + o, gl + o);
    }
    if (k > 0) at::mm_out(gz_lat, grad_x[k], lateral);  // (gI_k L)[b, j] for step k-1
  }
}

// Sparse backward with feedback (Perez-Nieves & Goodman, NeurIPS 2021). The dense backward's
// GEMM gives every neuron n of step k-1 its lateral term (L^T gI_k)_n, but that term enters
// only through gz_{k-1} sigma'(u_{k-1}) (lif_core.h: gz appears nowhere else, and the reset term
// inside gz is multiplied by the same sigma'), which the surrogate makes exactly 0 outside its
// band. So only the active neurons' entries are computed, each a dot product of gI_k[b, :] with
// column n of L (row n of a.f.lateral_t, contiguous); the others get 0. Exact, not an
// approximation (only the order of the sums differs from the GEMM's).
//
// Rows couple only through the shared, read-only L, so a task is a block of rows through all
// steps (no barrier per step). Within a block the dot products go neuron by neuron:
// per step, a bit mask per neuron of the block's rows in which it is active, then for each
// neuron with a non-empty mask its column of L is read once (from L2 or L3; the next one is
// prefetched) and multiplied with the gI of each of those rows, four rows per pass (four
// independent sums).
// Rows per task: at most 32 (the bits of the mask), and about B / (2 threads) so that each thread
// gets two tasks (guided hand-out keeps a descheduled thread from holding up the region). The
// more rows, the more of them share each column of L, whose reads were the bottleneck: at (100,
// 64, 512) on one thread, 8-row blocks took 30 / 40 / 55 ms at 11 / 21 / 51% active neurons,
// 32-row blocks 22 / 27 / 41 ms, 64-row blocks 22 / 27 / 48 ms (their gI rows no longer fit).
constexpr int64_t kMaxRowBlock = 32;
using RowMask = uint32_t;

// Contracted to FMA (the rest of the file is built with -ffp-contract=off so that the forward
// rounds as PyTorch does): these sums are gradients, whose order differs from the GEMM's anyway.
// With GCC on x86-64 also cloned for AVX-512 (x86-64-v4), chosen at load time where the CPU has
// it: the build's -mavx2 serves the element-wise loops (AVX-512 did not speed those up), but
// these sums are bound by multiply-add throughput, which 512-bit vectors double.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ND_DOT_CLONES target_clones("arch=x86-64-v4", "default"),
#else
#define ND_DOT_CLONES
#endif
template <typename T>
__attribute__((ND_DOT_CLONES noinline, optimize("fp-contract=fast"))) void dot_rows(const T* __restrict__ col, const T* const* g, T* const* out, int64_t n,
                        int count, int64_t n_all) {
  int r = 0;
  for (; r + 4 <= count; r += 4) {
    const T* __restrict__ g0 = g[r];
    const T* __restrict__ g1 = g[r + 1];
    const T* __restrict__ g2 = g[r + 2];
    const T* __restrict__ g3 = g[r + 3];
    T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t m = 0; m < n_all; ++m) {
      s0 += g0[m] * col[m];
      s1 += g1[m] * col[m];
      s2 += g2[m] * col[m];
      s3 += g3[m] * col[m];
    }
    out[r][n] = s0;
    out[r + 1][n] = s1;
    out[r + 2][n] = s2;
    out[r + 3][n] = s3;
  }
  // One row: four quarters summed side by side, so that four sums are in flight here too (one
  // sum would wait on its own additions: latency-bound, measured ~3x slower).
  const int64_t q = n_all / 4;
  for (; r < count; ++r) {
    const T* __restrict__ g0 = g[r];
    T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t m = 0; m < q; ++m) {
      s0 += g0[m] * col[m];
      s1 += g0[m + q] * col[m + q];
      s2 += g0[m + 2 * q] * col[m + 2 * q];
      s3 += g0[m + 3 * q] * col[m + 3 * q];
    }
    for (int64_t m = 4 * q; m < n_all; ++m) s0 += g0[m] * col[m];
    out[r][n] = (s0 + s1) + (s2 + s3);
  }
}

template <typename T, SurrogateKind kSg, bool kGz, bool kGv, bool kRef>
void backward_lateral_sparse(const BackwardArgs<T>& a) {
  const int64_t n_all = a.f.neurons, batch = a.f.batch, stride = batch * n_all;
  const int nth = threads(a.f.steps * batch * n_all);
  const int64_t block = std::clamp<int64_t>((batch + 2 * nth - 1) / (2 * nth), 1, kMaxRowBlock);
  const int64_t blocks = (batch + block - 1) / block;
  const T* __restrict__ v_th = a.f.v_th;
  const T* const lt = a.f.lateral_t;
  const T band = a.sparse_band;
  int64_t active = 0;
#pragma omp parallel num_threads(nth) reduction(+ : active)
  {
    // adjoints and lateral terms of the block's rows, [block, N] each
    std::vector<T> adj_i(block * n_all), adj_v(block * n_all), gz_lat(block * n_all);
    std::vector<RowMask> mask(n_all);
    std::vector<int32_t> idx(n_all);
#pragma omp for schedule(guided)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t b0 = blk * block, rows = std::min(block, batch - b0);
      std::fill(adj_i.begin(), adj_i.end(), T(0));
      std::fill(adj_v.begin(), adj_v.end(), T(0));
      std::fill(gz_lat.begin(), gz_lat.end(), T(0));
      RowMask* __restrict__ mk = mask.data();
      int32_t* __restrict__ id = idx.data();
      T* out[kMaxRowBlock];
      for (int64_t r = 0; r < rows; ++r) out[r] = gz_lat.data() + r * n_all;
      for (int64_t k = a.f.steps - 1; k >= 0; --k) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t o = (b0 + r) * n_all;
          backward_steps<T, kSg, kGz, kGv, kRef, true>(
              a, b0 + r, 0, n_all, k + 1, k, 0, a.f.v_pre + o, kRef ? a.f.refractory + o : nullptr,
              stride, adj_i.data() + r * n_all, adj_v.data() + r * n_all, out[r]);
        }
        if (k == a.f.steps - 1)  // step T-1 has no successor: counted, nothing to compute
          active += count_active(a, 0, n_all, rows, a.f.v_pre + k * stride + b0 * n_all, n_all);
        if (k == 0) break;
        // Which rows each neuron is active in at step k-1, then the neurons active in any.
        const T* vp = a.f.v_pre + (k - 1) * stride + b0 * n_all;
        std::fill(mk, mk + n_all, RowMask(0));
        for (int64_t r = 0; r < rows; ++r) {
          const T* __restrict__ vr = vp + r * n_all;
          const RowMask bit = RowMask(1) << r;
#pragma omp simd
          for (int64_t n = 0; n < n_all; ++n)
            mk[n] |= sparse_active(vr[n], v_th[n], band) ? bit : RowMask(0);
        }
        int64_t n_any = 0;
        for (int64_t n = 0; n < n_all; ++n) {  // branch-free, as compact_spikes
          id[n_any] = static_cast<int32_t>(n);
          n_any += mk[n] != 0;
        }
        for (int64_t r = 0; r < rows; ++r) std::fill(out[r], out[r] + n_all, T(0));
        const T* g_rows[kMaxRowBlock];
        T* o_rows[kMaxRowBlock];
        for (int64_t s = 0; s < n_any; ++s) {
          const int64_t n = id[s];
          // The next active neuron's column, which comes from L2 or L3, on its way meanwhile.
          if (s + 1 < n_any) prefetch_step<0>(lt + static_cast<int64_t>(id[s + 1]) * n_all, n_all);
          int count = 0;
          for (RowMask m = mk[n]; m != 0; m &= m - 1) {  // the set bits, lowest first
            const int r = __builtin_ctz(m);
            g_rows[count] = a.grad_x + k * stride + (b0 + r) * n_all;  // gI_k of row b0 + r
            o_rows[count++] = out[r];
          }
          active += count;
          dot_rows(lt + n * n_all, g_rows, o_rows, n, count, n_all);
        }
      }
    }
  }
  *a.active_count = active;
}

// dL/dL[n, j] = sum_{k>=1, b} gI_k[b, n] z_{k-1}[b, j], accumulated event by event into the
// transposed matrix g_lt (row j gets gI_k[b, :] once per spike of j); each thread owns a range
// of rows j, so no two threads write the same memory.
template <typename T>
void lateral_grad_cpu(const BackwardArgs<T>& a, T* g_lt) {
  const int64_t n_all = a.f.neurons, batch = a.f.batch;
#pragma omp parallel num_threads(threads(a.f.steps * batch * n_all))
  {
    const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t j0 = n_all * tid / nth, j1 = n_all * (tid + 1) / nth;
    for (int64_t k = 1; k < a.f.steps; ++k) {
      for (int64_t b = 0; b < batch; ++b) {
        const T* zp = a.f.z + ((k - 1) * batch + b) * n_all;
        const T* __restrict__ g = a.grad_x + (k * batch + b) * n_all;
        for (int64_t j = j0; j < j1; ++j) {
          if (zp[j] == T(0)) continue;
          T* __restrict__ row = g_lt + j * n_all;
#pragma omp simd
          for (int64_t n = 0; n < n_all; ++n) row[n] += g[n];
        }
      }
    }
  }
}

template <typename T>
void backward_cpu(const BackwardArgs<T>& a, const at::Tensor& grad_x, const at::Tensor& lateral) {
  with_surrogate(a.surrogate.kind, [&](auto sg) {
    with_flag(a.grad_z != nullptr, [&](auto gz) {
      with_flag(a.grad_v != nullptr, [&](auto gv) {
        with_flag(a.f.any_refractory, [&](auto ref) {
          constexpr SurrogateKind kSg = decltype(sg)::value;
          constexpr bool kGz = decltype(gz)::value, kGv = decltype(gv)::value;
          constexpr bool kRef = decltype(ref)::value;
          if (a.lateral == nullptr) backward_independent<T, kSg, kGz, kGv, kRef>(a);
          else if (a.sparse_band > T(0)) backward_lateral_sparse<T, kSg, kGz, kGv, kRef>(a);
          else backward_lateral<T, kSg, kGz, kGv, kRef>(a, grad_x, lateral);
        });
      });
    });
  });
}

}  // namespace

void lif_forward_cpu(const ForwardArgs<float>& a) { forward_cpu(a); }
void lif_forward_cpu(const ForwardArgs<double>& a) { forward_cpu(a); }

void lif_backward_cpu(const BackwardArgs<float>& a, const at::Tensor& grad_x,
                      const at::Tensor& lateral) {
  backward_cpu(a, grad_x, lateral);
}
void lif_backward_cpu(const BackwardArgs<double>& a, const at::Tensor& grad_x,
                      const at::Tensor& lateral) {
  backward_cpu(a, grad_x, lateral);
}

void lif_lateral_grad_cpu(const BackwardArgs<float>& a, float* g_lt) { lateral_grad_cpu(a, g_lt); }
void lif_lateral_grad_cpu(const BackwardArgs<double>& a, double* g_lt) {
  lateral_grad_cpu(a, g_lt);
}

}  // namespace neurodeploy
