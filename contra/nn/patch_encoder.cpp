#include "contra/nn/patch_encoder.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/batch_norm.h"

namespace contra::nn {

PatchEncoderImpl::PatchEncoderImpl(PatchEncoderOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.in_channels() > 0, "in_channels: must be > 0 (got {})",
                     options.in_channels());
  check<ConfigError>(options.width() > 0, "width: must be > 0 (got {})", options.width());
  const std::string& n = options.norm();
  check<ConfigError>(n == "layer" || n == "batch" || n == "none",
                     "norm: must be layer, batch or none (got '{}')", n);
  reset();
}

void PatchEncoderImpl::reset() {
  const int64_t w = options.width();
  auto conv = [](int64_t in, int64_t out) {
    // No bias: the normalisation that follows has its own shift (none: a plain conv stack, as
    // SmallCnn's initialisation).
    torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false));
    torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    return c;
  };
  auto norm = [&](const char* name, int64_t channels) {
    torch::nn::AnyModule m;
    if (options.norm() == "layer") {
      m = torch::nn::AnyModule(torch::nn::GroupNorm(torch::nn::GroupNormOptions(1, channels)));
    } else if (options.norm() == "batch") {
      m = torch::nn::AnyModule(BatchNorm(channels));
    } else {
      return m;
    }
    register_module(name, m.ptr());
    return m;
  };
  conv1_ = register_module("conv1", conv(options.in_channels(), w));
  norm1_ = norm("norm1", w);
  conv2_ = register_module("conv2", conv(w, 2 * w));
  norm2_ = norm("norm2", 2 * w);
  conv3_ = register_module("conv3", conv(2 * w, 4 * w));
  norm3_ = norm("norm3", 4 * w);
}

torch::Tensor PatchEncoderImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == options.in_channels(),
              "patch_encoder: input must be (N, ", options.in_channels(), ", P, P), got ",
              input.sizes());
  TORCH_CHECK(input.size(2) >= 4 && input.size(3) >= 4,
              "patch_encoder: patches must be at least 4×4, got ", input.sizes());
  auto block = [](const torch::Tensor& x, torch::nn::AnyModule& norm) {
    return torch::relu(norm.is_empty() ? x : norm.forward(x));
  };
  auto x = torch::max_pool2d(block(conv1_->forward(input), norm1_), 2);  // (N, w, P/2, P/2)
  x = torch::max_pool2d(block(conv2_->forward(x), norm2_), 2);           // (N, 2w, P/4, P/4)
  x = block(conv3_->forward(x), norm3_);                                 // (N, 4w, P/4, P/4)
  return x.mean({2, 3});                                                 // (N, 4w)
}

}  // namespace contra::nn
