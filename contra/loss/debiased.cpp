#include "contra/loss/debiased.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace contra::loss {

void DebiasedOptions::validate() const {
  detail::check_positive(temperature(), "temperature");
  check<ConfigError>(tau_plus() >= 0 && tau_plus() < 1, "tau_plus: must be in [0, 1) (got {})",
                     tau_plus());
}

namespace detail {

torch::Tensor debiased_rows(const torch::Tensor& positive_logit, const torch::Tensor& log_negatives,
                            int64_t num_negatives, double temperature, double tau_plus) {
  const double k = static_cast<double>(num_negatives);
  // log of the debiased sum A = (Σ neg − K τ⁺ pos) / (1 − τ⁺), −inf where A <= 0.
  torch::Tensor log_a;
  if (tau_plus == 0) {
    log_a = log_negatives;
  } else {
    // log(e^a − e^b) = a + log(−expm1(b − a)) for b < a.
    torch::Tensor diff = std::log(k * tau_plus) + positive_logit - log_negatives;
    torch::Tensor ok = diff < 0;
    torch::Tensor safe = diff.masked_fill(ok.logical_not(), -1.0);
    log_a = (log_negatives + torch::log(-torch::expm1(safe)) - std::log1p(-tau_plus))
                .masked_fill(ok.logical_not(), -std::numeric_limits<double>::infinity());
  }
  // Ng = max(A, K e^{−1/t}), in log space.
  torch::Tensor log_ng = log_a.clamp_min(std::log(k) - 1.0 / temperature);
  // −log(pos / (pos + Ng)) = log(1 + Ng/pos) = softplus(log Ng − log pos).
  return torch::softplus(log_ng - positive_logit);
}

torch::Tensor debiased_rows_linear(const torch::Tensor& positive_logit, const torch::Tensor& pos,
                                   const torch::Tensor& negatives, int64_t num_negatives,
                                   double temperature, double tau_plus) {
  const double k = static_cast<double>(num_negatives);
  torch::Tensor ng = ((negatives - (k * tau_plus) * pos) / (1 - tau_plus))
                         .clamp_min(k * std::exp(-1.0 / temperature));
  torch::Tensor denominator = pos + ng;  // (N)
  if (!(denominator.min().item<double>() > tiny_for(denominator)) ||
      !std::isfinite(denominator.max().item<double>())) {
    return {};
  }
  // −log(pos / (pos + Ng)) = log(pos + Ng) − s⁺/t
  return denominator.log() - positive_logit;
}

}  // namespace detail

namespace functional {

torch::Tensor debiased(const torch::Tensor& positive, const torch::Tensor& negative,
                       const DebiasedOptions& options) {
  detail::validate(options, "debiased");
  torch::Tensor pos = detail::check_scores(positive, negative, "debiased");
  const double t = options.temperature();
  torch::Tensor positive_logit = pos / t;
  torch::Tensor logits = negative / t;  // (N, K)
  torch::Tensor fast =
      detail::debiased_rows_linear(positive_logit, positive_logit.exp(), logits.exp().sum(1),
                                   negative.size(1), t, options.tau_plus());
  if (fast.defined()) return fast.mean();
  return detail::debiased_rows(positive_logit, torch::logsumexp(logits, 1), negative.size(1), t,
                               options.tau_plus())
      .mean();
}

}  // namespace functional

DebiasedImpl::DebiasedImpl(DebiasedOptions options_) : options(std::move(options_)) {
  detail::validate(options, "debiased");
}

torch::Tensor DebiasedImpl::forward(const torch::Tensor& positive, const torch::Tensor& negative) {
  return functional::debiased(positive, negative, options);
}

}  // namespace contra::loss
