// One LIF neuron, one time step, forward and backward: the single source of the update order that
// lif_cpu.cpp and lif_cuda.cu both call (contract: neurodeploy/core/lif.py, module docstring).
//
// Forward of step k (alpha = exp(-dt/tau_syn), beta = exp(-dt/tau_mem)):
//   I_k      = alpha I_{k-1} + x_k                      (x_k already holds the lateral term L z_{k-1})
//   v_free_k = v_leak + beta (v_{k-1} - v_leak) + (1 - beta) I_k
//   p_k      = v_reset if refractory else v_free_k      ("v_pre": the membrane before reset)
//   z_k      = H(p_k - v_th)                            (surrogate dz/du = sigma'(u), u = p_k - v_th)
//   v_k      = p_k - z_k (p_k - v_reset)
//   r_k      = n_ref if z_k else max(r_{k-1} - 1, 0)
//
// Backward of step k, with the adjoints carried from step k+1
//   A_I = dL/dI_k through I_{k+1}       = alpha * gI_{k+1}
//   A_v = dL/dv_k through v_free_{k+1}  = beta * g_free_{k+1}
//   gv     = dL/dv_k      = grad_v_k + A_v
//   gz     = dL/dz_k      = grad_z_k + (L^T gI_{k+1})_n  [- gv (p_k - v_reset) unless detach_reset]
//   g_pre  = dL/dp_k      = gv (1 - z_k) + gz sigma'(p_k - v_th)    (surrogate_grad below)
//   g_free = dL/dv_free_k = 0 if refractory else g_pre
//   gI     = dL/dI_k      = A_I + (1 - beta) g_free      (= dL/dx_k)
//
// The arithmetic is written in the twin's operation order and built with -ffp-contract=off, so
// that float results match PyTorch's unfused operations bit for bit (spikes must be identical).
// v_th = +inf is legal (non-spiking readout inside a chip emulation): z = 0 and every surrogate
// is 0 at u = -inf (1/inf^2, h/(1 + inf), max(0, -inf), exp(-inf)), so no NaN arises as long as
// the upstream gradients are finite.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ND_INLINE __host__ __device__ __forceinline__
#else
#define ND_INLINE inline __attribute__((always_inline))
#endif

