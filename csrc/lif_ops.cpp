// The PyTorch operators torch.ops.neurodeploy_lif.{lif_forward, lif_backward}: input checks, the
// outputs and saved state, and the dispatch to the CPU launcher (lif_cpu.cpp) or, when built with
// -DNEURODEPLOY_WITH_CUDA, the CUDA launcher (lif_cuda.cu); registered for CPU (and CUDA).
//
// What forward keeps for backward: without feedback a checkpoint of the state every kSegment
// steps (backward recomputes each segment from it), with feedback v_pre of every step and the
// refractory flags (lif_core.h). With feedback on the GPU the gradient of L is one GEMM here; on
// the CPU it is accumulated event by event by the launcher.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "lif_core.h"
#include "lif_cpu.h"
#include "output_pool.h"

#ifdef NEURODEPLOY_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace neurodeploy {
namespace {

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
    lif_forward_cpu(a);
  });
  return {z, v, state, refractory};
}

// The band of a surrogate that is exactly 0 for |u| >= band (its p1), or 0 for one that is not.
double surrogate_band(int64_t surrogate, double p1) {
  const auto kind = static_cast<SurrogateKind>(surrogate);
  return kind == SurrogateKind::kTriangle || kind == SurrogateKind::kSuperSpikeTruncated ? p1 : 0.0;
}

// Returns (grad_x, grad_lateral, active): `active` (int64, 0-dim) is the number of active
// (step, row, neuron) triples of the sparse backward (lif_core.h's sparse_active), -1 when not
// counted (dense backward; on the GPU without feedback, where v_pre is not stored).
std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_backward(
    const c10::optional<at::Tensor>& grad_z, const c10::optional<at::Tensor>& grad_v,
    const at::Tensor& x, const at::Tensor& z, const at::Tensor& state,
    const at::Tensor& refractory, const at::Tensor& alpha, const at::Tensor& beta,
    const at::Tensor& v_leak, const at::Tensor& v_th, const at::Tensor& v_reset,
    const at::Tensor& n_ref, const c10::optional<at::Tensor>& lateral, int64_t surrogate,
    double surrogate_p0, double surrogate_p1, bool detach_reset, bool need_grad_lateral,
    bool sparse) {
  const at::Tensor lateral_t = check_inputs(x, alpha, beta, v_leak, v_th, v_reset, n_ref, lateral);
  TORCH_CHECK(surrogate >= 0 && surrogate < kSurrogateKinds,
              "neurodeploy_lif: surrogate must be a SurrogateKind code in 0..", kSurrogateKinds - 1,
              " (neurodeploy/core/surrogate.py), got ", surrogate);
  const double band = sparse ? surrogate_band(surrogate, surrogate_p1) : 0.0;
  TORCH_CHECK(!sparse || band > 0.0,
              "neurodeploy_lif: the sparse backward needs a surrogate that is 0 outside a band "
              "(triangle, superspike_truncated), got code ",
              surrogate);
  int64_t active = -1;
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
        {static_cast<SurrogateKind>(surrogate), static_cast<scalar_t>(surrogate_p0),
         static_cast<scalar_t>(surrogate_p1)},
        detach_reset,
        grad_x.data_ptr<scalar_t>(),
        static_cast<scalar_t>(band),
        &active};
    if (sparse) active = 0;  // the launcher adds nothing when x is empty
    if (x.is_cuda()) {
#ifdef NEURODEPLOY_WITH_CUDA
      const c10::cuda::CUDAGuard guard(x.device());
      if (x.numel()) lif_backward_cuda(a, c10::cuda::getCurrentCUDAStream().stream());
      // The kernel does not count (a device counter would cost a sync per call); with feedback
      // v_pre is stored, so count here. Without it, -1: not counted.
      if (sparse)
        active = has_lateral ? state.sub(v_th).abs_().lt(band).sum().item<int64_t>() : -1;
      if (has_lateral && need_grad_lateral) {
        // On the GPU one GEMM over all steps beats scattered atomics: sum_k gI_k^T z_{k-1}.
        const int64_t m = std::max<int64_t>(steps - 1, 0);
        grad_lateral = at::mm(grad_x.narrow(0, 1, m).reshape({-1, n_all}).t(),
                              z.narrow(0, 0, m).reshape({-1, n_all}));
      }
      return;
#endif
    }
    if (x.numel()) lif_backward_cpu(a, grad_x, lat);
    if (has_lateral && need_grad_lateral) {
      at::Tensor g_lt = at::zeros({n_all, n_all}, x.options());
      if (x.numel()) lif_lateral_grad_cpu(a, g_lt.data_ptr<scalar_t>());
      grad_lateral = g_lt.t().contiguous();
    }
  });
  if (!grad_lateral.defined()) grad_lateral = at::empty({0}, x.options());
  return {grad_x, grad_lateral, at::scalar_tensor(active, at::kLong)};
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
      "Tensor? lateral, int surrogate, float surrogate_p0, float surrogate_p1, bool detach_reset, "
      "bool need_grad_lateral, bool sparse) "
      "-> (Tensor, Tensor, Tensor)");
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
