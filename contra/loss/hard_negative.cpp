#include "contra/loss/hard_negative.h"

#include <cmath>

#include <torch/torch.h>

#include "contra/loss/debiased.h"

namespace contra::loss {

void HardNegativeOptions::validate() const {
  detail::check_positive(temperature(), "temperature");
  check<ConfigError>(tau_plus() >= 0 && tau_plus() < 1, "tau_plus: must be in [0, 1) (got {})",
                     tau_plus());
  detail::check_non_negative(beta(), "beta");
}

namespace functional {

torch::Tensor hard_negative(const torch::Tensor& positive, const torch::Tensor& negative,
                            const HardNegativeOptions& options) {
  detail::validate(options, "hard_negative");
  torch::Tensor pos = detail::check_scores(positive, negative, "hard_negative");
  const double t = options.temperature();
  const int64_t k = negative.size(1);
  torch::Tensor logits = negative / t;  // (N, K)
  torch::Tensor positive_logit = pos / t;
  const double beta = options.beta();
  // Σ_k w_k neg_k = K Σ e^{(1+β)s/t} / Σ e^{βs/t}: first as the official code (linear space)...
  torch::Tensor weighted =
      ((1 + beta) * logits).exp().sum(1) / (beta * logits).exp().sum(1) * static_cast<double>(k);
  torch::Tensor fast = detail::debiased_rows_linear(positive_logit, positive_logit.exp(), weighted,
                                                    k, t, options.tau_plus());
  if (fast.defined()) return fast.mean();
  // ... and in log space when e^{s/t} left the floating-point range.
  torch::Tensor log_weighted = torch::logsumexp((1 + beta) * logits, 1) -
                               torch::logsumexp(beta * logits, 1) +
                               std::log(static_cast<double>(k));
  return detail::debiased_rows(positive_logit, log_weighted, k, t, options.tau_plus()).mean();
}

}  // namespace functional

HardNegativeImpl::HardNegativeImpl(HardNegativeOptions options_) : options(std::move(options_)) {
  detail::validate(options, "hard_negative");
}

torch::Tensor HardNegativeImpl::forward(const torch::Tensor& positive,
                                        const torch::Tensor& negative) {
  return functional::hard_negative(positive, negative, options);
}

}  // namespace contra::loss
