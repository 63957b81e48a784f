#include "contra/loss/clip.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/dist/collectives.h"

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
  torch::Tensor img = image / (image.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12) / scale);
  torch::Tensor txt = l2_normalize(text);
  torch::Tensor logits = torch::mm(img, txt.t());  // (N, N): image i against text j
  // Cross-entropy over rows (image → text) and columns (text → image); the matching pairs' logits
  // come from the (N, D) rows, not the diagonal (whose backward fills a dense (N, N) gradient).
  torch::Tensor matching = (img * txt).sum(1);
  return (logsumexp(logits, 1) + logsumexp(logits, 0)).mean() / 2 - matching.mean();
}

torch::Tensor clip_global(const torch::Tensor& image, const torch::Tensor& text,
                          const torch::Tensor& log_scale, const ClipOptions& options) {
  dist::Group& group = dist::world();
  if (group.size() == 1) return clip(image, text, log_scale, options);
  detail::validate(options, "clip");
  detail::check_embeddings(image, "clip", "image");
  detail::check_same_shape(image, text, "clip", "image", "text");
  TORCH_CHECK(log_scale.defined() && log_scale.numel() == 1,
              "clip: log_scale must be a scalar tensor");
  torch::Tensor scale = log_scale.reshape({}).clamp_max(std::log(options.max_scale())).exp();
  torch::Tensor img = l2_normalize(image), txt = l2_normalize(text);
  torch::Tensor all_img = dist::all_gather(img), all_txt = dist::all_gather(txt);  // (WN, D)
  torch::Tensor i2t = torch::mm(img * scale, all_txt.t());                         // (N, WN)
  torch::Tensor t2i = torch::mm(txt * scale, all_img.t());                         // (N, WN)
  torch::Tensor matching = scale * (img * txt).sum(1);
  return (logsumexp(i2t, 1) + logsumexp(t2i, 1)).mean() / 2 - matching.mean();
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

torch::Tensor ClipImpl::forward_global(const torch::Tensor& image, const torch::Tensor& text) {
  {
    torch::NoGradGuard no_grad;
    log_scale.clamp_(0, std::log(options.max_scale()));
  }
  return functional::clip_global(image, text, log_scale, options);
}

}  // namespace contra::loss
