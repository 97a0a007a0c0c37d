// Entry points of the CPU launcher (lif_cpu.cpp), called by the operators (lif_ops.cpp). The
// argument structs ForwardArgs / BackwardArgs are lif_core.h's, shared with the CUDA launcher.
#pragma once

#include <ATen/core/Tensor.h>

#include "lif_core.h"

namespace neurodeploy {

// Forward over all steps: z and v, and what backward needs when a.checkpoint or a.v_pre is set.
void lif_forward_cpu(const ForwardArgs<float>& a);
void lif_forward_cpu(const ForwardArgs<double>& a);

// Backward: writes a.grad_x. `grad_x` is the tensor behind a.grad_x and `lateral` is L [N, N]
// contiguous (undefined without feedback): with feedback each step is a GEMM on them.
void lif_backward_cpu(const BackwardArgs<float>& a, const at::Tensor& grad_x,
                      const at::Tensor& lateral);
void lif_backward_cpu(const BackwardArgs<double>& a, const at::Tensor& grad_x,
                      const at::Tensor& lateral);

// Gradient of L, transposed: adds sum_{k>=1, b} gI_k[b, :] z_{k-1}[b, j] to row j of g_lt
// [N, N] (zeroed by the caller); reads a.grad_x, so it runs after lif_backward_cpu.
void lif_lateral_grad_cpu(const BackwardArgs<float>& a, float* g_lt);
void lif_lateral_grad_cpu(const BackwardArgs<double>& a, double* g_lt);

}  // namespace neurodeploy
