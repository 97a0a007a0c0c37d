// CPU launcher of the fused LIF time loop (OpenMP), and the PyTorch operators
// torch.ops.neurodeploy_lif.{lif_forward, lif_backward} for CPU (and CUDA when built with it).
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
// lif_core.h), and backward cannot be event-driven (the surrogate is dense): it is one GEMM per
// step, gI_k L, from the BLAS that PyTorch ships.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/CPUAllocator.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <omp.h>
#include <torch/library.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "lif_core.h"

#ifdef NEURODEPLOY_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

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

// Consecutive steps of one chunk lie B*N elements apart, a new page every step, where the
// hardware prefetcher loses the stream; asking for the lines of a step ahead made the chunked
// loop ~4x faster here (5 -> 1.2 ns per neuron-step, one thread).
constexpr int64_t kAhead = 2;  // steps ahead; 1 to 4 measured within noise of each other
template <int kWrite, typename T>
ND_INLINE void prefetch_step(const T* p, int64_t len) {
  for (int64_t j = 0; j < len; j += 64 / static_cast<int64_t>(sizeof(T)))
    __builtin_prefetch(p + j, kWrite, 3);
}

// A fresh [T, B, N] output is mapped page by page on first touch: with 4 KiB pages the faults
// cost several times the writing itself (13 MB here: 4.8 ms vs 0.5 ms), and glibc hands freed
// blocks of this size back to the kernel, so every call paid again, plus the kernel's zeroing of
// each new page. Large outputs therefore get their own 2 MiB-aligned mapping, advised as huge
// pages (THP mode "madvise", as c10 does under THP_MEM_ALLOC_ENABLE=1), and a freed mapping is
// kept for the next output of the same size (a training loop repeats its shapes) while the pool
// holds less than $NEURODEPLOY_KERNEL_POOL_MB (default 1024; 0 disables keeping).
class MappingPool {
 public:
  static MappingPool& get() {
    static MappingPool* pool = new MappingPool();  // never destroyed: tensors may outlive exit
    return *pool;
  }
  void* take(size_t len) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].second != len) continue;
      void* p = free_[i].first;
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
      held_ -= len;
      return p;
    }
    return nullptr;
  }
  void give(void* p, size_t len) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + len <= limit_) {
        free_.emplace_back(p, len);
        held_ += len;
        return;
      }
    }
    munmap(p, len);
  }

 private:
  MappingPool() {
    const char* mb = std::getenv("NEURODEPLOY_KERNEL_POOL_MB");
    limit_ = (mb ? std::strtoull(mb, nullptr, 10) : 1024ull) << 20;
  }
  std::mutex mutex_;
  std::vector<std::pair<void*, size_t>> free_;
  size_t held_ = 0, limit_ = 0;
};

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// A c10::Allocator (not at::from_blob), so that the tensors' storage stays an ordinary resizable
// one: a failed resize_ of a from_blob tensor leaves it with sizes beyond its memory.
struct PooledCpuAllocator final : c10::Allocator {
  static constexpr size_t kHuge = size_t(2) << 20;
  struct Block {
    void* data;
    size_t len;
  };
  static void release(void* ctx) {
    const Block* block = static_cast<Block*>(ctx);
    MappingPool::get().give(block->data, block->len);
    delete block;
  }
  c10::DataPtr allocate(size_t bytes) override {
    if (bytes < 2 * kHuge) return c10::GetCPUAllocator()->allocate(bytes);
    const size_t len = (bytes + kHuge - 1) & ~(kHuge - 1);
    void* p = MappingPool::get().take(len);
    if (p == nullptr) {
      void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
      if (raw == MAP_FAILED) return c10::GetCPUAllocator()->allocate(bytes);
      const uintptr_t base = reinterpret_cast<uintptr_t>(raw);  // keep the aligned [p, p + len)
      const uintptr_t aligned = (base + kHuge - 1) & ~uintptr_t(kHuge - 1);
      if (aligned > base) munmap(raw, aligned - base);
      if (base + kHuge > aligned)
        munmap(reinterpret_cast<void*>(aligned + len), base + kHuge - aligned);
      p = reinterpret_cast<void*>(aligned);
      madvise(p, len, MADV_HUGEPAGE);  // advice: fine if refused
    }
    return {p, new Block{p, len}, &release, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};
#endif

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& opts) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (opts.device().is_cpu()) {
    static PooledCpuAllocator allocator;
    return at::detail::empty_generic(sizes, &allocator, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                     opts.dtype().toScalarType(), c10::nullopt);
  }
#endif
  return at::empty(sizes, opts);
}

