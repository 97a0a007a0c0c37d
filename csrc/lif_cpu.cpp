// CPU launcher of the fused LIF time loop (OpenMP), and the PyTorch operators
// torch.ops.neurodeploy_lif.{lif_forward, lif_backward} for CPU (and CUDA when built with it).
//
// Without feedback every neuron is independent: one OpenMP task is a chunk of neurons of one
// batch row, and the time loop runs inside it with the state in a stack array, so each step
// touches a contiguous slice of x/z/v per chunk and nothing is allocated per step. With feedback
// the neurons of a row couple through L z_{k-1}, so a task is a whole row; the feedback is
// event-driven: only the columns of L of the neurons that spiked at k-1 are added (L is stored
// transposed so that a column is contiguous). Its backward cannot be event-driven (the surrogate
// is dense), so it is one GEMM per step, gI_k L, from the BLAS that PyTorch ships.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <omp.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "lif_core.h"

#ifdef NEURODEPLOY_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace neurodeploy {
namespace {

// Neurons per task: 128 floats = 512 contiguous bytes per stream and step (8 cache lines), small
// enough that the chunk's state stays in L1 and B*N/128 tasks balance over the threads.
constexpr int64_t kChunk = 128;

int threads() { return std::max(1, at::get_num_threads()); }

template <typename T>
ND_INLINE NeuronCoeffs<T> coeffs_at(const T* alpha, const T* beta, const T* v_leak,
                                    const T* v_th, const T* v_reset, const int32_t* n_ref,
                                    int64_t n) {
  return {alpha[n], beta[n], v_leak ? v_leak[n] : T(0), v_th[n], v_reset[n],
          n_ref ? n_ref[n] : 0};
}

// ---- forward ---------------------------------------------------------------------------------

// All T steps of neurons [n0, n0+len) of row b, no feedback: state lives in stack arrays.
template <typename T>
void forward_chunk(const ForwardArgs<T>& a, int64_t b, int64_t n0, int64_t len) {
  T i_syn[kChunk], v[kChunk];
  int32_t ref[kChunk];
  for (int64_t j = 0; j < len; ++j) {
    i_syn[j] = T(0);
    v[j] = a.v_leak[n0 + j];
    ref[j] = 0;
  }
  const bool trace = a.v_pre != nullptr, keep_ref = a.refractory != nullptr;
  for (int64_t t = 0; t < a.steps; ++t) {
    const int64_t off = (t * a.batch + b) * a.neurons + n0;
    const T* __restrict__ x = a.x + off;
    T* __restrict__ z = a.z + off;
    T* __restrict__ vo = a.v + off;
    T* __restrict__ vp = trace ? a.v_pre + off : nullptr;
    uint8_t* __restrict__ rf = keep_ref ? a.refractory + off : nullptr;
    for (int64_t j = 0; j < len; ++j) {
      const NeuronCoeffs<T> c = coeffs_at(a.alpha, a.beta, a.v_leak, a.v_th, a.v_reset, a.n_ref,
                                          n0 + j);
      NeuronState<T> s{i_syn[j], v[j], ref[j]};
      T p;
      bool r;
      z[j] = lif_forward_step(x[j], s, c, p, r);
      vo[j] = s.v;
      i_syn[j] = s.i_syn;
      v[j] = s.v;
      ref[j] = s.refractory_steps;
      if (trace) vp[j] = p;
      if (keep_ref) rf[j] = r;
    }
  }
}

// All T steps of row b with event-driven feedback; the work arrays are the calling thread's.
template <typename T>
void forward_row_lateral(const ForwardArgs<T>& a, int64_t b, T* __restrict__ i_syn,
                         T* __restrict__ v, int32_t* __restrict__ ref, T* __restrict__ lat,
                         int32_t* __restrict__ spiked) {
  const int64_t n_all = a.neurons;
  for (int64_t n = 0; n < n_all; ++n) {
    i_syn[n] = T(0);
    v[n] = a.v_leak[n];
    ref[n] = 0;
  }
  int64_t n_spiked = 0;
  const bool trace = a.v_pre != nullptr, keep_ref = a.refractory != nullptr;
  for (int64_t t = 0; t < a.steps; ++t) {
    // Feedback of step t: sum of the columns L[:, j] of the neurons j that spiked at t-1,
    // in ascending j (the CUDA launcher adds them in the same order).
    std::fill(lat, lat + n_all, T(0));
    for (int64_t s = 0; s < n_spiked; ++s) {
      const T* __restrict__ col = a.lateral_t + static_cast<int64_t>(spiked[s]) * n_all;
      for (int64_t n = 0; n < n_all; ++n) lat[n] += col[n];
    }
    const int64_t off = (t * a.batch + b) * n_all;
    const T* __restrict__ x = a.x + off;
    T* __restrict__ z = a.z + off;
    T* __restrict__ vo = a.v + off;
    T* __restrict__ vp = trace ? a.v_pre + off : nullptr;
    uint8_t* __restrict__ rf = keep_ref ? a.refractory + off : nullptr;
    for (int64_t n = 0; n < n_all; ++n) {
      const NeuronCoeffs<T> c = coeffs_at(a.alpha, a.beta, a.v_leak, a.v_th, a.v_reset, a.n_ref, n);
      NeuronState<T> s{i_syn[n], v[n], ref[n]};
      T p;
      bool r;
      z[n] = lif_forward_step(x[n] + lat[n], s, c, p, r);
      vo[n] = s.v;
      i_syn[n] = s.i_syn;
      v[n] = s.v;
      ref[n] = s.refractory_steps;
      if (trace) vp[n] = p;
      if (keep_ref) rf[n] = r;
    }
    // Compacted separately so that the step loop above stays vectorisable.
    n_spiked = 0;
    for (int64_t n = 0; n < n_all; ++n)
      if (z[n] > T(0)) spiked[n_spiked++] = static_cast<int32_t>(n);
  }
}

template <typename T>
void forward_cpu(const ForwardArgs<T>& a) {
  const int64_t n_all = a.neurons;
  if (a.lateral_t == nullptr) {
    const int64_t chunks = (n_all + kChunk - 1) / kChunk;
    const int64_t tasks = a.batch * chunks;
#pragma omp parallel for schedule(static) num_threads(threads())
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / chunks, n0 = (task % chunks) * kChunk;
      forward_chunk(a, b, n0, std::min(kChunk, n_all - n0));
    }
    return;
  }
#pragma omp parallel num_threads(threads())
  {
    // One allocation per thread and call; the time loop allocates nothing.
    std::vector<T> i_syn(n_all), v(n_all), lat(n_all);
    std::vector<int32_t> ref(n_all), spiked(n_all);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < a.batch; ++b)
      forward_row_lateral(a, b, i_syn.data(), v.data(), ref.data(), lat.data(), spiked.data());
  }
}

