#pragma once
/// Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny 2021, "Barlow Twins: Self-Supervised Learning
/// via Redundancy Reduction", arXiv:2103.03230).
#include <cstdint>
#include <string>

#include <torch/nn/modules/container/any.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"

namespace contra::method {

/// The `method:` section of `name: barlow_twins`. The paper's ImageNet projector is three Linear
/// layers of 8192 (Linear–BN–ReLU twice, then Linear) and λ = 0.0051.
///
///   method:
///     name: barlow_twins
///     encoder: {type: small_cnn, width: 32}
///     projection: {hidden: 512, out: 512, layers: 3}
///     lambd: 0            # 0 = 0.0051 × 8192 / projection.out
struct BarlowTwinsConfig {
  nn::ImageEncoderConfig encoder;
  ProjectionConfig projection{/*hidden=*/8192, /*out=*/8192, /*layers=*/3, /*batch_norm=*/true};
  /// λ of the off-diagonal term; 0 = the paper's 0.0051 scaled to the width, 0.0051 × 8192 / D
  /// (the off-diagonal sum has D² − D terms against D on the diagonal).
  double lambd = 0;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·)");
    v("projection", projection, "the projector (the paper: 3 layers of 8192)");
    v("lambd", lambd, "off-diagonal weight λ (>= 0; 0 = 0.0051 × 8192 / projection.out)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
  /// λ after the 0 = auto rule.
  double resolved_lambda() const;
};

/// Barlow Twins. Per step, for two views: z = g(f(v)), z′ = g(f(v′)) (each view its own batch, as
/// the official code), and the `barlow_twins` loss of docs/losses.md: the cross-correlation C of
/// the batch-standardised z, z′ pushed to the identity, ℓ = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij².
/// Distributed: the standardisation and C are over the global batch (barlow_twins_global), as the
/// official code's SyncBatchNorm and all_reduce of C.
///
/// Batch: `views` = {v, v′}; `labels` only for the online probe. Metrics: barlow_loss; probe_loss,
/// online_acc with the probe. features(x, "encoder") = f(x); "projection" = g(f(x)).
class BarlowTwins : public Method {
 public:
  explicit BarlowTwins(BarlowTwinsConfig config);
  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "barlow_twins"; }
  const BarlowTwinsConfig& config() const { return config_; }
  /// ConfigError unless 2 views and a batch of >= 2.
  void check_batch(int64_t batch_size, int64_t views) const;

  torch::nn::AnyModule encoder;
  nn::ProjectionHead projector{nullptr};
  OnlineProbe probe{nullptr};

 private:
  BarlowTwinsConfig config_;
};

}  // namespace contra::method
