#pragma once
/// relu(batch_norm(x)) as one operation (Ioffe & Szegedy 2015, arXiv:1502.03167), for the conv
/// stacks whose every layer is conv → BatchNorm → ReLU (CPC's encoder).
#include <torch/types.h>

namespace contra::nn::functional {

/// y = max(0, γ (x − μ) / √(σ² + ε) + β) with, in training mode, μ and σ² (biased) the batch
/// statistics of each channel over (N, L), and the running statistics updated in place:
/// running ← (1 − m) running + m · stat, with the unbiased variance (torch.nn.BatchNorm1d's rule);
/// in eval mode μ and σ² are the running statistics.
///
/// x (N, C, L) or (N, C); weight, bias (C) or undefined (no affine); running_mean, running_var (C)
/// or undefined (no running statistics; then training mode is required). Returns y, shaped as x.
/// Differentiable in x, weight and bias. CPU float32/float64 in training mode: fused kernels, two
/// passes over x forward (statistics; normalise + ReLU) and two backward (the reductions; dx), the
/// ReLU mask recomputed from x rather than stored, channels in parallel (no result depends on the
/// thread count). Otherwise it is ATen's batch_norm followed by relu. Throws c10::Error on
/// mismatched shapes.
///
///   auto y = batch_norm_relu(conv(x), bn->weight, bn->bias, bn->running_mean, bn->running_var,
///                            bn->is_training(), 0.1, 1e-5);
///
/// input_bias (C), optional: a per-channel bias the caller left out of x (the bias of the
/// convolution before, which batch statistics cancel exactly: training-mode outputs and gradients
/// do not depend on it). The running mean is updated with the mean of x + input_bias, so eval mode,
/// which uses the running statistics, sees the layer as if the bias had been added; the bias gets
/// no gradient (it has none).
torch::Tensor batch_norm_relu(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, const torch::Tensor& running_mean,
                              const torch::Tensor& running_var, bool training, double momentum,
                              double eps, const torch::Tensor& input_bias = {});

}  // namespace contra::nn::functional
