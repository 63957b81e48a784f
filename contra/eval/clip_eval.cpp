#include "contra/eval/clip_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/captions.h"

namespace contra::eval {
namespace {
torch::Tensor unit(const torch::Tensor& x) {
  return torch::nn::functional::normalize(x.to(torch::kFloat32),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}
}  // namespace

torch::Tensor zero_shot_weights(const TextEmbedFn& embed, const std::vector<std::string>& classes,
                                const std::vector<std::string>& templates) {
  check<ConfigError>(!classes.empty(), "zero-shot: no class names");
  check<ConfigError>(!templates.empty(), "zero-shot: no prompt templates");
  std::vector<torch::Tensor> rows;
  for (const auto& c : classes) {
    std::vector<std::string> prompts;
    for (const auto& t : templates) prompts.push_back(data::fill_template(t, c));
    rows.push_back(unit(unit(embed(prompts)).mean(0)));
  }
  return torch::stack(rows);
}

ZeroShotResult zero_shot(const torch::Tensor& images, const torch::Tensor& labels,
                         const torch::Tensor& weights) {
  TORCH_CHECK(images.dim() == 2 && weights.dim() == 2 && images.size(1) == weights.size(1),
              "zero_shot: images (N, D) and weights (C, D) must share D");
  TORCH_CHECK(labels.numel() == images.size(0), "zero_shot: one label per image");
  ZeroShotResult r;
  r.images = images.size(0);
  r.predictions =
      torch::matmul(unit(images), unit(weights).t().to(images.device())).argmax(1).to(torch::kCPU);
  auto lab = labels.to(torch::kCPU).to(torch::kLong);
  auto correct = r.predictions.eq(lab).to(torch::kFloat64);
  r.accuracy = r.images > 0 ? correct.mean().item<double>() : 0.0;
  for (int64_t c = 0; c < weights.size(0); ++c) {
    auto mask = lab.eq(c);
    const int64_t n = mask.sum().item<int64_t>();
    r.per_class.push_back(n > 0 ? correct.index({mask}).mean().item<double>()
                                : std::numeric_limits<double>::quiet_NaN());
  }
  return r;
}

std::map<std::int64_t, double> recall_at_k(const torch::Tensor& queries,
                                           const torch::Tensor& gallery,
                                           const torch::Tensor& relevant,
                                           const std::vector<std::int64_t>& ks) {
  TORCH_CHECK(queries.dim() == 2 && gallery.dim() == 2 && queries.size(1) == gallery.size(1),
              "recall_at_k: queries (Q, D) and gallery (G, D) must share D");
  TORCH_CHECK(relevant.dim() == 2 && relevant.size(0) == queries.size(0) &&
                  relevant.size(1) == gallery.size(0),
              "recall_at_k: relevant must be (Q, G)");
  check<ConfigError>(queries.size(0) > 0 && gallery.size(0) > 0,
                     "recall@k: empty queries or gallery");
  auto sim = torch::matmul(unit(queries).to(torch::kCPU), unit(gallery).to(torch::kCPU).t());
  const int64_t kmax = std::min<int64_t>(gallery.size(0), *std::max_element(ks.begin(), ks.end()));
  auto top = std::get<1>(sim.topk(kmax, 1));                            // (Q, kmax)
  auto hit = relevant.to(torch::kCPU).to(torch::kBool).gather(1, top);  // (Q, kmax)
  std::map<std::int64_t, double> out;
  for (int64_t k : ks) {
    check<ConfigError>(k >= 1, "recall@k: k must be >= 1 (got {})", k);
    const int64_t kk = std::min(k, kmax);
    out[k] = hit.slice(1, 0, kk).any(1).to(torch::kFloat64).mean().item<double>();
  }
  return out;
}

torch::Tensor same_label(const torch::Tensor& query_labels, const torch::Tensor& gallery_labels) {
  return query_labels.to(torch::kCPU)
      .view({-1, 1})
      .eq(gallery_labels.to(torch::kCPU).view({1, -1}));
}

torch::Tensor caption_probabilities(const torch::Tensor& image, const torch::Tensor& captions,
                                    double logit_scale) {
  auto sim = torch::matmul(unit(captions), unit(image.view({-1})));
  return (logit_scale * sim).softmax(0);
}

}  // namespace contra::eval
