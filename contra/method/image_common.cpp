#include "contra/method/image_common.h"

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::method {

void ProjectionConfig::validate() const {
  check<ConfigError>(hidden >= 0, "hidden: must be >= 0 (0 = the encoder's size), got {}", hidden);
  check<ConfigError>(out > 0, "out: must be > 0, got {}", out);
  check<ConfigError>(layers >= 1, "layers: must be >= 1, got {}", layers);
}

nn::ProjectionHeadOptions ProjectionConfig::options(int64_t in) const {
  return nn::ProjectionHeadOptions(in, hidden > 0 ? hidden : in, out)
      .layers(layers)
      .batch_norm(batch_norm);
}

OnlineProbeImpl::OnlineProbeImpl(int64_t features_, int64_t classes_)
    : features(features_), classes(classes_) {
  check<ConfigError>(classes >= 2, "online_probe_classes: must be 0 (off) or >= 2, got {}",
                     classes);
  reset();
}

void OnlineProbeImpl::reset() {
  linear = register_module("linear", torch::nn::Linear(features, classes));
}

torch::Tensor OnlineProbeImpl::forward(const torch::Tensor& h, const torch::Tensor& labels,
                                       std::map<std::string, double>& metrics) {
  if (!labels.defined()) return torch::zeros({}, h.options());
  torch::Tensor mask = labels >= 0;
  const int64_t labelled = mask.sum().item<int64_t>();
  if (labelled == 0) return torch::zeros({}, h.options());
  torch::Tensor x = h.detach().index({mask});
  torch::Tensor y = labels.index({mask});
  check<DataError>(y.max().item<int64_t>() < classes,
                   "online probe: label {} >= online_probe_classes ({})", y.max().item<int64_t>(),
                   classes);
  torch::Tensor logits = linear->forward(x);
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
  metrics["probe_loss"] = loss.item<double>();
  metrics["online_acc"] = logits.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
  return loss;
}

torch::Tensor encode_in_splits(torch::nn::AnyModule& encoder, const torch::Tensor& images,
                               int64_t splits) {
  if (splits <= 1) return encoder.forward(images);
  const int64_t n = images.size(0);
  check<ConfigError>(n % splits == 0,
                     "bn_splits: the batch ({}) must be a multiple of bn_splits ({})", n, splits);
  std::vector<torch::Tensor> parts;
  parts.reserve(static_cast<size_t>(splits));
  for (const auto& chunk : images.chunk(splits, 0)) parts.push_back(encoder.forward(chunk));
  return torch::cat(parts, 0);
}

double top1_of_column0(const torch::Tensor& logits) {
  torch::NoGradGuard no_grad;
  return logits.argmax(1).eq(0).to(torch::kDouble).mean().item<double>();
}

void ema_update(const std::vector<torch::Tensor>& online, const std::vector<torch::Tensor>& target,
                double m, const char* who) {
  TORCH_CHECK(online.size() == target.size(), who, ": the online and the slow networks differ");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < online.size(); ++i) {
    auto t = target[i];
    t.mul_(m).add_(online[i].detach(), 1.0 - m);
  }
}

}  // namespace contra::method
