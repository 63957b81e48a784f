#include "contra/method/moco.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/dist/collectives.h"
#include "contra/nn/batch_norm.h"

namespace contra::method {

namespace F = torch::nn::functional;

void MocoConfig::validate() const {
  encoder.validate();
  check<ConfigError>(dim > 0, "dim: must be > 0, got {}", dim);
  check<ConfigError>(queue_size > 0, "queue_size: must be > 0, got {}", queue_size);
  check<ConfigError>(momentum >= 0 && momentum < 1, "momentum: must be in [0, 1), got {}",
                     momentum);
  check<ConfigError>(temperature > 0, "temperature: must be > 0, got {}", temperature);
  check<ConfigError>(mlp_hidden >= 0, "mlp_hidden: must be >= 0, got {}", mlp_hidden);
  check<ConfigError>(bn_splits >= 1, "bn_splits: must be >= 1, got {}", bn_splits);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

Moco::Moco(MocoConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder_q = nn::make_image_encoder(config_.encoder);
  register_module("encoder_q", encoder_q.ptr());
  // Official: mlp=False replaces the classifier by fc = Linear(d, dim); mlp=True by
  // Linear(d, d) → ReLU → fc. No BatchNorm in either head.
  head_q = register_module(
      "head_q",
      nn::ProjectionHead(
          nn::ProjectionHeadOptions(d, config_.mlp_hidden > 0 ? config_.mlp_hidden : d, config_.dim)
              .layers(config_.mlp ? 2 : 1)
              .batch_norm(false)));
  // The key encoder: an exact copy, gradients off.
  encoder_k = encoder_q.clone();
  register_module("encoder_k", encoder_k.ptr());
  head_k =
      register_module("head_k", std::dynamic_pointer_cast<nn::ProjectionHeadImpl>(head_q->clone()));
  for (auto& p : encoder_k.ptr()->parameters()) p.set_requires_grad(false);
  for (auto& p : head_k->parameters()) p.set_requires_grad(false);
  queue =
      register_module("queue", nn::KeyQueue(nn::KeyQueueOptions(config_.dim, config_.queue_size)));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
}

void Moco::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(views == 2, "augment.views: MoCo uses exactly 2 views, got {}", views);
  check<ConfigError>(batch_size >= 2, "train.batch_size: MoCo needs >= 2 images, got {}",
                     batch_size);
  check<ConfigError>(batch_size % config_.bn_splits == 0,
                     "train.batch_size: {} is not a multiple of method.bn_splits ({}); use a "
                     "batch of k·{} images",
                     batch_size, config_.bn_splits, config_.bn_splits);
  const int64_t ranks = dist::world().size();
  check<ConfigError>(batch_size * ranks <= config_.queue_size,
                     "train.batch_size: {} × {} rank(s) exceeds method.queue_size ({}); the queue "
                     "must hold at least one global batch of keys",
                     batch_size, ranks, config_.queue_size);
}

std::vector<torch::Tensor> Moco::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters(true)) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

torch::Tensor Moco::keys(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  // The key encoder keeps per-rank BatchNorm even with train.sync_batch_norm: shuffle-BN is how
  // MoCo keeps a query and its key from sharing statistics, and synchronised statistics would undo
  // it.
  nn::set_sync_batch_norm(*encoder_k.ptr(), false);
  nn::set_sync_batch_norm(*head_k, false);
  const int64_t splits = config_.bn_splits;
  if (!config_.shuffle_bn) {
    return F::normalize(head_k->forward(encode_in_splits(encoder_k, images, splits)),
                        F::NormalizeFuncOptions().dim(1));
  }
  // Official _batch_shuffle_ddp / _batch_unshuffle_ddp: across the ranks of a distributed run
  // (each rank's BN then sees a random part of the global batch), and with the chunks of the
  // shuffled batch in place of devices within a rank.
  dist::Shuffled shuffled = dist::batch_shuffle(images);
  torch::Tensor k =
      F::normalize(head_k->forward(encode_in_splits(encoder_k, shuffled.local, splits)),
                   F::NormalizeFuncOptions().dim(1));
  return dist::batch_unshuffle(k, shuffled.unshuffle);
}

StepOutput Moco::step(const Batch& batch) {
  check<DataError>(batch.views.size() == 2, "moco: the batch must carry 2 views, got {}",
                   batch.views.size());
  const torch::Tensor& im_q = batch.views[0];
  const torch::Tensor& im_k = batch.views[1];
  check<DataError>(im_q.sizes() == im_k.sizes(), "moco: the two views differ in shape");
  const int64_t ranks = dist::world().size();
  check<DataError>(im_q.size(0) * ranks <= config_.queue_size,
                   "moco: {} keys per step ({} per rank × {} ranks) exceed queue_size {}",
                   im_q.size(0) * ranks, im_q.size(0), ranks, config_.queue_size);
  torch::Tensor h = encode_in_splits(encoder_q, im_q, config_.bn_splits);
  torch::Tensor q = F::normalize(head_q->forward(h), F::NormalizeFuncOptions().dim(1));
  torch::Tensor k = keys(im_k);
  last_keys = k;
  torch::Tensor l_pos = (q * k).sum(1, /*keepdim=*/true);  // (N, 1)
  // The official code multiplies by queue.clone().detach(): the queue is rewritten in place below.
  torch::Tensor negatives = queue->queue.clone().detach();  // (dim, K)
  torch::Tensor l_neg = torch::mm(q, negatives);            // (N, K)
  torch::Tensor logits = torch::cat({l_pos, l_neg}, 1) / config_.temperature;
  torch::Tensor labels = torch::zeros({q.size(0)}, logits.options().dtype(torch::kLong));
  StepOutput out;
  out.loss = F::cross_entropy(logits, labels);
  out.metrics["contrastive_loss"] = out.loss.item<double>();
  out.metrics["instance_acc"] = top1_of_column0(logits.detach());
  out.metrics["pos_sim"] = l_pos.detach().mean().item<double>();
  out.metrics["neg_sim"] = l_neg.detach().mean().item<double>();
  if (probe) out.loss = out.loss + probe->forward(h, batch.labels, out.metrics);
  // Every rank enqueues the keys of all ranks, so the queues stay identical.
  queue->dequeue_and_enqueue(dist::concat_all_gather(k));
  return out;
}

void Moco::momentum_update(double m) {
  ema_update(encoder_q.ptr()->parameters(), encoder_k.ptr()->parameters(), m, "moco");
  ema_update(head_q->parameters(), head_k->parameters(), m, "moco");
}

void Moco::after_optimizer_step(std::int64_t /*step*/) { momentum_update(config_.momentum); }

torch::Tensor Moco::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder_q.forward(input);
  if (kind == "projection") {
    return F::normalize(head_q->forward(encoder_q.forward(input)),
                        F::NormalizeFuncOptions().dim(1));
  }
  if (kind == "key_encoder") return encoder_k.forward(input);
  throw ConfigError(
      "features: moco has 'encoder' (the representation), 'projection' and 'key_encoder', got '" +
      kind + "'");
}

}  // namespace contra::method
