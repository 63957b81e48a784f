#pragma once
/// SwAV (Caron, Misra, Mairal, Goyal, Bojanowski & Joulin 2020, "Unsupervised Learning of Visual
/// Features by Contrasting Cluster Assignments", arXiv:2006.09882; the official facebookresearch
/// code): online clustering — each view's code over K learnable prototypes is predicted from the
/// other views.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"

namespace contra::method {

/// The `method:` section of `name: swav`. The paper's ImageNet values: projection 2048 → 2048 →
/// 128, 3000 prototypes, τ 0.1, ε 0.05, 3 Sinkhorn iterations, codes of the two large crops,
/// prototypes frozen for the first epoch (313 iterations at batch 4096), a 3840-feature queue from
/// epoch 15 when the batch is 256.
///
///   method:
///     name: swav
///     encoder: {type: small_cnn, width: 32}
///     projection: {hidden: 512, out: 128}
///     prototypes: 100
///     queue_length: 1024
struct SwavConfig {
  nn::ImageEncoderConfig encoder;
  ProjectionConfig projection{/*hidden=*/0, /*out=*/128, /*layers=*/2, /*batch_norm=*/true};
  int64_t prototypes = 3000;
  double temperature = 0.1;
  double epsilon = 0.05;
  int64_t sinkhorn_iterations = 3;
  std::vector<int64_t> crops_for_assign{0, 1};
  int64_t freeze_prototypes_steps = 313;
  /// Global queue length (0 = no queue); each of W ranks keeps queue_length / W features per
  /// assigned view. Must be a multiple of the global batch.
  int64_t queue_length = 0;
  int64_t queue_start_step = 0;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone f(·)");
    v("projection", projection, "the projection head g(·) (its output is L2-normalised)");
    v("prototypes", prototypes, "number of prototypes K (>= 2)");
    v("temperature", temperature, "softmax temperature τ of the predictions (> 0)");
    v("epsilon", epsilon, "Sinkhorn-Knopp entropic regularisation ε (> 0)");
    v("sinkhorn_iterations", sinkhorn_iterations, "Sinkhorn-Knopp iterations (>= 1)");
    v("crops_for_assign", crops_for_assign, "views whose codes are predicted (the large crops)");
    v("freeze_prototypes_steps", freeze_prototypes_steps,
      "optimizer steps during which the prototypes get no gradient (>= 0)");
    v("queue_length", queue_length,
      "features kept from earlier batches for the codes (0 = none; a multiple of the global "
      "batch)");
    v("queue_start_step", queue_start_step, "step from which the queue is filled (>= 0)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached features alongside (online_acc)");
  }
  void validate() const;
};

/// SwAV. Per step, for V views (the `views` large crops first, then the small multi-crop views):
///   z_v = normalize(g(f(x_v)))            views of one resolution go through f as one batch
///   s_v = z_v Cᵀ                          C (K, D): the prototypes, unit rows
///   q_a = SinkhornKnopp([queue_a Cᵀ; s_a])[last B rows]   a ∈ crops_for_assign, no gradient,
///                                                         over the batches of all ranks
///   loss = 1/|A| Σ_a 1/(V−1) Σ_{v≠a} −(1/B) Σ_b Σ_k q_a,bk log softmax(s_v,b / τ)_k
/// Before each forward the prototypes are normalised (after every optimizer step and at
/// construction); during the first `freeze_prototypes_steps` steps the scores use C detached, so
/// the prototypes get no gradient at all (the official code sets their grad to None). The queue of
/// each assigned view, filled from `queue_start_step` with the batch's z (newest first), joins the
/// Sinkhorn input once full. Prototypes and queues are module state, saved with checkpoints.
///
/// Batch: `views` = V >= 2 views; `labels` only for the online probe. Metrics: swav_loss,
/// prototypes_used (fraction of prototypes that are some item's most likely code), queue_used
/// (0/1). features(x, "encoder") = f(x); "projection" = normalize(g(f(x))).
class Swav : public Method {
 public:
  explicit Swav(SwavConfig config);
  StepOutput step(const Batch& batch) override;
  void after_optimizer_step(std::int64_t step) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "swav"; }
  const SwavConfig& config() const { return config_; }
  /// ConfigError unless views >= 2 (counting the small ones), every assigned view is a large one,
  /// and the queue takes whole global batches (queue_length a multiple of batch · ranks).
  void check_batch(int64_t batch_size, int64_t views, int64_t small_views, int64_t ranks) const;
  /// Normalises the prototype rows to unit length (no gradient).
  void normalize_prototypes();

  torch::nn::AnyModule encoder;
  nn::ProjectionHead projector{nullptr};
  torch::nn::Linear prototypes{nullptr};  // K × D weight, no bias
  OnlineProbe probe{nullptr};
  /// (|A|, queue_length / W, D): per assigned view, the newest features first.
  torch::Tensor queue;
  /// Features in the queue (per view, this rank), and optimizer steps done.
  torch::Tensor queue_filled, steps_done;

 private:
  SwavConfig config_;
};

}  // namespace contra::method