namespace neurodeploy {

// Per-neuron discrete-time coefficients (one neuron's entry of LIFCoefficients).
template <typename T>
struct NeuronCoeffs {
  T alpha, beta, v_leak, v_th, v_reset;
  int32_t n_ref;
};

template <typename T>
struct NeuronState {
  T i_syn;
  T v;
  int32_t refractory_steps;
};

// Adjoints carried backwards in time from step k+1 to step k (see the header comment).
template <typename T>
struct NeuronAdjoint {
  T i_syn;
  T v;
};

// ---- surrogate gradients ------------------------------------------------------------------------
// The registry of neurodeploy/core/surrogate.py (the twin; codes and parameters must match): each
// kind is sigma'(u) of u = v_pre - v_th with two numbers p0, p1 that Python computes once in double
// precision (Surrogate.kernel_args) and both sides use as given:
//   kSuperSpike  1 / (p0 |u| + 1)^2                 p0 = steepness             (Zenke & Ganguli 2018)
//   kArctan      p0 / (1 + (p1 u)^2)                p0 = alpha/2, p1 = pi alpha/2   (Fang et al. 2021)
//   kTriangle    p0 max(0, 1 - |u| / p1)            p0 = height, p1 = width    (Esser et al. 2016)
//   kSlayer      p0 exp(-|u| / p1)                  p0 = rho/(tau_rho theta), p1 = tau_rho theta
//                                                   (SLAYER, Shrestha & Orchard, NeurIPS 2018)
//   kSuperSpikeTruncated  |u| < p1 ? 1 / (p0 |u| + 1)^2 : 0     p0 = steepness, p1 = band
//                                                   (Perez-Nieves & Goodman, NeurIPS 2021)
// kTriangle and kSuperSpikeTruncated are exactly 0 for |u| >= p1 (their band): the sparse backward
// (lif_cpu.cpp) computes dL/dz only where |u| < band, since elsewhere it is multiplied by 0.
// surrogate_grad returns gz sigma'(u) in the twin's operation order (SuperSpike divides, as the
// twin always has; exp may differ from torch.exp in the last bit).
enum class SurrogateKind : int32_t {
  kSuperSpike = 0,
  kArctan = 1,
  kTriangle = 2,
  kSlayer = 3,
  kSuperSpikeTruncated = 4
};
constexpr int32_t kSurrogateKinds = 5;

template <typename T>
struct Surrogate {
  SurrogateKind kind;
  T p0, p1;
};

ND_INLINE float nd_exp(float x) { return expf(x); }
ND_INLINE double nd_exp(double x) { return exp(x); }

template <SurrogateKind K, typename T>
ND_INLINE T surrogate_grad(T gz, T u, T p0, T p1) {
  const T au = u < T(0) ? -u : u;
  if constexpr (K == SurrogateKind::kSuperSpike) {
    const T d = p0 * au + T(1);
    return gz / (d * d);
  } else if constexpr (K == SurrogateKind::kArctan) {
    const T q = p1 * u;
    return gz * (p0 / (T(1) + q * q));
  } else if constexpr (K == SurrogateKind::kTriangle) {
    const T t = T(1) - au / p1;
    return gz * (p0 * (t > T(0) ? t : T(0)));
  } else if constexpr (K == SurrogateKind::kSuperSpikeTruncated) {
    // A select, not gz * 0: outside the band the result is 0 even for a non-finite gz, as in
    // the sparse backward, which never computes gz there.
    const T d = p0 * au + T(1);
    return au < p1 ? gz / (d * d) : T(0);
  } else {
    return gz * (p0 * nd_exp(-au / p1));
  }
}

// The kind fixed at compile time (the CPU launcher instantiates its vectorised loops per kind, so
// no branch stays in them) ...
template <SurrogateKind K, typename T>
struct FixedSurrogate {
  T p0, p1;
  ND_INLINE T operator()(T gz, T u) const { return surrogate_grad<K>(gz, u, p0, p1); }
};

// ... or chosen at run time (the CUDA launcher: the kind is uniform across a warp).
template <typename T>
ND_INLINE T surrogate_grad(T gz, T u, const Surrogate<T>& s) {
  switch (s.kind) {
    case SurrogateKind::kArctan: return surrogate_grad<SurrogateKind::kArctan>(gz, u, s.p0, s.p1);
    case SurrogateKind::kTriangle: return surrogate_grad<SurrogateKind::kTriangle>(gz, u, s.p0, s.p1);
    case SurrogateKind::kSlayer: return surrogate_grad<SurrogateKind::kSlayer>(gz, u, s.p0, s.p1);
    case SurrogateKind::kSuperSpikeTruncated:
      return surrogate_grad<SurrogateKind::kSuperSpikeTruncated>(gz, u, s.p0, s.p1);
    default: return surrogate_grad<SurrogateKind::kSuperSpike>(gz, u, s.p0, s.p1);
  }
}

template <typename T>
struct RuntimeSurrogate {
  Surrogate<T> s;
  ND_INLINE T operator()(T gz, T u) const { return surrogate_grad(gz, u, s); }
};

// ---- one neuron, one step -----------------------------------------------------------------------

template <typename T>
ND_INLINE T spike_of(T v_pre, T v_th) {
  return (v_pre - v_th) > T(0) ? T(1) : T(0);
}

// Advances `s` by one step; returns z_k and the two facts backward needs (v_pre, refractory).
// kRefractory = false: the caller knows that no neuron has a refractory period (n_ref = 0, so
// the counter stays 0): the same result without the counter arithmetic.
template <typename T, bool kRefractory = true>
ND_INLINE T lif_forward_step(T x, NeuronState<T>& s, const NeuronCoeffs<T>& c, T& v_pre,
                             bool& refractory) {
  s.i_syn = c.alpha * s.i_syn + x;
  const T v_free = c.v_leak + c.beta * (s.v - c.v_leak) + (T(1) - c.beta) * s.i_syn;
  refractory = kRefractory && s.refractory_steps > 0;
  v_pre = refractory ? c.v_reset : v_free;
  const T z = spike_of(v_pre, c.v_th);
  s.v = v_pre - z * (v_pre - c.v_reset);
  if (kRefractory)
    s.refractory_steps =
        z > T(0) ? c.n_ref : (s.refractory_steps > 0 ? s.refractory_steps - 1 : 0);
  return z;
}

// One reverse step; `grad_z` must already include the lateral term (L^T gI_{k+1})_n.
// `reset_gate` is 1 when the reset passes gradient to z, 0 when it is detached (a factor, not a
// branch, so that the CPU loop vectorises; 0 * finite = 0 leaves grad_z exact).
// `surrogate(gz, u)` is gz sigma'(u): a FixedSurrogate or a RuntimeSurrogate (above).
// Returns gI_k = dL/dx_k and updates the carried adjoints in `a`.
template <typename T, typename SurrogateFn>
ND_INLINE T lif_backward_step(T grad_z, T grad_v, T v_pre, bool refractory,
                              const NeuronCoeffs<T>& c, const SurrogateFn& surrogate, T reset_gate,
                              NeuronAdjoint<T>& a) {
  const T z = spike_of(v_pre, c.v_th);
  const T gv = grad_v + a.v;
  // Reset v = p - z (p - v_reset) also feeds z's gradient unless the reset is detached.
  const T gz = grad_z - reset_gate * (gv * (v_pre - c.v_reset));
  const T g_pre = gv * (T(1) - z) + surrogate(gz, v_pre - c.v_th);
  // While refractory the membrane is clamped to the constant v_reset: no gradient to v_free.
  const T g_free = refractory ? T(0) : g_pre;
  const T g_i = a.i_syn + (T(1) - c.beta) * g_free;
  a.i_syn = c.alpha * g_i;
  a.v = c.beta * g_free;
  return g_i;
}

// Checkpoint interval (without feedback): forward keeps the state (i_syn, v, refractory steps)
// before every kSegment-th step; backward recomputes one segment at a time from its checkpoint
// into a buffer small enough for L1 (CPU: 32 steps x 128 neurons) or for the thread's local
// memory (CUDA), instead of forward writing and backward reading a full [T, B, N] trace. With
// feedback a recompute would redo the feedback too (it cost more than storing here), so forward
// stores v_pre and the refractory flags of every step instead.
constexpr int64_t kSegment = 32;

ND_INLINE int64_t num_segments(int64_t steps) { return (steps + kSegment - 1) / kSegment; }

// Offset of (checkpoint before step t0, quantity q in {0: i_syn, 1: v, 2: refractory steps},
// row b) in the checkpoint array; t0 is a positive multiple of kSegment.
ND_INLINE int64_t checkpoint_offset(int64_t t0, int q, int64_t b, int64_t batch,
                                    int64_t neurons) {
  return ((t0 / kSegment - 1) * 3 + q) * batch * neurons + b * neurons;
}

// State of neuron n of row b before step t0: at rest (no current, v = v_leak, not refractory)
// for t0 = 0, else the checkpoint. One neuron: the CUDA launcher calls it per thread, the CPU
// launcher loops over a chunk (GCC vectorises that loop as it did the CPU's former copy with the
// loop inside; forward+backward at (T, B, N) = (100, 64, 512) and (500, 32, 1024) did not change
// beyond noise).
template <typename T>
ND_INLINE NeuronState<T> load_checkpoint(const T* checkpoint, int64_t t0, int64_t b, int64_t n,
                                         int64_t batch, int64_t neurons, T v_leak) {
  if (t0 == 0) return {T(0), v_leak, 0};
  const T* c = checkpoint + n;
  return {c[checkpoint_offset(t0, 0, b, batch, neurons)],
          c[checkpoint_offset(t0, 1, b, batch, neurons)],
          static_cast<int32_t>(c[checkpoint_offset(t0, 2, b, batch, neurons)])};
}

// Stores the state of neuron n of row b before step t0 (a positive multiple of kSegment).
template <typename T>
ND_INLINE void store_checkpoint(T* checkpoint, int64_t t0, int64_t b, int64_t n, int64_t batch,
                                int64_t neurons, const NeuronState<T>& s) {
  T* c = checkpoint + n;
  c[checkpoint_offset(t0, 0, b, batch, neurons)] = s.i_syn;
  c[checkpoint_offset(t0, 1, b, batch, neurons)] = s.v;
  c[checkpoint_offset(t0, 2, b, batch, neurons)] =
      static_cast<T>(s.refractory_steps);  // a step count: exact in float up to 2^24
}

// Raw-pointer arguments shared by both launchers (no PyTorch types, so nvcc needs no torch
// headers). Layout: time-major [T, B, N], contiguous; parameters [N]; lateral_t [N, N] is L
// transposed (row j = column j of L: the weights from source neuron j), or null.
template <typename T>
struct ForwardArgs {
  int64_t steps, batch, neurons;
  const T* x;
  const T *alpha, *beta, *v_leak, *v_th, *v_reset;
  const int32_t* n_ref;
  const T* lateral_t;
  bool any_refractory;  // some n_ref > 0 (if not, the CPU launcher compiles the counter out)
  T* z;
  T* v;
  // Training without feedback: [num_segments(T) - 1, 3, B, N], i_syn, v and refractory steps
  // (as T) before the steps kSegment, 2 kSegment, ... (see checkpoint_offset); else null.
  T* checkpoint;
  // Training with feedback: v_pre [T, B, N], and the refractory flags [T, B, N] when some
  // neuron has a refractory period; else null.
  T* v_pre;
  uint8_t* refractory;
};

template <typename T>
struct BackwardArgs {
  ForwardArgs<T> f;  // the forward's inputs, spikes z and saved state (read only)
  const T* grad_z;   // null: zero
  const T* grad_v;   // null: zero
  const T* lateral;  // L itself [N, N] (row = target), or null
  Surrogate<T> surrogate;
  bool detach_reset;
  T* grad_x;
  // Sparse backward (Perez-Nieves & Goodman 2021) when sparse_band > 0: the surrogate must be 0
  // for |u| >= sparse_band (u = v_pre - v_th), so dL/dz_k is needed only for the active neurons,
  // |u| < sparse_band; with feedback only their entries of L^T gI_{k+1} are computed. 0: dense.
  T sparse_band;
  // Sparse backward only: receives the number of active (step, row, neuron) triples.
  int64_t* active_count;
};

// Whether neuron state with membrane before reset v_pre is active in the sparse backward.
template <typename T>
ND_INLINE bool sparse_active(T v_pre, T v_th, T band) {
  const T u = v_pre - v_th;
  return (u < T(0) ? -u : u) < band;
}

// CUDA launchers (lif_cuda.cu); `stream` is a cudaStream_t. They throw std::runtime_error on a
// launch error or an unsupported size. The lateral gradient is left to the caller (one GEMM).
void lif_forward_cuda(const ForwardArgs<float>& a, void* stream);
void lif_forward_cuda(const ForwardArgs<double>& a, void* stream);
void lif_backward_cuda(const BackwardArgs<float>& a, void* stream);
void lif_backward_cuda(const BackwardArgs<double>& a, void* stream);

}  // namespace neurodeploy
