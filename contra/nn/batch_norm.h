#pragma once
/// Batch normalisation that can synchronise its statistics across the ranks of a distributed run
/// (SyncBatchNorm; Ioffe & Szegedy 2015 for BN, and the cross-device BN of SimCLR §2.1 / BYOL).
///
/// One module for (N, C) and (N, C, *) inputs, with the parameters and buffers of
/// torch::nn::BatchNorm1d/2d under the same names (weight, bias, running_mean, running_var,
/// num_batches_tracked), so checkpoints of either load into the other.
///
/// Unsynchronised (the default, or one process, or eval mode) it is ATen's batch_norm. Synchronised
/// in training mode with W > 1 ranks, the mean and variance are those of the global batch: two
/// all-reduces with autograd (Σx and the count, then Σ(x − μ)²), so gradients flow to every rank's
/// inputs and W ranks × B items normalise exactly like one process × W·B items. Running statistics
/// use the unbiased global variance, as torch.nn.SyncBatchNorm.
///
///   contra::nn::BatchNorm bn(64);                   // like torch::nn::BatchNorm2d(64)
///   contra::nn::set_sync_batch_norm(model, true);   // every contra BatchNorm inside `model`
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct BatchNormOptions {
  /* implicit */ BatchNormOptions(int64_t features) : features_(features) {}
  TORCH_ARG(int64_t, features);
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(double, momentum) = 0.1;
  TORCH_ARG(bool, affine) = true;
  TORCH_ARG(bool, track_running_stats) = true;
  /// Statistics over all ranks (dist::world()) in training mode.
  TORCH_ARG(bool, sync) = false;
};

class BatchNormImpl : public torch::nn::Cloneable<BatchNormImpl> {
 public:
  explicit BatchNormImpl(BatchNormOptions options);
  void reset() override;
  /// x (N, C) or (N, C, *) → the same shape.
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(BatchNorm);

/// Turns synchronisation on or off for every contra BatchNorm in `module` (recursively). Returns
/// how many it set. torch::nn::BatchNorm* modules are not affected.
int64_t set_sync_batch_norm(torch::nn::Module& module, bool sync);

}  // namespace contra::nn
