#pragma once
/// MLP projection head g(·) of SimCLR (Chen et al. 2020, arXiv:2002.05709), MoCo v2 (Chen et al.
/// 2020, arXiv:2003.04297) and SimCLR v2 (Chen et al. 2020, arXiv:2006.10029).
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct ProjectionHeadOptions {
  ProjectionHeadOptions(int64_t in, int64_t hidden, int64_t out)
      : in_(in), hidden_(hidden), out_(out) {}
  /// Input features (the encoder's output size).
  TORCH_ARG(int64_t, in);
  /// Width of the hidden layers.
  TORCH_ARG(int64_t, hidden);
  /// Output features z (SimCLR 128).
  TORCH_ARG(int64_t, out);
  /// Linear layers: 2 (SimCLR, MoCo v2), 3 (SimCLR v2); 1 is a plain linear map.
  TORCH_ARG(int64_t, layers) = 2;
  /// BatchNorm1d after each hidden Linear (before its ReLU).
  TORCH_ARG(bool, batch_norm) = true;
  /// A BatchNorm1d without affine parameters after the last Linear (Barlow Twins' and BYOL-style
  /// heads; standardises every output feature over the batch).
  TORCH_ARG(bool, last_batch_norm) = false;
};

/// MLP head: (Linear → BN → ReLU) × (layers − 1) → Linear [→ BN without affine].
///
/// z = W_L σ(BN(W_{L−1} … σ(BN(W_1 h)))). A Linear followed by a BatchNorm has no bias (the BN's
/// shift replaces it). Parameters for layers = 2, batch_norm: in·hidden + 2·hidden + hidden·out +
/// out (SimCLR's 512 → 512 → 128 head: 328,832).
///
/// Input (N, in) float; output (N, out). In training mode BatchNorm needs N ≥ 2.
/// Throws ConfigError for non-positive sizes or layers < 1.
///
///   ProjectionHead head(ProjectionHeadOptions(512, 2048, 128).layers(3));
///   auto z = head->forward(encoder->forward(x));   // (N, 128)
class ProjectionHeadImpl : public torch::nn::Cloneable<ProjectionHeadImpl> {
 public:
  explicit ProjectionHeadImpl(ProjectionHeadOptions options);
  ProjectionHeadImpl(int64_t in, int64_t hidden, int64_t out)
      : ProjectionHeadImpl(ProjectionHeadOptions(in, hidden, out)) {}
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);

  ProjectionHeadOptions options;

 private:
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(ProjectionHead);

}  // namespace contra::nn
