#include "contra/loss/nce.h"

#include <cmath>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor nce(const torch::Tensor& data_scores, const torch::Tensor& data_log_noise,
                  const torch::Tensor& noise_scores, const torch::Tensor& noise_log_noise,
                  const NCEOptions& options) {
  detail::validate(options, "nce");
  detail::check_scores(data_scores, noise_scores, "nce");
  detail::check_same_shape(data_scores, data_log_noise, "nce", "data_scores", "data_log_noise");
  detail::check_same_shape(noise_scores, noise_log_noise, "nce", "noise_scores", "noise_log_noise");
  const double ratio =
      options.noise_ratio() > 0 ? options.noise_ratio() : static_cast<double>(noise_scores.size(1));
  const double log_ratio = std::log(ratio);
  torch::Tensor data_delta = data_scores.reshape({-1}) - data_log_noise.reshape({-1}) - log_ratio;
  torch::Tensor noise_delta = noise_scores - noise_log_noise - log_ratio;  // (N, K)
  // −log σ(∆) = softplus(−∆);  −log(1 − σ(∆)) = softplus(∆).
  return (torch::softplus(-data_delta) + torch::softplus(noise_delta).sum(1)).mean();
}

}  // namespace functional

NCEImpl::NCEImpl(NCEOptions options_) : options(std::move(options_)) {
  detail::validate(options, "nce");
}

torch::Tensor NCEImpl::forward(const torch::Tensor& data_scores,
                               const torch::Tensor& data_log_noise,
                               const torch::Tensor& noise_scores,
                               const torch::Tensor& noise_log_noise) {
  return functional::nce(data_scores, data_log_noise, noise_scores, noise_log_noise, options);
}

}  // namespace contra::loss
