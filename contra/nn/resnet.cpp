#include "contra/nn/resnet.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {
namespace {

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  // No bias: every conv is followed by a BatchNorm.
  torch::nn::Conv2d conv(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  return conv;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  conv1_ = register_module("conv1", make_conv(in_channels_, out_channels_, 3, stride_));
  bn1_ = register_module("bn1", contra::nn::BatchNorm(out_channels_));
  conv2_ = register_module("conv2", make_conv(out_channels_, out_channels_, 3, 1));
  bn2_ = register_module("bn2", contra::nn::BatchNorm(out_channels_));
  if (stride_ != 1 || in_channels_ != out_channels_) {
    downsample_ = register_module(
        "downsample", torch::nn::Sequential(make_conv(in_channels_, out_channels_, 1, stride_),
                                            contra::nn::BatchNorm(out_channels_)));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& input) {
  auto x = torch::relu(bn1_->forward(conv1_->forward(input)));
  x = bn2_->forward(conv2_->forward(x));
  return torch::relu(x + (downsample_ ? downsample_->forward(input) : input));
}

ResNet18Impl::ResNet18Impl(ResNet18Options options_) : options(std::move(options_)) {
  check<ConfigError>(options.in_channels() > 0, "resnet18: in_channels must be > 0 (got {})",
                     options.in_channels());
  check<ConfigError>(options.width() > 0, "resnet18: width must be > 0 (got {})", options.width());
  reset();
}

void ResNet18Impl::reset() {
  const int64_t w = options.width();
  conv1_ = register_module("conv1", make_conv(options.in_channels(), w, 3, 1));
  bn1_ = register_module("bn1", contra::nn::BatchNorm(w));
  auto stage = [&](int64_t in, int64_t out, int64_t stride) {
    torch::nn::Sequential s(BasicBlock(in, out, stride), BasicBlock(out, out, 1));
    if (options.zero_init_residual()) {
      torch::NoGradGuard no_grad;
      for (const auto& block : s->children())
        block->as<BasicBlockImpl>()->last_bn()->weight.zero_();
    }
    return s;
  };
  layer1_ = register_module("layer1", stage(w, w, 1));
  layer2_ = register_module("layer2", stage(w, 2 * w, 2));
  layer3_ = register_module("layer3", stage(2 * w, 4 * w, 2));
  layer4_ = register_module("layer4", stage(4 * w, 8 * w, 2));
}

torch::Tensor ResNet18Impl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == options.in_channels(),
              "resnet18: input must be (N, ", options.in_channels(), ", H, W), got ",
              input.sizes());
  auto x = torch::relu(bn1_->forward(conv1_->forward(input)));  // (N, w, H, W)
  x = layer1_->forward(x);
  x = layer2_->forward(x);  // (N, 2w, H/2, W/2)
  x = layer3_->forward(x);  // (N, 4w, H/4, W/4)
  x = layer4_->forward(x);  // (N, 8w, H/8, W/8)
  return x.mean({2, 3});    // (N, 8w)
}

}  // namespace contra::nn
