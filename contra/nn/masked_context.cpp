#include "contra/nn/masked_context.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {

MaskedContextImpl::MaskedContextImpl(MaskedContextOptions options_) : options(std::move(options_)) {
  check<ConfigError>(options.features() > 0, "features: must be > 0 (got {})", options.features());
  check<ConfigError>(options.channels() > 0, "channels: must be > 0 (got {})", options.channels());
  check<ConfigError>(options.blocks() >= 1, "blocks: must be >= 1 (got {})", options.blocks());
  check<ConfigError>(options.kernel() >= 1 && options.kernel() % 2 == 1,
                     "kernel: must be odd and >= 1 (got {})", options.kernel());
  reset();
}

void MaskedContextImpl::reset() {
  const int64_t d = options.features(), ch = options.channels(), k = options.kernel();
  convs = register_module("convs", torch::nn::ModuleList());
  for (int64_t b = 0; b < options.blocks(); ++b) {
    using torch::nn::Conv2d;
    using torch::nn::Conv2dOptions;
    convs->push_back(Conv2d(Conv2dOptions(d, ch, 1)));
    convs->push_back(Conv2d(Conv2dOptions(ch, ch, {1, k}).padding({0, k / 2})));
    convs->push_back(Conv2d(Conv2dOptions(ch, ch, {k / 2 + 1, 1})));
    convs->push_back(Conv2d(Conv2dOptions(ch, d, 1)));
  }
}

torch::Tensor MaskedContextImpl::forward(const torch::Tensor& z) {
  TORCH_CHECK(z.dim() == 4 && z.size(1) == options.features(), "masked_context: input must be (N, ",
              options.features(), ", rows, cols), got ", z.sizes());
  const int64_t top = options.kernel() / 2;
  auto x = z;
  for (int64_t b = 0; b < options.blocks(); ++b) {
    auto conv = [&](int64_t i, const torch::Tensor& in) {
      return convs[static_cast<size_t>(4 * b + i)]->as<torch::nn::Conv2d>()->forward(in);
    };
    auto h = torch::relu(conv(0, x));
    h = conv(1, h);
    // Pad only above (left, right, top, bottom): row i of the valid conv sees rows i − top .. i.
    h = conv(2, torch::constant_pad_nd(h, {0, 0, top, 0}));
    x = x + conv(3, torch::relu(h));
  }
  return torch::relu(x);
}

}  // namespace contra::nn
