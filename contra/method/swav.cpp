#include "contra/method/swav.h"

#include <set>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/dist/group.h"
#include "contra/loss/swav.h"

namespace contra::method {

void SwavConfig::validate() const {
  encoder.validate();
  projection.validate();
  check<ConfigError>(prototypes >= 2, "prototypes: must be >= 2, got {}", prototypes);
  check<ConfigError>(temperature > 0, "temperature: must be > 0, got {}", temperature);
  check<ConfigError>(epsilon > 0, "epsilon: must be > 0, got {}", epsilon);
  check<ConfigError>(sinkhorn_iterations >= 1, "sinkhorn_iterations: must be >= 1, got {}",
                     sinkhorn_iterations);
  check<ConfigError>(!crops_for_assign.empty(), "crops_for_assign: must name at least one view");
  std::set<int64_t> seen;
  for (int64_t a : crops_for_assign) {
    check<ConfigError>(a >= 0, "crops_for_assign: view indices must be >= 0, got {}", a);
    check<ConfigError>(seen.insert(a).second, "crops_for_assign: view {} is named twice", a);
  }
  check<ConfigError>(freeze_prototypes_steps >= 0, "freeze_prototypes_steps: must be >= 0, got {}",
                     freeze_prototypes_steps);
  check<ConfigError>(queue_length >= 0, "queue_length: must be >= 0 (0 = no queue), got {}",
                     queue_length);
  check<ConfigError>(queue_start_step >= 0, "queue_start_step: must be >= 0, got {}",
                     queue_start_step);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

Swav::Swav(SwavConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  projector = register_module("projector", nn::ProjectionHead(config_.projection.options(d)));
  const int64_t dim = config_.projection.out;
  prototypes = register_module(
      "prototypes",
      torch::nn::Linear(torch::nn::LinearOptions(dim, config_.prototypes).bias(false)));
  normalize_prototypes();
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
  const int64_t ranks = dist::world().size();
  const int64_t per_rank = config_.queue_length / ranks;
  queue = register_buffer(
      "queue",
      torch::zeros({static_cast<int64_t>(config_.crops_for_assign.size()), per_rank, dim}));
  queue_filled = register_buffer("queue_filled", torch::zeros({}, torch::kLong));
  steps_done = register_buffer("steps_done", torch::zeros({}, torch::kLong));
}

void Swav::normalize_prototypes() {
  torch::NoGradGuard no_grad;
  torch::Tensor w = prototypes->weight;
  w.copy_(torch::nn::functional::normalize(
      w, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1)));
}

void Swav::check_batch(int64_t batch_size, int64_t views, int64_t small_views,
                       int64_t ranks) const {
  check<ConfigError>(views + small_views >= 2,
                     "augment.views: SwAV needs at least 2 views (views + small_views), got {}",
                     views + small_views);
  for (int64_t a : config_.crops_for_assign) {
    check<ConfigError>(a < views,
                       "method.crops_for_assign: view {} is not one of the {} full-size views "
                       "(augment.views); codes come from the large crops",
                       a, views);
  }
  check<ConfigError>(batch_size >= 2,
                     "train.batch_size: SwAV needs >= 2 images (BatchNorm, Sinkhorn), got {}",
                     batch_size);
  if (config_.queue_length > 0) {
    check<ConfigError>(
        config_.queue_length % (batch_size * ranks) == 0,
        "method.queue_length: {} is not a multiple of the global batch {} "
        "(train.batch_size {} x {} ranks); try {}",
        config_.queue_length, batch_size * ranks, batch_size, ranks,
        std::max<int64_t>(1, config_.queue_length / (batch_size * ranks)) * batch_size * ranks);
    check<ConfigError>(queue.size(1) == config_.queue_length / ranks,
                       "method.queue_length: the queue was built for {} ranks, this run has {}",
                       config_.queue_length / std::max<int64_t>(queue.size(1), 1), ranks);
  }
}

StepOutput Swav::step(const Batch& batch) {
  const auto views = static_cast<int64_t>(batch.views.size());
  check<DataError>(views >= 2, "swav: the batch must carry at least 2 views, got {}", views);
  const int64_t b = batch.views[0].size(0);
  for (int64_t a : config_.crops_for_assign) {
    check<DataError>(a < views, "swav: crops_for_assign names view {} but the batch has {} views",
                     a, views);
  }
  // Views of one resolution go through the backbone together (BatchNorm statistics per
  // resolution, as the official code); the head then sees every view at once.
  std::vector<torch::Tensor> hs;
  for (int64_t start = 0; start < views;) {
    int64_t end = start + 1;
    while (end < views && batch.views[end].sizes() == batch.views[start].sizes()) ++end;
    check<DataError>(batch.views[start].size(0) == b, "swav: view {} has {} images, view 0 has {}",
                     start, batch.views[start].size(0), b);
    std::vector<torch::Tensor> group(batch.views.begin() + start, batch.views.begin() + end);
    hs.push_back(encoder.forward(torch::cat(group, 0)));
    start = end;
  }
  torch::Tensor h = torch::cat(hs, 0);  // (V·B, D_h) in view order
  torch::Tensor z = torch::nn::functional::normalize(
      projector->forward(h), torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
  const bool frozen = steps_done.item<int64_t>() < config_.freeze_prototypes_steps;
  torch::Tensor w = frozen ? prototypes->weight.detach() : prototypes->weight;
  torch::Tensor scores = z.mm(w.t());  // (V·B, K)

  const bool has_queue = config_.queue_length > 0 && queue.size(1) > 0;
  const bool use_queue = has_queue && queue_filled.item<int64_t>() >= queue.size(1);
  const bool fill_queue = has_queue && steps_done.item<int64_t>() >= config_.queue_start_step;
  check<DataError>(!has_queue || queue.size(1) % b == 0,
                   "swav: a batch of {} does not fit the queue of {} per rank", b, queue.size(1));
  torch::Tensor log_p = torch::log_softmax(scores / config_.temperature, 1);
  torch::Tensor loss = torch::zeros({}, scores.options());
  double used = 0;
  for (std::size_t ai = 0; ai < config_.crops_for_assign.size(); ++ai) {
    const int64_t a = config_.crops_for_assign[ai];
    torch::Tensor q;
    {
      torch::NoGradGuard no_grad;
      torch::Tensor out = scores.narrow(0, a * b, b).detach();
      if (use_queue) out = torch::cat({queue[ai].mm(prototypes->weight.detach().t()), out}, 0);
      if (fill_queue) {
        torch::Tensor kept = queue[ai].narrow(0, 0, queue.size(1) - b).clone();
        queue[ai].narrow(0, b, queue.size(1) - b).copy_(kept);
        queue[ai].narrow(0, 0, b).copy_(z.narrow(0, a * b, b).detach());
      }
      q = loss::functional::sinkhorn_knopp_global(out, config_.epsilon, config_.sinkhorn_iterations)
              .narrow(0, out.size(0) - b, b);
      if (ai == 0) {
        used = torch::bincount(q.argmax(1), {}, config_.prototypes).gt(0).sum().item<double>() /
               static_cast<double>(config_.prototypes);
      }
    }
    torch::Tensor sub = torch::zeros({}, scores.options());
    for (int64_t v = 0; v < views; ++v) {
      if (v == a) continue;
      sub = sub - (q * log_p.narrow(0, v * b, b)).sum(1).mean();
    }
    loss = loss + sub / static_cast<double>(views - 1);
  }
  loss = loss / static_cast<double>(config_.crops_for_assign.size());
  if (fill_queue) {
    torch::NoGradGuard no_grad;
    queue_filled.fill_(std::min(queue_filled.item<int64_t>() + b, queue.size(1)));
  }
  StepOutput out;
  out.loss = loss;
  out.metrics["swav_loss"] = loss.item<double>();
  out.metrics["prototypes_used"] = used;
  out.metrics["queue_used"] = use_queue ? 1.0 : 0.0;
  if (probe) {
    std::vector<torch::Tensor> feats, labels;
    for (int64_t a : config_.crops_for_assign) {
      feats.push_back(h.narrow(0, a * b, b));
      if (batch.labels.defined()) labels.push_back(batch.labels);
    }
    out.loss = out.loss + probe->forward(torch::cat(feats, 0),
                                         labels.empty() ? torch::Tensor() : torch::cat(labels, 0),
                                         out.metrics);
  }
  return out;
}

void Swav::after_optimizer_step(std::int64_t /*step*/) {
  normalize_prototypes();
  torch::NoGradGuard no_grad;
  steps_done.add_(1);
}

torch::Tensor Swav::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "projection") {
    return torch::nn::functional::normalize(
        projector->forward(encoder.forward(input)),
        torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
  }
  throw ConfigError("features: swav has 'encoder' (the representation) and 'projection', got '" +
                    kind + "'");
}

}  // namespace contra::method
