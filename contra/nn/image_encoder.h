#pragma once
/// Builds an image encoder (SmallCnn or ResNet18) from a typed config section.
#include <cstdint>
#include <string>

#include <torch/nn/modules/container/any.h>

namespace contra::nn {

/// `method.encoder` of the image methods: which backbone and its size.
///
///   encoder: {type: resnet18, in_channels: 3, width: 64, zero_init_residual: true}
struct ImageEncoderConfig {
  std::string type = "small_cnn";
  int64_t in_channels = 1;
  int64_t width = 0;
  bool zero_init_residual = false;
  template <class V>
  void visit(V& v) {
    v("type", type, "small_cnn (28×28 MNIST-size inputs) | resnet18 (CIFAR stem, 32×32)");
    v("in_channels", in_channels, "image channels (1 grey, 3 RGB)");
    v("width", width,
      "channels of the first stage (0 = the type's default: small_cnn 32, resnet18 64)");
    v("zero_init_residual", zero_init_residual,
      "resnet18: start each block's last BatchNorm γ at 0 (ignored by small_cnn)");
  }
  /// Throws ConfigError naming the key and the expected values.
  void validate() const;
  /// `width`, or the type's default when 0.
  int64_t resolved_width() const;
  /// Feature dimension D of the encoder's output (N, D): 4·width (small_cnn), 8·width (resnet18).
  int64_t output_size() const;
};

/// The encoder the config describes, as an AnyModule mapping (N, C, H, W) → (N, output_size()).
/// Validates the config first (ConfigError).
///
///   ImageEncoderConfig config;
///   config.type = "resnet18";
///   config.in_channels = 3;
///   auto enc = make_image_encoder(config);
///   torch::Tensor h = enc.forward(images);   // (N, 512) = (N, config.output_size())
torch::nn::AnyModule make_image_encoder(const ImageEncoderConfig& config);

}  // namespace contra::nn