// ---- forward and recompute over a range of steps -----------------------------------------------

// kInfer writes z and v; kTrain also what backward needs (checkpoints; with feedback v_pre and
// the refractory flags); kRecompute writes only v_pre and the refractory flag of step t into
// row t - t0 of a segment buffer (for backward).
enum class Mode { kInfer, kTrain, kRecompute };

// State before step t0 of neurons [n0, n0+len) of row b: rest, or the checkpoint.
template <typename T>
void load_state(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t0,
                T* __restrict__ i_syn, T* __restrict__ v, int32_t* __restrict__ ref) {
  if (t0 == 0) {
    for (int64_t j = 0; j < len; ++j) {
      i_syn[j] = T(0);
      v[j] = a.v_leak[n0 + j];
      ref[j] = 0;
    }
    return;
  }
  const T* c_i = a.checkpoint + checkpoint_offset(t0, 0, b, a.batch, a.neurons) + n0;
  const T* c_v = a.checkpoint + checkpoint_offset(t0, 1, b, a.batch, a.neurons) + n0;
  const T* c_r = a.checkpoint + checkpoint_offset(t0, 2, b, a.batch, a.neurons) + n0;
  for (int64_t j = 0; j < len; ++j) {
    i_syn[j] = c_i[j];
    v[j] = c_v[j];
    ref[j] = static_cast<int32_t>(c_r[j]);
  }
}

template <typename T>
void store_state(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t0,
                 const T* __restrict__ i_syn, const T* __restrict__ v,
                 const int32_t* __restrict__ ref) {
  T* c_i = a.checkpoint + checkpoint_offset(t0, 0, b, a.batch, a.neurons) + n0;
  T* c_v = a.checkpoint + checkpoint_offset(t0, 1, b, a.batch, a.neurons) + n0;
  T* c_r = a.checkpoint + checkpoint_offset(t0, 2, b, a.batch, a.neurons) + n0;
  for (int64_t j = 0; j < len; ++j) {
    c_i[j] = i_syn[j];
    c_v[j] = v[j];
    c_r[j] = static_cast<T>(ref[j]);  // a step count: exact in float up to 2^24
  }
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
template <typename T, bool kGz, bool kGv, bool kRef, bool kLat>
void backward_steps(const BackwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t_hi,
                    int64_t t_lo, int64_t seg0, const T* vp_base, const uint8_t* rf_base,
                    int64_t vp_stride, T* __restrict__ adj_i, T* __restrict__ adj_v,
                    const T* __restrict__ grad_z_lateral) {
  const T* __restrict__ alpha = a.f.alpha + n0;
  const T* __restrict__ beta = a.f.beta + n0;
  const T* __restrict__ v_th = a.f.v_th + n0;
  const T* __restrict__ v_reset = a.f.v_reset + n0;
  const T steepness = a.steepness;
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
      gx[j] = lif_backward_step(gz, gv, vp[j], r, c, steepness, reset_gate, ad);
      adj_i[j] = ad.i_syn;
      adj_v[j] = ad.v;
    }
  }
}

template <typename T, bool kGz, bool kGv, bool kRef>
void backward_independent(const BackwardArgs<T>& a) {
  const int64_t n_all = a.f.neurons, chunks = (n_all + kChunk - 1) / kChunk;
  const int64_t tasks = a.f.batch * chunks, segments = num_segments(a.f.steps);
#pragma omp parallel for schedule(guided) num_threads(threads(a.f.steps * a.f.batch * n_all))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / chunks, n0 = (task % chunks) * kChunk;
    const int64_t len = std::min(kChunk, n_all - n0);
    T vp_buf[kSegment * kChunk];
    uint8_t rf_buf[kRef ? kSegment * kChunk : 1];
    T adj_i[kChunk] = {}, adj_v[kChunk] = {};
    for (int64_t s = segments - 1; s >= 0; --s) {
      const int64_t t0 = s * kSegment, t1 = std::min(a.f.steps, t0 + kSegment);
      run_chunk<T, Mode::kRecompute, kRef>(a.f, b, n0, len, t0, t1, vp_buf, rf_buf);
      backward_steps<T, kGz, kGv, kRef, false>(a, b, n0, len, t1, t0, t0, vp_buf, rf_buf, kChunk,
                                               adj_i, adj_v, nullptr);
    }
  }
}

