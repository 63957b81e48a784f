#pragma once
/// A three-block CNN for small (MNIST-size) images.
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/nn/batch_norm.h"

namespace contra::nn {

struct SmallCnnOptions {
  /// Input channels (1 for MNIST, 3 for RGB).
  TORCH_ARG(int64_t, in_channels) = 1;
  /// Channels of the first block; the blocks have width, 2·width and 4·width channels.
  TORCH_ARG(int64_t, width) = 32;
};

/// Small CNN encoder: 3 × (3×3 conv, padding 1, no bias → BatchNorm2d → ReLU), a 2×2 max-pool after
/// the first two blocks, then a global average pool.
///
/// Channels width → 2·width → 4·width; spatial size H → ⌊H/2⌋ → ⌊H/4⌋ (28 → 14 → 7) before the
/// average pool, so any H, W ≥ 4 works. Parameters: 9·C·w + 90·w² + 14·w (92,896 for C = 1,
/// w = 32). Convolutions use Kaiming-normal (fan_out, ReLU) initialisation as torchvision's ResNet.
///
/// Input (N, in_channels, H, W) float; output (N, 4·width) = (N, `output_size()`).
/// Throws ConfigError for non-positive options; c10::Error for a wrong input shape.
///
///   SmallCnn enc(SmallCnnOptions().in_channels(1).width(32));
///   auto h = enc->forward(torch::randn({8, 1, 28, 28}));   // (8, 128)
class SmallCnnImpl : public torch::nn::Cloneable<SmallCnnImpl> {
 public:
  explicit SmallCnnImpl(SmallCnnOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);

  /// Feature dimension D = 4·width.
  int64_t output_size() const { return 4 * options.width(); }

  SmallCnnOptions options;

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  contra::nn::BatchNorm bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
};
TORCH_MODULE(SmallCnn);

}  // namespace contra::nn
