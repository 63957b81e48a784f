#pragma once
/// CPC v2 on images (Hénaff, Srinivas, De Fauw, Razavi, Doersch, Eslami & van den Oord 2019/2020,
/// "Data-Efficient Image Recognition with Contrastive Predictive Coding", arXiv:1905.09272).
#include <cstdint>
#include <string>

#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/masked_context.h"
#include "contra/nn/patch_encoder.h"

namespace contra::method {

/// `method.encoder`: the patch encoder (contra::nn::PatchEncoder, SmallCnn's layout).
struct CpcPatchEncoderConfig {
  int64_t in_channels = 1;
  int64_t width = 32;
  std::string norm = "layer";
  template <class V>
  void visit(V& v) {
    v("in_channels", in_channels, "image channels (1 grey, 3 RGB)");
    v("width", width, "channels of the first block (features 4·width)");
    v("norm", norm,
      "layer (CPC v2: per-patch layer norm) | batch (SmallCnn's, couples the patches of a batch) "
      "| none");
  }
  void validate() const;
  /// D = 4·width.
  int64_t output_size() const { return 4 * width; }
  nn::PatchEncoderOptions options() const;
};

/// `method.context`: the masked-convolution context network (contra::nn::MaskedContext).
struct CpcImageContextConfig {
  int64_t channels = 256;
  int64_t blocks = 5;
  int64_t kernel = 3;
  template <class V>
  void visit(V& v) {
    v("channels", channels, "bottleneck channels of each residual block (paper 256)");
    v("blocks", blocks, "residual blocks (paper 5)");
    v("kernel", kernel, "odd kernel width k; each block sees k/2 rows above (paper 3)");
  }
  void validate() const;
};

/// The `method:` section of `name: cpc_image`. Defaults are the paper's where it has one (64×64
/// patches at stride 32, a 5-block context of 256 channels, 64-d targets, predictions scaled by
/// 0.1, the appendix's offset 3 with offsets 1–2 skipped).
///
///   method:
///     name: cpc_image
///     encoder: {in_channels: 1, width: 32, norm: layer}
///     patch_size: 10
///     patch_stride: 6                  # 28×28 → a 4×4 grid
///     patch_jitter: 2
///     patch_color: 0.4
///     context: {channels: 128, blocks: 3, kernel: 3}
///     prediction_steps: 3
///     skip_steps: 1
struct CpcImageConfig {
  CpcPatchEncoderConfig encoder;
  int64_t patch_size = 64;
  int64_t patch_stride = 32;
  int64_t patch_jitter = 4;
  double patch_color = 0.4;
  CpcImageContextConfig context;
  int64_t target_dim = 64;
  int64_t prediction_steps = 3;
  int64_t skip_steps = 2;
  double emb_scale = 0.1;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the patch encoder");
    v("patch_size", patch_size, "side P of the square patches (>= 4; paper 64)");
    v("patch_stride", patch_stride, "step S between patches (>= 1; paper 32, 50% overlap)");
    v("patch_jitter", patch_jitter,
      "training: each patch is cut up to this many pixels off its grid position, independently "
      "(0 = off; < patch_stride / 2 so rows keep their order)");
    v("patch_color", patch_color,
      "training: per-patch random contrast factor in [1 − s, 1 + s] and brightness shift in "
      "[−s, s] (normalised units) (0 = off; in [0, 1))");
    v("context", context, "the masked-convolution context network");
    v("target_dim", target_dim,
      "targets t = W_t z (a 1×1 conv, paper 64); 0 = the patch vectors z themselves");
    v("prediction_steps", prediction_steps,
      "K: the farthest row predicted, k rows below the context's row (paper appendix 3)");
    v("skip_steps", skip_steps,
      "offsets 1..skip_steps are not predicted: those rows overlap or touch the context's patches "
      "(paper appendix 2 on its 50%-overlap grid); 0 <= skip_steps < prediction_steps");
    v("emb_scale", emb_scale, "predictions are scaled by this before the dot products (paper 0.1)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached pooled z alongside (online_acc)");
  }
  void validate() const;
  /// Rows (or columns) of the patch grid on a side of `side` pixels: ⌊(side − P) / S⌋ + 1, or 0
  /// when side < P.
  int64_t grid_side(int64_t side) const;
};

/// Patches at the grid positions: x (B, C, H, W) → (B, Gh, Gw, C, P, P) with patch (i, j) =
/// x[:, :, i·S : i·S + P, j·S : j·S + P] (a view; Gh, Gw as CpcImageConfig::grid_side). Pixels
/// beyond the last patch are not covered. Throws c10::Error when a side is smaller than P.
torch::Tensor extract_patches(const torch::Tensor& x, int64_t patch, int64_t stride);