// With feedback the rows' neurons couple in every step: time loop outside, one element-wise
// pass over the stored v_pre and one GEMM per step. Buffers are allocated once per call.
template <typename T, bool kGz, bool kGv, bool kRef>
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
      backward_steps<T, kGz, kGv, kRef, true>(a, b, n0, std::min(kChunk, n_all - n0), k + 1, k,
                                              0, a.f.v_pre + o, kRef ? a.f.refractory + o : nullptr,
                                              stride, ai + o, av + o, gl + o);
    }
    if (k > 0) at::mm_out(gz_lat, grad_x[k], lateral);  // (gI_k L)[b, j] for step k-1
  }
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
  with_flag(a.grad_z != nullptr, [&](auto gz) {
    with_flag(a.grad_v != nullptr, [&](auto gv) {
      with_flag(a.f.any_refractory, [&](auto ref) {
        constexpr bool kGz = decltype(gz)::value, kGv = decltype(gv)::value;
        constexpr bool kRef = decltype(ref)::value;
        if (a.lateral == nullptr) backward_independent<T, kGz, kGv, kRef>(a);
        else backward_lateral<T, kGz, kGv, kRef>(a, grad_x, lateral);
      });
    });
  });
}

// ---- operators ---------------------------------------------------------------------------------

void check_sequence(const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.sizes() == like.sizes() && t.is_contiguous() && t.device() == like.device() &&
                  t.scalar_type() == like.scalar_type(),
              "neurodeploy_lif: ", what, " must be contiguous [T, B, N] like x");
}

// Checks x and the parameters; returns L transposed (or an undefined tensor).
at::Tensor check_inputs(const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta,
                        const at::Tensor& v_leak, const at::Tensor& v_th,
                        const at::Tensor& v_reset, const at::Tensor& n_ref,
                        const c10::optional<at::Tensor>& lateral) {
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "neurodeploy_lif: x must be contiguous [T, B, N]");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "neurodeploy_lif: x must be float32 or float64");
  const int64_t n_all = x.size(2);
  for (const at::Tensor* p : {&alpha, &beta, &v_leak, &v_th, &v_reset})
    TORCH_CHECK(p->dim() == 1 && p->size(0) == n_all && p->is_contiguous() &&
                    p->scalar_type() == x.scalar_type() && p->device() == x.device(),
                "neurodeploy_lif: parameters must be contiguous [N] vectors like x");
  TORCH_CHECK(n_ref.dim() == 1 && n_ref.size(0) == n_all && n_ref.is_contiguous() &&
                  n_ref.scalar_type() == at::kInt && n_ref.device() == x.device(),
              "neurodeploy_lif: n_ref must be a contiguous int32 [N] vector");
  if (!lateral.has_value()) return at::Tensor();
  TORCH_CHECK(lateral->dim() == 2 && lateral->size(0) == n_all && lateral->size(1) == n_all &&
                  lateral->scalar_type() == x.scalar_type() && lateral->device() == x.device(),
              "neurodeploy_lif: lateral must be [N, N] with the dtype and device of x");
  return lateral->t().contiguous();  // column j of L becomes contiguous row j
}

bool any_refractory(const at::Tensor& n_ref) {
  return n_ref.numel() > 0 && n_ref.max().item<int32_t>() > 0;
}

