#pragma once
/// ResNet-18 with the CIFAR stem (He et al. 2016, arXiv:1512.03385), as used by SimCLR/MoCo on
/// 32×32 images.
#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/nn/batch_norm.h"

namespace contra::nn {

/// ResNet basic block: y = ReLU(BN(conv3×3(ReLU(BN(conv3×3(x))))) + shortcut(x)), the shortcut a
/// 1×1 strided conv + BN when the shape changes, the identity otherwise.
///
/// Input (N, in, H, W); output (N, out, ⌈H/stride⌉, ⌈W/stride⌉). Parameter names follow
/// torchvision (conv1, bn1, conv2, bn2, downsample.0, downsample.1).
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);

  /// The block's last BatchNorm (the one `zero_init_residual` zeroes).
  contra::nn::BatchNorm last_bn() const { return bn2_; }

 private:
  int64_t in_channels_, out_channels_, stride_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  contra::nn::BatchNorm bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};  // empty pointer for the identity shortcut
};
TORCH_MODULE(BasicBlock);

struct ResNet18Options {
  /// Input channels (3 for CIFAR, 1 for MNIST).
  TORCH_ARG(int64_t, in_channels) = 3;
  /// Channels of the stem and the first stage; the stages have width·{1, 2, 4, 8}.
  TORCH_ARG(int64_t, width) = 64;
  /// Start every block's last BatchNorm with γ = 0, so each residual block begins as the identity
  /// (Goyal et al. 2017, arXiv:1706.02677, §5.1; torchvision's `zero_init_residual`).
  TORCH_ARG(bool, zero_init_residual) = false;
};

/// ResNet-18 feature extractor with the CIFAR stem: 3×3 conv stride 1 (no 7×7 stride-2 conv, no
/// max-pool) → BN → ReLU, four stages of two BasicBlocks (strides 1, 2, 2, 2), global average pool;
/// no classifier.
///
/// Spatial size 32 → 32 → 16 → 8 → 4 before the pool. Parameters 9·C·w + 2724·w² + 150·w:
/// 11,168,832 for C = 3, w = 64 (torchvision's resnet18 without its 7×7 stem and fc, with a 3×3
/// stem — see docs/images.md). Initialisation as torchvision: Kaiming-normal (fan_out, ReLU) convs,
/// BN γ = 1, β = 0.
///
/// Input (N, in_channels, H, W) float; output (N, 8·width) = (N, `output_size()`).
/// Throws ConfigError for non-positive options; c10::Error for a wrong input shape.
///
///   ResNet18 net(ResNet18Options().width(64).zero_init_residual(true));
///   auto h = net->forward(torch::randn({8, 3, 32, 32}));   // (8, 512)
class ResNet18Impl : public torch::nn::Cloneable<ResNet18Impl> {
 public:
  explicit ResNet18Impl(ResNet18Options options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);

  /// Feature dimension D = 8·width.
  int64_t output_size() const { return 8 * options.width(); }

  ResNet18Options options;

 private:
  torch::nn::Conv2d conv1_{nullptr};
  contra::nn::BatchNorm bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace contra::nn
