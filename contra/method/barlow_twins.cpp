#include "contra/method/barlow_twins.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/barlow_twins.h"

namespace contra::method {

void BarlowTwinsConfig::validate() const {
  encoder.validate();
  projection.validate();
  check<ConfigError>(lambd >= 0, "lambd: must be >= 0 (0 = 0.0051 × 8192 / projection.out), got {}",
                     lambd);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

double BarlowTwinsConfig::resolved_lambda() const {
  return lambd > 0 ? lambd : 0.0051 * 8192.0 / static_cast<double>(projection.out);
}

BarlowTwins::BarlowTwins(BarlowTwinsConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  projector = register_module("projector", nn::ProjectionHead(config_.projection.options(d)));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
}

void BarlowTwins::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(views == 2, "augment.views: Barlow Twins uses exactly 2 views, got {}", views);
  check<ConfigError>(batch_size >= 2,
                     "train.batch_size: Barlow Twins needs >= 2 images (batch statistics), got {}",
                     batch_size);
}

StepOutput BarlowTwins::step(const Batch& batch) {
  check<DataError>(batch.views.size() == 2, "barlow_twins: the batch must carry 2 views, got {}",
                   batch.views.size());
  check<DataError>(batch.views[0].sizes() == batch.views[1].sizes(),
                   "barlow_twins: the two views differ in shape");
  torch::Tensor h1 = encoder.forward(batch.views[0]), h2 = encoder.forward(batch.views[1]);
  torch::Tensor z1 = projector->forward(h1), z2 = projector->forward(h2);
  StepOutput out;
  out.loss = loss::functional::barlow_twins_global(
      z1, z2, loss::BarlowTwinsOptions().lambd(config_.resolved_lambda()));
  out.metrics["barlow_loss"] = out.loss.item<double>();
  if (probe) {
    torch::Tensor labels =
        batch.labels.defined() ? torch::cat({batch.labels, batch.labels}, 0) : torch::Tensor();
    out.loss = out.loss + probe->forward(torch::cat({h1, h2}, 0), labels, out.metrics);
  }
  return out;
}

torch::Tensor BarlowTwins::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "projection") return projector->forward(encoder.forward(input));
  throw ConfigError(
      "features: barlow_twins has 'encoder' (the representation) and 'projection', got '" + kind +
      "'");
}

}  // namespace contra::method
