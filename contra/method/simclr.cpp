#include "contra/method/simclr.h"

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/nt_xent.h"

namespace contra::method {

void SimClrConfig::validate() const {
  encoder.validate();
  projection.validate();
  check<ConfigError>(temperature > 0, "temperature: must be > 0, got {}", temperature);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

SimClr::SimClr(SimClrConfig config) : config_(std::move(config)) {
  config_.validate();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  const int64_t d = config_.encoder.output_size();
  head = register_module("head", nn::ProjectionHead(config_.projection.options(d)));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
}

void SimClr::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(batch_size >= 2, "train.batch_size: SimCLR needs >= 2 images, got {}",
                     batch_size);
  check<ConfigError>(views == 2, "augment.views: SimCLR uses exactly 2 views, got {}", views);
}

StepOutput SimClr::step(const Batch& batch) {
  check<DataError>(batch.views.size() == 2, "simclr: the batch must carry 2 views, got {}",
                   batch.views.size());
  const torch::Tensor& v1 = batch.views[0];
  const torch::Tensor& v2 = batch.views[1];
  check<DataError>(v1.sizes() == v2.sizes(), "simclr: the two views differ in shape");
  const int64_t n = v1.size(0);
  torch::Tensor h = encoder.forward(torch::cat({v1, v2}, 0));  // (2N, D)
  torch::Tensor z = head->forward(h);
  StepOutput out;
  // Global negatives in a distributed run: every rank's views (nt_xent_global).
  out.loss = loss::functional::nt_xent_global(
      z.narrow(0, 0, n), z.narrow(0, n, n),
      loss::NTXentOptions().temperature(config_.temperature).normalize(true));
  {
    torch::NoGradGuard no_grad;
    torch::Tensor zn = torch::nn::functional::normalize(
        z.detach(), torch::nn::functional::NormalizeFuncOptions().dim(1));
    torch::Tensor sim = torch::mm(zn, zn.t());  // (2N, 2N)
    torch::Tensor partner =
        torch::arange(2 * n, sim.options().dtype(torch::kLong)).add(n) % (2 * n);
    torch::Tensor pos = sim.gather(1, partner.unsqueeze(1)).squeeze(1);
    sim.diagonal().fill_(-2.0);
    out.metrics["instance_acc"] =
        sim.argmax(1).eq(partner).to(torch::kDouble).mean().item<double>();
    out.metrics["pos_sim"] = pos.mean().item<double>();
    // Mean over the 2N·(2N − 2) negative pairs: all off-diagonal entries minus the positives.
    sim.diagonal().zero_();
    const double total = sim.sum().item<double>() - pos.sum().item<double>();
    out.metrics["neg_sim"] = total / static_cast<double>(2 * n * (2 * n - 2));
  }
  out.metrics["contrastive_loss"] = out.loss.item<double>();
  if (probe) {
    torch::Tensor labels =
        batch.labels.defined() ? torch::cat({batch.labels, batch.labels}, 0) : torch::Tensor();
    out.loss = out.loss + probe->forward(h, labels, out.metrics);
  }
  return out;
}

torch::Tensor SimClr::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "projection") {
    return torch::nn::functional::normalize(head->forward(encoder.forward(input)),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  }
  throw ConfigError("features: simclr has 'encoder' (the representation) and 'projection', got '" +
                    kind + "'");
}

}  // namespace contra::method