/// Patches cut at arbitrary top-left corners: top, left (B, Gh, Gw) int64 with 0 <= top <= H − P
/// and 0 <= left <= W − P → (B, Gh, Gw, C, P, P), patch (b, i, j) = x[b, :, top : top + P,
/// left : left + P]. One gather (not differentiable in the positions).
torch::Tensor cut_patches(const torch::Tensor& x, const torch::Tensor& top,
                          const torch::Tensor& left, int64_t patch);

/// CPC v2 on images. An image (B, C, H, W) is cut into an overlapping Gh × Gw grid of P × P
/// patches (stride S); every patch is encoded on its own, z_{i,j} = f(x_{i,j}) (PatchEncoder,
/// layer norm), a masked-convolution context network gives c_{i,j} = g(z_{u,v} : u <= i)
/// (MaskedContext), and for each offset k ∈ (skip_steps, prediction_steps] the prediction
/// ẑ_{i+k,j} = s · W_k c_{i,j} (a 1×1 conv, s = emb_scale) is scored by dot products against the
/// targets t = W_t z of every patch of the batch:
///   L_k = −mean_{b, i < Gh−k, j} log softmax_n(ẑ_{i+k,j} · t_n)[n = (b, i + k, j)],
/// i.e. InfoNCE whose negatives are all other patches of the image and of every other image of the
/// batch (the appendix's CPC(): logits = preds · targetsᵀ, cross-entropy); loss = mean_k L_k.
/// Distributed: the targets of all ranks are gathered (all_gather, with gradients), so each
/// prediction is scored against the global batch, as in one process.
///
/// Training-time patch augmentation (paper: each patch augmented independently), in step() while
/// training only, drawn from torch's default generator: each patch is cut up to `patch_jitter`
/// pixels off its grid position (clamped to the image), then its contrast is scaled by
/// U[1 − s, 1 + s] around its mean and its brightness shifted by U[−s, s], s = `patch_color`.
/// features() always uses the plain grid.
///
/// Batch: `input` (or `views[0]`) (B, C, H, W) normalised images; `labels` only for the online
/// probe. Metrics: cpc_loss, loss_k and acc_k (share of predictions whose positive scores highest)
/// per offset k; probe_loss, online_acc with the probe. features(x, "encoder") = z averaged over
/// the grid (B, D) — the paper's linear evaluation pools the patch encoder's features —; "context"
/// = c averaged (B, D); "grid" = every z_{i,j} concatenated (B, D·Gh·Gw), which keeps where each
/// patch is. Throws ConfigError for an invalid config, a grid without a row to predict,
/// an unknown feature kind; DataError for a malformed batch.
///
///   CpcImage cpc(config);
///   StepOutput out = cpc.step(batch);     // out.loss, out.metrics["acc_3"]
class CpcImage : public Method {
 public:
  explicit CpcImage(CpcImageConfig config);
  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "cpc_image"; }
  const CpcImageConfig& config() const { return config_; }

  /// ConfigError unless one view per image, a batch of >= 1 and views of side `side` give a grid
  /// with a row to predict (names augment.size, method.patch_size, method.patch_stride,
  /// method.prediction_steps).
  void check_batch(int64_t batch_size, int64_t views, int64_t side) const;

  /// The grid's patches (B, Gh, Gw, C, P, P) of `images`: jittered and colour-augmented when
  /// `augment`, else extract_patches.
  torch::Tensor patches(const torch::Tensor& images, bool augment) const;
  /// z (B, D, Gh, Gw): the encoder on every patch of (B, Gh, Gw, C, P, P).
  torch::Tensor encode(const torch::Tensor& patches);
  /// The predictions (B, K′, T, Gh, Gw) of z (B, D, Gh, Gw), K′ = prediction_steps − skip_steps:
  /// [:, m, :, i, j] = s · W_{skip+1+m} c_{i,j} predicts the target at row i + skip + 1 + m.
  torch::Tensor predict(const torch::Tensor& z);
  /// Targets t (B, T, Gh, Gw) of z.
  torch::Tensor targets(const torch::Tensor& z);
  /// The loss of a grid z (B, D, Gh, Gw) and its metrics (everything of step() but the probe).
  StepOutput contrastive_loss(const torch::Tensor& z);

  nn::PatchEncoder encoder{nullptr};
  nn::MaskedContext context{nullptr};
  torch::nn::Conv2d target{nullptr};     // W_t, absent when target_dim is 0
  torch::nn::Conv2d predictor{nullptr};  // W_k for all k: K′·T output channels
  OnlineProbe probe{nullptr};

 private:
  void check_grid(int64_t height, int64_t width) const;
  CpcImageConfig config_;
};

}  // namespace contra::method
