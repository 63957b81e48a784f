#include "contra/nn/conv_encoder.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/batch_norm_relu.h"

namespace contra::nn {
namespace {

/// relu(bn(x)) through the fused kernel, with the module's own running statistics and counter
/// (what torch::nn::BatchNorm1d::forward does, momentum unset meaning a cumulative average).
torch::Tensor batch_norm_relu(torch::nn::BatchNorm1dImpl& bn, const torch::Tensor& x,
                              const torch::Tensor& input_bias) {
  const auto& o = bn.options;
  double momentum = o.momentum().value_or(0.0);
  if (bn.is_training() && o.track_running_stats()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    if (!o.momentum()) momentum = 1.0 / bn.num_batches_tracked.item<double>();
  }
  return functional::batch_norm_relu(x, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                     bn.is_training() || !o.track_running_stats(), momentum,
                                     o.eps(), input_bias);
}

}  // namespace

ConvEncoderImpl::ConvEncoderImpl(ConvEncoderOptions options_) : options(std::move(options_)) {
  const auto n = options.kernels().size();
  check<ConfigError>(n > 0, "conv_encoder: kernels must not be empty");
  check<ConfigError>(options.strides().size() == n && options.paddings().size() == n,
                     "conv_encoder: kernels, strides and paddings must have the same length (got "
                     "{}, {}, {})",
                     n, options.strides().size(), options.paddings().size());
  check<ConfigError>(options.channels() > 0, "conv_encoder: channels must be > 0 (got {})",
                     options.channels());
  check<ConfigError>(options.in_channels() > 0, "conv_encoder: in_channels must be > 0 (got {})",
                     options.in_channels());
  for (std::size_t i = 0; i < n; ++i) {
    check<ConfigError>(
        options.kernels()[i] > 0 && options.strides()[i] > 0 && options.paddings()[i] >= 0,
        "conv_encoder: layer {}: kernel and stride must be > 0 and padding >= 0 "
        "(got kernel {}, stride {}, padding {})",
        i, options.kernels()[i], options.strides()[i], options.paddings()[i]);
  }
  check<ConfigError>(
      options.norm() == "none" || options.norm() == "batch" || options.norm() == "layer",
      "conv_encoder: norm must be none, batch or layer (got '{}')", options.norm());
  check<ConfigError>(options.precision() == "float32" || options.precision() == "bfloat16",
                     "conv_encoder: precision must be float32 or bfloat16 (got '{}')",
                     options.precision());
  reset();
}

void ConvEncoderImpl::reset() {
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  int64_t in = options.in_channels();
  for (std::size_t i = 0; i < options.kernels().size(); ++i) {
    convs_->push_back(
        torch::nn::Conv1d(torch::nn::Conv1dOptions(in, options.channels(), options.kernels()[i])
                              .stride(options.strides()[i])
                              .padding(options.paddings()[i])));
    if (options.norm() == "batch") {
      norms_->push_back(torch::nn::BatchNorm1d(
          torch::nn::BatchNorm1dOptions(options.channels()).eps(options.eps())));
    } else if (options.norm() == "layer") {
      norms_->push_back(torch::nn::LayerNorm(
          torch::nn::LayerNormOptions({options.channels()}).eps(options.eps())));
    }
    in = options.channels();
  }
}

torch::Tensor ConvEncoderImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 3 && input.size(1) == options.in_channels(),
              "conv_encoder: input must be (B, ", options.in_channels(), ", S), got ",
              input.sizes());
  TORCH_CHECK(frames_for(input.size(2)) > 0, "conv_encoder: input of ", input.size(2),
              " samples is shorter than the receptive field (", receptive_field(), ")");
  const bool layer = options.norm() == "layer";
  const bool bf16 = options.precision() == "bfloat16";
  const auto dtype = input.scalar_type();
  // bfloat16: activations and the on-the-fly weight copies in bf16 (the fp32 parameters stay the
  // optimizer's master copy; `.to()` is differentiable), output back in the input's dtype.
  auto cast = [&](const torch::Tensor& t) {
    return bf16 && t.defined() ? t.to(torch::kBFloat16) : t;
  };
  // Batch norm in training mode cancels the conv bias exactly: the conv runs without it and the
  // fused BatchNorm + ReLU keeps it in the running mean only (the bias gets no gradient, as it has
  // none).
  const bool fold_bias = options.norm() == "batch" && !bf16 && is_training();
  torch::Tensor x = cast(input);
  for (std::size_t i = 0; i < convs_->size(); ++i) {
    auto conv = convs_[i]->as<torch::nn::Conv1d>();
    x = torch::conv1d(x, cast(conv->weight), fold_bias ? torch::Tensor() : cast(conv->bias),
                      options.strides()[i], options.paddings()[i]);  // (B, C, L)
    if (layer) {
      // Normalise each frame over its channels: LayerNorm on (B, L, C), then back to (B, C, L).
      auto norm = norms_[i]->as<torch::nn::LayerNorm>();
      x = torch::layer_norm(x.transpose(1, 2), {options.channels()}, cast(norm->weight),
                            cast(norm->bias), options.eps());
      x = torch::relu_(x);
      x = i + 1 < convs_->size() ? x.transpose(1, 2) : x;  // last layer stays (B, T, C)
    } else {
      if (norms_->is_empty()) {
        x = torch::relu_(x);
      } else if (bf16) {
        // Batch statistics and running buffers stay in float32.
        x = cast(norms_[i]->as<torch::nn::BatchNorm1d>()->forward(x.to(dtype))).relu_();
      } else {
        x = batch_norm_relu(*norms_[i]->as<torch::nn::BatchNorm1d>(), x,
                            fold_bias ? conv->bias : torch::Tensor());
      }
    }
  }
  x = layer ? x : x.transpose(1, 2);
  return x.to(dtype);
}

int64_t ConvEncoderImpl::downsampling() const {
  int64_t d = 1;
  for (auto s : options.strides()) d *= s;
  return d;
}

int64_t ConvEncoderImpl::receptive_field() const {
  // r = 1 + Σ_l (k_l − 1) · Π_{j<l} s_j
  int64_t r = 1, jump = 1;
  for (std::size_t i = 0; i < options.kernels().size(); ++i) {
    r += (options.kernels()[i] - 1) * jump;
    jump *= options.strides()[i];
  }
  return r;
}

int64_t ConvEncoderImpl::padding_offset() const {
  int64_t o = 0, jump = 1;
  for (std::size_t i = 0; i < options.kernels().size(); ++i) {
    o += options.paddings()[i] * jump;
    jump *= options.strides()[i];
  }
  return o;
}

int64_t ConvEncoderImpl::frames_for(int64_t samples) const {
  int64_t length = samples;
  for (std::size_t i = 0; i < options.kernels().size(); ++i) {
    const int64_t span = length + 2 * options.paddings()[i] - options.kernels()[i];
    if (span < 0) return 0;
    length = span / options.strides()[i] + 1;
  }
  return length;
}

}  // namespace contra::nn
