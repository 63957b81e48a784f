#pragma once
/// CLIP's symmetric contrastive loss (Radford et al. 2021, "Learning Transferable Visual Models
/// From Natural Language Supervision", arXiv:2103.00020, Figure 3) with a learnable logit scale:
///
///   s = exp(min(log_scale, log max_scale)),   L = s · î t̂ᵀ   (N, N)
///   ℓ = ½ [ CE(L, diag) + CE(Lᵀ, diag) ]
///
/// î, t̂ the L2-normalised image and text embeddings; the i-th image matches the i-th text. The
/// scale starts at 1/0.07 and is "clipped to prevent scaling the logits by more than 100" (§2.5):
/// the module clamps its parameter in place to [0, log max_scale] before each forward (as OpenCLIP
/// does after each step), so it can come back from the bound; the functional form clamps the value
/// it is given.
///
/// Shapes: image (N, D), text (N, D), log_scale a scalar tensor → scalar. With all embeddings equal
/// the loss is log N. Throws ConfigError for max_scale < 1 or init_temperature <= 0, c10::Error for
/// shape mismatches or an empty batch.
///
///   contra::loss::Clip clip;                       // owns the learnable logit scale
///   auto loss = clip(image_embeddings, text_embeddings);
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct ClipOptions {
  /// Initial temperature of the module's scale (> 0): log_scale starts at log(1/init_temperature).
  TORCH_ARG(double, init_temperature) = 0.07;
  /// Largest logit scale (>= 1).
  TORCH_ARG(double, max_scale) = 100.0;
  /// Learn the scale (a parameter) or keep it fixed (a buffer).
  TORCH_ARG(bool, learnable) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("init_temperature", init_temperature(), "initial temperature (> 0)");
    v("max_scale", max_scale(), "largest logit scale (>= 1)");
    v("learnable", learnable(), "learn the logit scale");
  }
  void validate() const;
};

namespace functional {
torch::Tensor clip(const torch::Tensor& image, const torch::Tensor& text,
                   const torch::Tensor& log_scale, const ClipOptions& options = {});

/// CLIP's loss over the global batch of a distributed run (OpenCLIP's "local loss"): this rank's N
/// images against all W·N texts and its N texts against all W·N images (dist::all_gather, with
/// gradients), labels offset by rank·N. The mean over ranks equals clip() on the concatenated
/// batch, gradients included after data-parallel averaging. With one process this is clip().
torch::Tensor clip_global(const torch::Tensor& image, const torch::Tensor& text,
                          const torch::Tensor& log_scale, const ClipOptions& options = {});
}  // namespace functional

class ClipImpl : public torch::nn::Cloneable<ClipImpl> {
 public:
  explicit ClipImpl(ClipOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& image, const torch::Tensor& text);
  /// The same over the global batch of a distributed run (functional::clip_global).
  torch::Tensor forward_global(const torch::Tensor& image, const torch::Tensor& text);
  ClipOptions options;
  /// log of the logit scale (a 0-dim tensor).
  torch::Tensor log_scale;
};
TORCH_MODULE(Clip);

}  // namespace contra::loss