// ---- backward --------------------------------------------------------------------------------

// Reverse steps t_hi-1 ... t_lo of neurons [n0, n0+len) of row b. `adj_i`/`adj_v` hold the
// adjoints carried between steps; `grad_z_lateral` (or null) is (gI_{t+1} L)[b, n0:] for the
// single step t_lo when feedback is on.
template <typename T>
void backward_steps(const BackwardArgs<T>& a, int64_t b, int64_t n0, int64_t len, int64_t t_hi,
                    int64_t t_lo, T* __restrict__ adj_i, T* __restrict__ adj_v,
                    const T* __restrict__ grad_z_lateral) {
  for (int64_t t = t_hi - 1; t >= t_lo; --t) {
    const int64_t off = (t * a.batch + b) * a.neurons + n0;
    const T* __restrict__ vp = a.v_pre + off;
    T* __restrict__ gx = a.grad_x + off;
    for (int64_t j = 0; j < len; ++j) {
      const NeuronCoeffs<T> c =
          coeffs_at<T>(a.alpha, a.beta, nullptr, a.v_th, a.v_reset, nullptr, n0 + j);
      T gz = a.grad_z ? a.grad_z[off + j] : T(0);
      if (grad_z_lateral) gz += grad_z_lateral[j];
      const T gv = a.grad_v ? a.grad_v[off + j] : T(0);
      const bool r = a.refractory ? a.refractory[off + j] != 0 : false;
      NeuronAdjoint<T> ad{adj_i[j], adj_v[j]};
      gx[j] = lif_backward_step(gz, gv, vp[j], r, c, a.steepness, a.detach_reset, ad);
      adj_i[j] = ad.i_syn;
      adj_v[j] = ad.v;
    }
  }
}

