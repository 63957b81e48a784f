#pragma once
/// BYOL (Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
/// Learning", arXiv:2006.07733): no negatives; an online network regresses a slowly moving target.
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

/// The `method:` section of `name: byol`. The paper's ImageNet values: projector 2048 → 4096 → 256,
/// predictor 256 → 4096 → 256 (both Linear–BN–ReLU–Linear), τ_base 0.996.
///
///   method:
///     name: byol
///     encoder: {type: small_cnn, width: 32}
///     projection: {hidden: 512, out: 128}
///     predictor: {hidden: 512}
///     tau_base: 0.996
struct ByolConfig {
  nn::ImageEncoderConfig encoder;
  ProjectionConfig projection{/*hidden=*/4096, /*out=*/256, /*layers=*/2, /*batch_norm=*/true};
  /// The predictor q: its input is projection.out and its `out` must equal it.
  ProjectionConfig predictor{/*hidden=*/4096, /*out=*/256, /*layers=*/2, /*batch_norm=*/true};
  double tau_base = 0.996;
  /// K of the τ schedule; 0 = the recipe's train.steps.
  int64_t total_steps = 0;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·) (online; the target is its EMA copy)");
    v("projection", projection, "the projector g(·) (online; the target is its EMA copy)");
    v("predictor", predictor, "the online predictor q(·) (its out must equal projection.out)");
    v("tau_base", tau_base, "τ_base of the target EMA, rising to 1 on a cosine schedule, [0, 1]");
    v("total_steps", total_steps, "K of the τ schedule (0 = train.steps)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
};

/// BYOL. Per step, for two views v, v′ of each image:
///   online  y = f_θ(v), z = g_θ(y), p = q_θ(z)        (and p′ for v′), with gradients
///   target  z′_ξ = g_ξ(f_ξ(v′)), z_ξ = g_ξ(f_ξ(v))     no gradients
///   loss = ‖p̂ − ẑ′_ξ‖² + ‖p̂′ − ẑ_ξ‖²  (each 2 − 2·cos, mean over the batch; the paper's L + L̃)
/// After each optimizer step k (0-based, of K): ξ ← τ_k ξ + (1 − τ_k) θ for the encoder and the
/// projector, τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (the paper's schedule, τ_0 = τ_base → 1).
/// BN running statistics of the target are its own. Each view goes through the networks as its own
/// batch (per-view BatchNorm statistics, as the official implementation).
///
/// The target networks start as exact copies with requires_grad off; they are module state, saved
/// and restored by checkpoints. Distributed runs need no gathering (the loss is per image);
/// train.sync_batch_norm gives the paper's cross-replica BN in online and target networks.
///
/// Batch: `views` = {v, v′}; `labels` only for the online probe. Metrics: byol_loss, pos_cos (mean
/// cos(p, z_ξ) over both directions), tau; probe_loss, online_acc with the probe.
/// features(x, "encoder") = f_θ(x); "projection" = ĝ_θ(f_θ(x)); "target_encoder" = f_ξ(x).
class Byol : public Method {
 public:
  explicit Byol(ByolConfig config);
  StepOutput step(const Batch& batch) override;
  void after_optimizer_step(std::int64_t step) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  /// The online encoder, projector, predictor and probe.
  std::vector<torch::Tensor> trainable_parameters() override;
  std::string name() const override { return "byol"; }
  const ByolConfig& config() const { return config_; }
  /// ConfigError unless 2 views and a batch of >= 2 (BatchNorm).
  void check_batch(int64_t batch_size, int64_t views) const;
  /// Sets K of the τ schedule when the config leaves it 0 (the recipe passes train.steps).
  void set_total_steps(int64_t steps);
  /// τ after optimizer step k (0-based).
  double tau(int64_t step) const;
  /// ξ ← τ ξ + (1 − τ) θ (what after_optimizer_step does with τ = tau(step)).
  void ema_update(double tau);

  torch::nn::AnyModule encoder, target_encoder;
  nn::ProjectionHead projector{nullptr}, target_projector{nullptr}, predictor{nullptr};
  OnlineProbe probe{nullptr};
  /// Optimizer steps done (a buffer, so the logged τ is right after a resume).
  torch::Tensor steps_done;

 private:
  ByolConfig config_;
  int64_t total_steps_ = 0;
};

}  // namespace contra::method