// What forward keeps for backward (both undefined-free; empty when unused): `state` holds the
// checkpoints [S - 1, 3, B, N] without feedback, v_pre [T, B, N] with it; `refractory` the
// flags [T, B, N] (uint8) with feedback when some neuron has a refractory period.
template <typename T>
ForwardArgs<T> forward_args(const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta,
                            const at::Tensor& v_leak, const at::Tensor& v_th,
                            const at::Tensor& v_reset, const at::Tensor& n_ref,
                            const at::Tensor& lateral_t, const at::Tensor& z,
                            const at::Tensor& v, const at::Tensor& state,
                            const at::Tensor& refractory, bool any_ref) {
  const bool feedback = lateral_t.defined(), has_state = state.numel() > 0;
  return {x.size(0),
          x.size(1),
          x.size(2),
          x.data_ptr<T>(),
          alpha.data_ptr<T>(),
          beta.data_ptr<T>(),
          v_leak.data_ptr<T>(),
          v_th.data_ptr<T>(),
          v_reset.data_ptr<T>(),
          n_ref.data_ptr<int32_t>(),
          feedback ? lateral_t.data_ptr<T>() : nullptr,
          any_ref,
          z.data_ptr<T>(),
          v.defined() ? v.data_ptr<T>() : nullptr,
          has_state && !feedback ? state.data_ptr<T>() : nullptr,
          has_state && feedback ? state.data_ptr<T>() : nullptr,
          refractory.numel() ? refractory.data_ptr<uint8_t>() : nullptr};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lif_forward(
    const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta, const at::Tensor& v_leak,
    const at::Tensor& v_th, const at::Tensor& v_reset, const at::Tensor& n_ref,
    const c10::optional<at::Tensor>& lateral, bool need_trace) {
  const at::Tensor lateral_t = check_inputs(x, alpha, beta, v_leak, v_th, v_reset, n_ref, lateral);
  const int64_t steps = x.size(0), batch = x.size(1), n_all = x.size(2);
  const bool feedback = lateral_t.defined(), any_ref = any_refractory(n_ref);
  at::Tensor z = empty_output(x.sizes(), x.options()), v = empty_output(x.sizes(), x.options());
  at::Tensor state, refractory;
  if (need_trace && feedback) {
    state = empty_output(x.sizes(), x.options());
    refractory = empty_output(any_ref ? x.sizes() : at::IntArrayRef{0},
                              x.options().dtype(at::kByte));
  } else {
    const int64_t n_ckpt = need_trace ? std::max<int64_t>(num_segments(steps) - 1, 0) : 0;
    state = empty_output({n_ckpt, 3, batch, n_all}, x.options());
    refractory = at::empty({0}, x.options().dtype(at::kByte));
  }
  if (x.numel() == 0) return {z, v, state, refractory};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neurodeploy_lif_forward", [&] {
    const ForwardArgs<scalar_t> a = forward_args<scalar_t>(
        x, alpha, beta, v_leak, v_th, v_reset, n_ref, lateral_t, z, v, state, refractory, any_ref);
#ifdef NEURODEPLOY_WITH_CUDA
    if (x.is_cuda()) {
      const c10::cuda::CUDAGuard guard(x.device());
      lif_forward_cuda(a, c10::cuda::getCurrentCUDAStream().stream());
      return;
    }
#endif
    forward_cpu(a);
  });
  return {z, v, state, refractory};
}