// dL/dL[n, j] = sum_{k>=1, b} gI_k[b, n] z_{k-1}[b, j], accumulated event by event into the
// transposed matrix g_lt (row j gets gI_k[b, :] once per spike of j); each thread owns a range
// of rows j, so no two threads write the same memory.
template <typename T>
void lateral_grad_cpu(const BackwardArgs<T>& a, T* g_lt) {
  const int64_t n_all = a.neurons;
#pragma omp parallel num_threads(threads())
  {
    const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t j0 = n_all * tid / nth, j1 = n_all * (tid + 1) / nth;
    for (int64_t k = 1; k < a.steps; ++k) {
      for (int64_t b = 0; b < a.batch; ++b) {
        const T* vp = a.v_pre + ((k - 1) * a.batch + b) * n_all;
        const T* __restrict__ g = a.grad_x + (k * a.batch + b) * n_all;
        for (int64_t j = j0; j < j1; ++j) {
          if (spike_of(vp[j], a.v_th[j]) == T(0)) continue;
          T* __restrict__ row = g_lt + j * n_all;
          for (int64_t n = 0; n < n_all; ++n) row[n] += g[n];
        }
      }
    }
  }
}

template <typename T>
void backward_cpu(const BackwardArgs<T>& a, const at::Tensor& grad_x, const at::Tensor& lateral) {
  const int64_t n_all = a.neurons, chunks = (n_all + kChunk - 1) / kChunk;
  const int64_t tasks = a.batch * chunks;
  if (a.lateral == nullptr) {
#pragma omp parallel for schedule(static) num_threads(threads())
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / chunks, n0 = (task % chunks) * kChunk;
      T adj_i[kChunk] = {}, adj_v[kChunk] = {};
      backward_steps(a, b, n0, std::min(kChunk, n_all - n0), a.steps, 0, adj_i, adj_v,
                     static_cast<const T*>(nullptr));
    }
    return;
  }
  // Feedback couples the neurons of a row in every step: time loop outside, one parallel
  // element-wise pass and one GEMM per step; the buffers are allocated once per call.
  const auto opts = grad_x.options();
  at::Tensor adj_i = at::zeros({a.batch, n_all}, opts), adj_v = at::zeros({a.batch, n_all}, opts);
  at::Tensor gz_lat = at::zeros({a.batch, n_all}, opts);
  T* ai = adj_i.data_ptr<T>();
  T* av = adj_v.data_ptr<T>();
  const T* gl = gz_lat.data_ptr<T>();
  for (int64_t k = a.steps - 1; k >= 0; --k) {
#pragma omp parallel for schedule(static) num_threads(threads())
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / chunks, n0 = (task % chunks) * kChunk, o = b * n_all + n0;
      backward_steps(a, b, n0, std::min(kChunk, n_all - n0), k + 1, k, ai + o, av + o, gl + o);
    }
    if (k > 0) at::mm_out(gz_lat, grad_x[k], lateral);  // (gI_k L)[b, j] for step k-1
  }
}

// ---- operators -------------------------------------------------------------------------------

