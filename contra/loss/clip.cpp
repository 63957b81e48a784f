#include "contra/loss/clip.h"

#include <cmath>

#include <torch/torch.h>

namespace contra::loss {

void ClipOptions::validate() const {
  detail::check_positive(init_temperature(), "init_temperature");
  check<ConfigError>(max_scale() >= 1, "max_scale: must be >= 1 (got {})", max_scale());
}

namespace functional {

torch::Tensor clip(const torch::Tensor& image, const torch::Tensor& text,
                   const torch::Tensor& log_scale, const ClipOptions& options) {
  detail::validate(options, "clip");
  detail::check_embeddings(image, "clip", "image");
  detail::check_same_shape(image, text, "clip", "image", "text");
  TORCH_CHECK(log_scale.defined() && log_scale.numel() == 1,
              "clip: log_scale must be a scalar tensor, got ",
              log_scale.defined() ? log_scale.sizes() : torch::IntArrayRef{});
  torch::Tensor scale = log_scale.reshape({}).clamp_max(std::log(options.max_scale())).exp();
  // The scale multiplies the (N, D) image side rather than the (N, N) logits.
  torch::Tensor logits = torch::mm(l2_normalize(image) * scale, l2_normalize(text).t());  // (N, N)
  // Cross-entropy along the rows of the logits and of their transpose (made contiguous: faster than
  // a softmax over dim 0); the matching pair is on the diagonal in both.
  torch::Tensor image_to_text = torch::log_softmax(logits, 1).diagonal();
  torch::Tensor text_to_image = torch::log_softmax(logits.t().contiguous(), 1).diagonal();
  return -(image_to_text + text_to_image).mean() / 2;
}

}  // namespace functional

ClipImpl::ClipImpl(ClipOptions options_) : options(std::move(options_)) {
  detail::validate(options, "clip");
  reset();
}

void ClipImpl::reset() {
  torch::Tensor init = torch::full({}, std::log(1.0 / options.init_temperature()));
  log_scale = options.learnable() ? register_parameter("log_scale", init)
                                  : register_buffer("log_scale", init);
}

torch::Tensor ClipImpl::forward(const torch::Tensor& image, const torch::Tensor& text) {
  {
    torch::NoGradGuard no_grad;
    log_scale.clamp_(0, std::log(options.max_scale()));
  }
  return functional::clip(image, text, log_scale, options);
}

}  // namespace contra::loss
