#pragma once
/// SimCLR (Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of
/// Visual Representations", arXiv:2002.05709).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"

namespace contra::method {

/// The `method:` section of `name: simclr`.
///
///   method:
///     name: simclr
///     encoder: {type: small_cnn, in_channels: 1, width: 32}
///     projection: {hidden: 0, out: 128, layers: 2, batch_norm: true}
///     temperature: 0.5
///     online_probe_classes: 10
struct SimClrConfig {
  nn::ImageEncoderConfig encoder;
  ProjectionConfig projection;
  double temperature = 0.5;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·)");
    v("projection", projection, "the MLP head g(·)");
    v("temperature", temperature, "NT-Xent temperature τ (> 0; the paper's best 0.1–0.5)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
};

/// SimCLR: two augmented views x̃ᵢ, x̃ⱼ of each image, h = f(x̃), z = g(h), and NT-Xent over the 2N
/// views:  ℓ(i, j) = −log exp(sim(zᵢ, zⱼ)/τ) / Σ_{k≠i} exp(sim(zᵢ, z_k)/τ),  averaged over all 2N
/// anchors (sim = cosine). The two views go through the encoder as one batch of 2N, so BatchNorm
/// sees both views, as in the paper's global BN.
///
/// Batch: `views` = {view 1, view 2} (each (N, C, H, W)), `labels` only for the online probe.
/// Metrics: instance_acc (the positive is the most similar of the 2N − 1 others), pos_sim and
/// neg_sim (mean cosine of positive / negative pairs), probe_loss and online_acc when the probe is
/// on. features(x, "encoder") = h (N, D), the representation probes use; "projection" = z / ‖z‖.
///
///   SimClr m(config);
///   Batch b;
///   b.views = {view1, view2};
///   StepOutput out = m.step(b);   // out.loss.backward(); optimizer step
class SimClr : public Method {
 public:
  explicit SimClr(SimClrConfig config);
  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "simclr"; }
  const SimClrConfig& config() const { return config_; }
  /// Throws ConfigError when the batch cannot be trained: fewer than 2 items (BatchNorm, and no
  /// negatives), or a view count other than 2.
  void check_batch(int64_t batch_size, int64_t views) const;

  torch::nn::AnyModule encoder;
  nn::ProjectionHead head{nullptr};
  OnlineProbe probe{nullptr};

 private:
  SimClrConfig config_;
};

}  // namespace contra::method