void check_params(const at::Tensor& x, std::initializer_list<const at::Tensor*> params) {
  for (const at::Tensor* p : params) {
    TORCH_CHECK(p->dim() == 1 && p->size(0) == x.size(2) && p->is_contiguous(),
                "neurodeploy_lif: parameters must be contiguous [N] vectors");
    TORCH_CHECK(p->scalar_type() == x.scalar_type() && p->device() == x.device(),
                "neurodeploy_lif: parameters must have the dtype and device of x");
  }
}

void check_sequence(const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.sizes() == like.sizes() && t.is_contiguous() && t.device() == like.device(),
              "neurodeploy_lif: ", what, " must be contiguous [T, B, N] on the device of v_pre");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lif_forward(
    const at::Tensor& x, const at::Tensor& alpha, const at::Tensor& beta, const at::Tensor& v_leak,
    const at::Tensor& v_th, const at::Tensor& v_reset, const at::Tensor& n_ref,
    const c10::optional<at::Tensor>& lateral, bool need_trace) {
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "neurodeploy_lif: x must be contiguous [T, B, N]");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "neurodeploy_lif: x must be float32 or float64");
  check_params(x, {&alpha, &beta, &v_leak, &v_th, &v_reset});
  TORCH_CHECK(n_ref.dim() == 1 && n_ref.size(0) == x.size(2) && n_ref.is_contiguous() &&
                  n_ref.scalar_type() == at::kInt && n_ref.device() == x.device(),
              "neurodeploy_lif: n_ref must be a contiguous int32 [N] vector");
  const int64_t n_all = x.size(2);
  at::Tensor lateral_t;
  if (lateral.has_value()) {
    TORCH_CHECK(lateral->dim() == 2 && lateral->size(0) == n_all && lateral->size(1) == n_all &&
                    lateral->scalar_type() == x.scalar_type() && lateral->device() == x.device(),
                "neurodeploy_lif: lateral must be [N, N] with the dtype and device of x");
    lateral_t = lateral->t().contiguous();  // column j of L becomes contiguous row j
  }
  at::Tensor z = at::empty_like(x), v = at::empty_like(x);
  at::Tensor v_pre = need_trace ? at::empty_like(x) : at::empty({0}, x.options());
  const bool any_ref = n_all > 0 && n_ref.max().item<int32_t>() > 0;
  at::Tensor refr = at::empty(need_trace && any_ref ? x.sizes() : at::IntArrayRef{0},
                              x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neurodeploy_lif_forward", [&] {
    ForwardArgs<scalar_t> a{x.size(0), x.size(1), n_all, x.data_ptr<scalar_t>(),
                            alpha.data_ptr<scalar_t>(), beta.data_ptr<scalar_t>(),
                            v_leak.data_ptr<scalar_t>(), v_th.data_ptr<scalar_t>(),
                            v_reset.data_ptr<scalar_t>(), n_ref.data_ptr<int32_t>(),
                            lateral_t.defined() ? lateral_t.data_ptr<scalar_t>() : nullptr,
                            z.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                            need_trace ? v_pre.data_ptr<scalar_t>() : nullptr,
                            refr.numel() ? refr.data_ptr<uint8_t>() : nullptr};
    if (x.numel() == 0) return;
#ifdef NEURODEPLOY_WITH_CUDA
    if (x.is_cuda()) {
      const c10::cuda::CUDAGuard guard(x.device());
      lif_forward_cuda(a, c10::cuda::getCurrentCUDAStream().stream());
      return;
    }
#endif
    forward_cpu(a);
  });
  return {z, v, v_pre, refr};
}

