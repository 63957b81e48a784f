#include "contra/method/byol.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/byol.h"

namespace contra::method {

namespace F = torch::nn::functional;

void ByolConfig::validate() const {
  encoder.validate();
  projection.validate();
  predictor.validate();
  check<ConfigError>(predictor.out == projection.out,
                     "predictor.out: must equal projection.out ({}) — the predictor maps the "
                     "projection space to itself — got {}",
                     projection.out, predictor.out);
  check<ConfigError>(tau_base >= 0 && tau_base <= 1, "tau_base: must be in [0, 1], got {}",
                     tau_base);
  check<ConfigError>(total_steps >= 0, "total_steps: must be >= 0 (0 = train.steps), got {}",
                     total_steps);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

Byol::Byol(ByolConfig config) : config_(std::move(config)), total_steps_(config_.total_steps) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  projector = register_module("projector", nn::ProjectionHead(config_.projection.options(d)));
  predictor = register_module(
      "predictor", nn::ProjectionHead(config_.predictor.options(config_.projection.out)));
  // The target: exact copies, gradients off, updated by EMA only.
  target_encoder = encoder.clone();
  register_module("target_encoder", target_encoder.ptr());
  target_projector = register_module(
      "target_projector", std::dynamic_pointer_cast<nn::ProjectionHeadImpl>(projector->clone()));
  for (auto& p : target_encoder.ptr()->parameters()) p.set_requires_grad(false);
  for (auto& p : target_projector->parameters()) p.set_requires_grad(false);
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
  steps_done = register_buffer("steps_done", torch::zeros({}, torch::kLong));
}

void Byol::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(views == 2, "augment.views: BYOL uses exactly 2 views, got {}", views);
  check<ConfigError>(batch_size >= 2,
                     "train.batch_size: BYOL needs >= 2 images (BatchNorm), got {}", batch_size);
}

void Byol::set_total_steps(int64_t steps) {
  check<ConfigError>(steps >= 1, "byol: total steps must be >= 1, got {}", steps);
  if (config_.total_steps == 0) total_steps_ = steps;
}

double Byol::tau(int64_t step) const {
  const double K = static_cast<double>(std::max<int64_t>(total_steps_, 1));
  const double k = std::min(static_cast<double>(step), K);
  return 1.0 - (1.0 - config_.tau_base) * (std::cos(M_PI * k / K) + 1.0) / 2.0;
}

std::vector<torch::Tensor> Byol::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& p : parameters(true)) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

StepOutput Byol::step(const Batch& batch) {
  check<DataError>(batch.views.size() == 2, "byol: the batch must carry 2 views, got {}",
                   batch.views.size());
  check<DataError>(batch.views[0].sizes() == batch.views[1].sizes(),
                   "byol: the two views differ in shape");
  // Online: each view its own batch (per-view BatchNorm statistics).
  torch::Tensor y1 = encoder.forward(batch.views[0]), y2 = encoder.forward(batch.views[1]);
  torch::Tensor p1 = predictor->forward(projector->forward(y1));
  torch::Tensor p2 = predictor->forward(projector->forward(y2));
  torch::Tensor t1, t2;
  {
    torch::NoGradGuard no_grad;
    t1 = target_projector->forward(target_encoder.forward(batch.views[0]));
    t2 = target_projector->forward(target_encoder.forward(batch.views[1]));
  }
  StepOutput out;
  // L + L̃: each prediction regresses the target projection of the other view.
  out.loss = loss::functional::byol(p1, t2) + loss::functional::byol(p2, t1);
  out.metrics["byol_loss"] = out.loss.item<double>();
  out.metrics["tau"] = tau(steps_done.item<int64_t>());  // the τ this step's update will use
  {
    torch::NoGradGuard no_grad;
    auto cos = [](const torch::Tensor& a, const torch::Tensor& b) {
      return F::cosine_similarity(a, b, F::CosineSimilarityFuncOptions().dim(1)).mean();
    };
    out.metrics["pos_cos"] = ((cos(p1, t2) + cos(p2, t1)) / 2).item<double>();
  }
  if (probe) {
    torch::Tensor labels =
        batch.labels.defined() ? torch::cat({batch.labels, batch.labels}, 0) : torch::Tensor();
    out.loss = out.loss + probe->forward(torch::cat({y1, y2}, 0), labels, out.metrics);
  }
  return out;
}

void Byol::ema_update(double t) {
  method::ema_update(encoder.ptr()->parameters(), target_encoder.ptr()->parameters(), t, "byol");
  method::ema_update(projector->parameters(), target_projector->parameters(), t, "byol");
}

void Byol::after_optimizer_step(std::int64_t step) {
  ema_update(tau(step));
  steps_done.fill_(step + 1);
}

torch::Tensor Byol::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "projection") {
    return F::normalize(projector->forward(encoder.forward(input)),
                        F::NormalizeFuncOptions().dim(1));
  }
  if (kind == "target_encoder") return target_encoder.forward(input);
  throw ConfigError(
      "features: byol has 'encoder' (the representation), 'projection' and 'target_encoder', "
      "got '" +
      kind + "'");
}

}  // namespace contra::method
