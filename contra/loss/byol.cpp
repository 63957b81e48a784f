#include "contra/loss/byol.h"

#include <torch/torch.h>

namespace contra::loss {

std::string_view to_string(ByolForm form) {
  return form == ByolForm::kNormalizedMse ? "normalized_mse" : "negative_cosine";
}

ByolForm parse_byol_form(std::string_view text, std::string_view key) {
  for (auto f : {ByolForm::kNormalizedMse, ByolForm::kNegativeCosine}) {
    if (text == to_string(f)) return f;
  }
  throw ConfigError(fmt::format(
      "{}: unknown BYOL loss form (got '{}', expected normalized_mse or negative_cosine)", key,
      text));
}

namespace functional {

torch::Tensor byol(const torch::Tensor& prediction, const torch::Tensor& target,
                   const ByolOptions& options) {
  detail::check_embeddings(prediction, "byol", "prediction");
  detail::check_same_shape(prediction, target, "byol", "prediction", "target");
  torch::Tensor cos = (l2_normalize(prediction) * l2_normalize(target)).sum(1);
  return options.form() == ByolForm::kNormalizedMse ? (2 - 2 * cos).mean() : (-cos).mean();
}

}  // namespace functional

ByolImpl::ByolImpl(ByolOptions options_) : options(std::move(options_)) {}

torch::Tensor ByolImpl::forward(const torch::Tensor& prediction, const torch::Tensor& target) {
  return functional::byol(prediction, target, options);
}

}  // namespace contra::loss