std::tuple<at::Tensor, at::Tensor> lif_backward(
    const c10::optional<at::Tensor>& grad_z, const c10::optional<at::Tensor>& grad_v,
    const at::Tensor& x, const at::Tensor& z, const at::Tensor& state,
    const at::Tensor& refractory, const at::Tensor& alpha, const at::Tensor& beta,
    const at::Tensor& v_leak, const at::Tensor& v_th, const at::Tensor& v_reset,
    const at::Tensor& n_ref, const c10::optional<at::Tensor>& lateral, double steepness,
    bool detach_reset, bool need_grad_lateral) {
  const at::Tensor lateral_t = check_inputs(x, alpha, beta, v_leak, v_th, v_reset, n_ref, lateral);
  check_sequence(z, x, "z");
  if (grad_z.has_value()) check_sequence(*grad_z, x, "grad_z");
  if (grad_v.has_value()) check_sequence(*grad_v, x, "grad_v");
  const int64_t steps = x.size(0), batch = x.size(1), n_all = x.size(2);
  const bool has_lateral = lateral.has_value(), any_ref = any_refractory(n_ref);
  if (has_lateral) {
    check_sequence(state, x, "v_pre (state, with feedback)");
    TORCH_CHECK(!any_ref || (refractory.sizes() == x.sizes() && refractory.is_contiguous()),
                "neurodeploy_lif: refractory flags missing (was state made by lif_forward?)");
  } else {
    TORCH_CHECK(state.is_contiguous() && state.dim() == 4 &&
                    state.size(0) == std::max<int64_t>(num_segments(steps) - 1, 0) &&
                    state.size(1) == 3 && state.size(2) == batch && state.size(3) == n_all,
                "neurodeploy_lif: checkpoints do not match x (was state made by lif_forward?)");
  }
  const at::Tensor lat = has_lateral ? lateral->contiguous() : at::Tensor();
  at::Tensor grad_x = empty_output(x.sizes(), x.options());
  at::Tensor grad_lateral;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neurodeploy_lif_backward", [&] {
    const BackwardArgs<scalar_t> a{
        forward_args<scalar_t>(x, alpha, beta, v_leak, v_th, v_reset, n_ref, lateral_t, z,
                               at::Tensor(), state, any_ref ? refractory : at::Tensor(), any_ref),
        grad_z.has_value() ? grad_z->data_ptr<scalar_t>() : nullptr,
        grad_v.has_value() ? grad_v->data_ptr<scalar_t>() : nullptr,
        has_lateral ? lat.data_ptr<scalar_t>() : nullptr,
        static_cast<scalar_t>(steepness),
        detach_reset,
        grad_x.data_ptr<scalar_t>()};
    if (x.is_cuda()) {
#ifdef NEURODEPLOY_WITH_CUDA
      const c10::cuda::CUDAGuard guard(x.device());
      if (x.numel()) lif_backward_cuda(a, c10::cuda::getCurrentCUDAStream().stream());
      if (has_lateral && need_grad_lateral) {
        // On the GPU one GEMM over all steps beats scattered atomics: sum_k gI_k^T z_{k-1}.
        const int64_t m = std::max<int64_t>(steps - 1, 0);
        grad_lateral = at::mm(grad_x.narrow(0, 1, m).reshape({-1, n_all}).t(),
                              z.narrow(0, 0, m).reshape({-1, n_all}));
      }
      return;
#endif
    }
    if (x.numel()) backward_cpu(a, grad_x, lat);
    if (has_lateral && need_grad_lateral) {
      at::Tensor g_lt = at::zeros({n_all, n_all}, x.options());
      if (x.numel()) lateral_grad_cpu(a, g_lt.data_ptr<scalar_t>());
      grad_lateral = g_lt.t().contiguous();
    }
  });
  if (!grad_lateral.defined()) grad_lateral = at::empty({0}, x.options());
  return {grad_x, grad_lateral};
}

}  // namespace
}  // namespace neurodeploy

TORCH_LIBRARY(neurodeploy_lif, m) {
  m.def(
      "lif_forward(Tensor x, Tensor alpha, Tensor beta, Tensor v_leak, Tensor v_th, "
      "Tensor v_reset, Tensor n_ref, Tensor? lateral, bool need_trace) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "lif_backward(Tensor? grad_z, Tensor? grad_v, Tensor x, Tensor z, Tensor state, "
      "Tensor refractory, Tensor alpha, Tensor beta, Tensor v_leak, Tensor v_th, "
      "Tensor v_reset, Tensor n_ref, "
      "Tensor? lateral, float steepness, bool detach_reset, bool need_grad_lateral) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(neurodeploy_lif, CPU, m) {
  m.impl("lif_forward", &neurodeploy::lif_forward);
  m.impl("lif_backward", &neurodeploy::lif_backward);
}

#ifdef NEURODEPLOY_WITH_CUDA
TORCH_LIBRARY_IMPL(neurodeploy_lif, CUDA, m) {
  m.impl("lif_forward", &neurodeploy::lif_forward);
  m.impl("lif_backward", &neurodeploy::lif_backward);
}
#endif
