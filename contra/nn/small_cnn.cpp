#include "contra/nn/small_cnn.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {

SmallCnnImpl::SmallCnnImpl(SmallCnnOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.in_channels() > 0, "small_cnn: in_channels must be > 0 (got {})",
                     options.in_channels());
  check<ConfigError>(options.width() > 0, "small_cnn: width must be > 0 (got {})", options.width());
  reset();
}

void SmallCnnImpl::reset() {
  const int64_t w = options.width();
  auto conv = [](int64_t in, int64_t out) {
    // No bias: the BatchNorm that follows has its own shift.
    torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false));
    torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    return c;
  };
  conv1_ = register_module("conv1", conv(options.in_channels(), w));
  bn1_ = register_module("bn1", contra::nn::BatchNorm(w));
  conv2_ = register_module("conv2", conv(w, 2 * w));
  bn2_ = register_module("bn2", contra::nn::BatchNorm(2 * w));
  conv3_ = register_module("conv3", conv(2 * w, 4 * w));
  bn3_ = register_module("bn3", contra::nn::BatchNorm(4 * w));
}

torch::Tensor SmallCnnImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == options.in_channels(),
              "small_cnn: input must be (N, ", options.in_channels(), ", H, W), got ",
              input.sizes());
  TORCH_CHECK(input.size(2) >= 4 && input.size(3) >= 4,
              "small_cnn: input must be at least 4×4, got ", input.sizes());
  auto x = torch::relu(bn1_->forward(conv1_->forward(input)));
  x = torch::max_pool2d(x, 2);                                               // (N, w, H/2, W/2)
  x = torch::max_pool2d(torch::relu(bn2_->forward(conv2_->forward(x))), 2);  // (N, 2w, H/4, W/4)
  x = torch::relu(bn3_->forward(conv3_->forward(x)));                        // (N, 4w, H/4, W/4)
  return x.mean({2, 3});                                                     // (N, 4w)
}

}  // namespace contra::nn