std::tuple<at::Tensor, at::Tensor> lif_backward(
    const c10::optional<at::Tensor>& grad_z, const c10::optional<at::Tensor>& grad_v,
    const at::Tensor& v_pre, const at::Tensor& refractory, const at::Tensor& alpha,
    const at::Tensor& beta, const at::Tensor& v_th, const at::Tensor& v_reset,
    const c10::optional<at::Tensor>& lateral, double steepness, bool detach_reset,
    bool need_grad_lateral) {
  TORCH_CHECK(v_pre.dim() == 3 && v_pre.is_contiguous(), "neurodeploy_lif: bad v_pre");
  check_params(v_pre, {&alpha, &beta, &v_th, &v_reset});
  if (grad_z.has_value()) check_sequence(*grad_z, v_pre, "grad_z");
  if (grad_v.has_value()) check_sequence(*grad_v, v_pre, "grad_v");
  if (refractory.numel()) check_sequence(refractory, v_pre, "refractory");
  const int64_t steps = v_pre.size(0), batch = v_pre.size(1), n_all = v_pre.size(2);
  const bool has_lateral = lateral.has_value();
  if (has_lateral)
    TORCH_CHECK(lateral->dim() == 2 && lateral->size(0) == n_all && lateral->size(1) == n_all &&
                    lateral->is_contiguous() && lateral->scalar_type() == v_pre.scalar_type(),
                "neurodeploy_lif: lateral must be a contiguous [N, N] matrix");
  at::Tensor grad_x = at::empty_like(v_pre);
  at::Tensor grad_lateral;
  AT_DISPATCH_FLOATING_TYPES(v_pre.scalar_type(), "neurodeploy_lif_backward", [&] {
    BackwardArgs<scalar_t> a{steps, batch, n_all,
                             grad_z.has_value() ? grad_z->data_ptr<scalar_t>() : nullptr,
                             grad_v.has_value() ? grad_v->data_ptr<scalar_t>() : nullptr,
                             v_pre.data_ptr<scalar_t>(),
                             refractory.numel() ? refractory.data_ptr<uint8_t>() : nullptr,
                             alpha.data_ptr<scalar_t>(), beta.data_ptr<scalar_t>(),
                             v_th.data_ptr<scalar_t>(), v_reset.data_ptr<scalar_t>(),
                             has_lateral ? lateral->data_ptr<scalar_t>() : nullptr,
                             static_cast<scalar_t>(steepness), detach_reset,
                             grad_x.data_ptr<scalar_t>()};
    if (v_pre.is_cuda()) {
#ifdef NEURODEPLOY_WITH_CUDA
      const c10::cuda::CUDAGuard guard(v_pre.device());
      if (v_pre.numel()) lif_backward_cuda(a, c10::cuda::getCurrentCUDAStream().stream());
      if (has_lateral && need_grad_lateral) {
        // On the GPU one GEMM over all steps beats scattered atomics: sum_k gI_k^T z_{k-1}.
        const at::Tensor z_prev = v_pre.narrow(0, 0, std::max<int64_t>(steps - 1, 0)).gt(v_th);
        grad_lateral = at::mm(grad_x.narrow(0, 1, std::max<int64_t>(steps - 1, 0))
                                  .reshape({-1, n_all}).t(),
                              z_prev.to(v_pre.scalar_type()).reshape({-1, n_all}));
      }
      return;
#endif
    }
    if (v_pre.numel()) backward_cpu(a, grad_x, has_lateral ? *lateral : at::Tensor());
    if (has_lateral && need_grad_lateral) {
      at::Tensor g_lt = at::zeros({n_all, n_all}, v_pre.options());
      if (v_pre.numel()) lateral_grad_cpu(a, g_lt.data_ptr<scalar_t>());
      grad_lateral = g_lt.t().contiguous();
    }
  });
  if (!grad_lateral.defined()) grad_lateral = at::empty({0}, v_pre.options());
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
      "lif_backward(Tensor? grad_z, Tensor? grad_v, Tensor v_pre, Tensor refractory, "
      "Tensor alpha, Tensor beta, Tensor v_th, Tensor v_reset, Tensor? lateral, "
      "float steepness, bool detach_reset, bool need_grad_lateral) -> (Tensor, Tensor)");
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
