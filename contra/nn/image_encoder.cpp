#include "contra/nn/image_encoder.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/resnet.h"
#include "contra/nn/small_cnn.h"

namespace contra::nn {

void ImageEncoderConfig::validate() const {
  check<ConfigError>(type == "small_cnn" || type == "resnet18",
                     "type: must be small_cnn or resnet18 (got '{}')", type);
  check<ConfigError>(in_channels > 0, "in_channels: must be > 0 (got {})", in_channels);
  check<ConfigError>(width >= 0, "width: must be > 0, or 0 for the type's default (got {})", width);
}

int64_t ImageEncoderConfig::resolved_width() const {
  if (width > 0) return width;
  return type == "resnet18" ? 64 : 32;
}

int64_t ImageEncoderConfig::output_size() const {
  return (type == "resnet18" ? 8 : 4) * resolved_width();
}

torch::nn::AnyModule make_image_encoder(const ImageEncoderConfig& config) {
  config.validate();
  if (config.type == "resnet18") {
    return torch::nn::AnyModule(ResNet18(ResNet18Options()
                                             .in_channels(config.in_channels)
                                             .width(config.resolved_width())
                                             .zero_init_residual(config.zero_init_residual)));
  }
  return torch::nn::AnyModule(
      SmallCnn(SmallCnnOptions().in_channels(config.in_channels).width(config.resolved_width())));
}

}  // namespace contra::nn
