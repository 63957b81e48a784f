#pragma once
/// MoCo v1/v2 (He, Fan, Wu, Xie & Girshick 2019, "Momentum Contrast for Unsupervised Visual
/// Representation Learning", arXiv:1911.05722; Chen, Fan, Girshick & He 2020, "Improved Baselines
/// with Momentum Contrastive Learning", arXiv:2003.04297), with the semantics of the official
/// facebookresearch/moco `MoCo(base_encoder, dim=128, K=65536, m=0.999, T=0.07, mlp=False)`.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/types.h>

#include "contra/method/image_common.h"
#include "contra/method/method.h"
#include "contra/nn/image_encoder.h"
#include "contra/nn/projection_head.h"
#include "contra/nn/queue.h"

namespace contra::method {

/// The `method:` section of `name: moco`. Defaults are the official constructor's.
///
///   method:
///     name: moco
///     encoder: {type: resnet18, in_channels: 3}
///     dim: 128            # feature dimension of q and k
///     queue_size: 65536   # K, negative keys
///     momentum: 0.999     # m of the key encoder
///     temperature: 0.07   # T
///     mlp: false          # true = MoCo v2's 2-layer MLP head
///     shuffle_bn: true
///     bn_splits: 8
struct MocoConfig {
  nn::ImageEncoderConfig encoder;
  int64_t dim = 128;
  int64_t queue_size = 65536;
  double momentum = 0.999;
  double temperature = 0.07;
  bool mlp = false;
  int64_t mlp_hidden = 0;
  bool shuffle_bn = true;
  int64_t bn_splits = 8;
  int64_t online_probe_classes = 0;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "the backbone (query encoder; the key encoder is its copy)");
    v("dim", dim, "feature dimension of queries and keys (official 128)");
    v("queue_size", queue_size, "K: negative keys in the queue (official 65536)");
    v("momentum", momentum, "m: key encoder ← m·key + (1 − m)·query after each step, [0, 1)");
    v("temperature", temperature, "T of the softmax (official 0.07; v2 0.2)");
    v("mlp", mlp, "false: fc head (v1); true: Linear–ReLU–Linear head (v2)");
    v("mlp_hidden", mlp_hidden, "hidden width of the MLP head (0 = the encoder's output size)");
    v("shuffle_bn", shuffle_bn,
      "compute keys on a shuffled batch (then unshuffle) so per-split BN cannot leak");
    v("bn_splits", bn_splits,
      "BatchNorm groups: the batch is encoded in this many chunks, each with its own statistics, "
      "as on that many devices (1 = one BN over the whole batch)");
    v("online_probe_classes", online_probe_classes,
      "0 = off; C = train a linear classifier on detached query features (online_acc)");
  }
  void validate() const;
};

/// MoCo. Per step, for query view x_q and key view x_k (two augmentations of the same images):
///   q = normalize(g_q(f_q(x_q)))                          (N, dim), with gradients
///   k = normalize(g_k(f_k(x_k)))                          (N, dim), no gradients; with shuffle_bn
///       the batch is permuted before the key encoder and the keys un-permuted after, so with
///       bn_splits > 1 a query and its key never share BN statistics
///   logits = [q·k, q·queue] / T  (N, 1 + K),  loss = cross-entropy with label 0
///   queue ← dequeue_and_enqueue(k)                        (at the end of the step, as official)
/// After the optimizer step: θ_k ← m·θ_k + (1 − m)·θ_q for every parameter of f and g (buffers — BN
/// running statistics — are the key encoder's own). The key encoder starts as an exact copy of the
/// query encoder with requires_grad off; it, the queue and its pointer are module state and saved
/// in checkpoints.
///
/// Distributed (docs/distributed.md): the keys of all ranks are gathered before the enqueue (every
/// rank's queue stays identical; queue_size must hold batch × ranks keys), and shuffle-BN permutes
/// the global batch across ranks (dist::batch_shuffle / batch_unshuffle), as the official
/// _batch_shuffle_ddp / _batch_unshuffle_ddp.
///
/// A queue size that is not a multiple of the batch is handled (the write wraps around; the
/// official code asserts divisibility, and for divisible sizes the result is identical); a batch
/// larger than the queue is a ConfigError (check_batch).
///
/// Batch: `views` = {query view, key view}; `labels` only for the online probe. Metrics:
/// instance_acc (top-1 of the positive among 1 + K), pos_sim (mean q·k), neg_sim (mean q·queue),
/// probe_loss and online_acc when on. features(x, "encoder") = f_q(x), the representation;
/// "projection" = q; "key_encoder" = f_k(x).
class Moco : public Method {
 public:
  explicit Moco(MocoConfig config);
  StepOutput step(const Batch& batch) override;
  void after_optimizer_step(std::int64_t step) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  /// The query encoder, its head and the probe (the key side is updated by momentum only).
  std::vector<torch::Tensor> trainable_parameters() override;
  std::string name() const override { return "moco"; }
  const MocoConfig& config() const { return config_; }
  /// ConfigError unless 2 views, batch >= 2, batch divisible by bn_splits and <= queue_size.
  void check_batch(int64_t batch_size, int64_t views) const;
  /// θ_k ← m·θ_k + (1 − m)·θ_q (what after_optimizer_step does), with m = `momentum`.
  void momentum_update(double momentum);

  torch::nn::AnyModule encoder_q, encoder_k;
  nn::ProjectionHead head_q{nullptr}, head_k{nullptr};
  nn::KeyQueue queue{nullptr};
  OnlineProbe probe{nullptr};

  /// The keys of the last step (for tests: shuffle/unshuffle).
  torch::Tensor last_keys;

 private:
  /// Keys of `images` with the configured shuffle-BN (no gradients).
  torch::Tensor keys(const torch::Tensor& images);
  MocoConfig config_;
};

}  // namespace contra::method
