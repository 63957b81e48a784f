#pragma once
/// The patch encoder of CPC v2 on images: SmallCnn's layout with a choice of normalisation.
#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct PatchEncoderOptions {
  /// Input channels (1 grey, 3 RGB).
  TORCH_ARG(int64_t, in_channels) = 1;
  /// Channels of the first block; the blocks have width, 2·width and 4·width channels.
  TORCH_ARG(int64_t, width) = 32;
  /// "layer" (CPC v2: layer norm over each patch's channels and positions, GroupNorm with one
  /// group), "batch" (contra::nn::BatchNorm, as SmallCnn; synchronisable) or "none".
  TORCH_ARG(std::string, norm) = "layer";
};

/// Patch encoder (Hénaff et al. 2019, arXiv:1905.09272): SmallCnn's three blocks (3×3 conv, no
/// bias → norm → ReLU; 2×2 max-pool after the first two), then a mean over positions.
///
/// CPC v2 replaces batch norm by layer norm in its encoder: batch statistics couple the patches of
/// a batch, a path around the context network's receptive field that a large model can exploit,
/// and it hurt downstream accuracy in the paper. With norm "layer" (GroupNorm(1, C): mean and
/// variance over one patch's C×H×W activations, a per-channel affine, as TF's layer_norm on conv
/// maps) every patch is encoded on its own, in training as in evaluation.
///
/// Input (N, in_channels, P, P) float, P >= 4; output (N, 4·width). Parameters as SmallCnn's.
/// Throws ConfigError for non-positive sizes or an unknown norm; c10::Error for a wrong input.
///
///   PatchEncoder enc(PatchEncoderOptions().width(32));
///   auto z = enc->forward(torch::randn({16 * 64, 1, 10, 10}));   // (1024, 128)
class PatchEncoderImpl : public torch::nn::Cloneable<PatchEncoderImpl> {
 public:
  explicit PatchEncoderImpl(PatchEncoderOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  /// Feature dimension D = 4·width.
  int64_t output_size() const { return 4 * options.width(); }

  PatchEncoderOptions options;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::AnyModule norm1_, norm2_, norm3_;  // empty for norm "none"
};
TORCH_MODULE(PatchEncoder);

}  // namespace contra::nn
