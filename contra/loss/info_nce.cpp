#include "contra/loss/info_nce.h"

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor info_nce_logits(const torch::Tensor& positive, const torch::Tensor& negative,
                              const InfoNCEOptions& options) {
  detail::validate(options, "info_nce");
  torch::Tensor pos = detail::check_scores(positive, negative, "info_nce");
  return torch::cat({pos.unsqueeze(1), negative}, 1) / options.temperature();
}

torch::Tensor info_nce(const torch::Tensor& positive, const torch::Tensor& negative,
                       const InfoNCEOptions& options) {
  detail::validate(options, "info_nce");
  torch::Tensor pos = detail::check_scores(positive, negative, "info_nce") / options.temperature();
  // Cross-entropy with the positive in column 0, without building the (N, 1 + K) logits:
  // ℓ = log(e^{s⁺/τ} + Σ e^{s⁻/τ}) − s⁺/τ = logaddexp(s⁺/τ, logsumexp(s⁻/τ)) − s⁺/τ.
  return (torch::logaddexp(pos, logsumexp(negative / options.temperature(), 1)) - pos).mean();
}

torch::Tensor info_nce_keys(const torch::Tensor& query, const torch::Tensor& positive_key,
                            const torch::Tensor& negative_keys, const InfoNCEOptions& options) {
  detail::validate(options, "info_nce");
  detail::check_embeddings(query, "info_nce", "query");
  detail::check_same_shape(query, positive_key, "info_nce", "query", "positive_key");
  const auto dim = query.size(1);
  const double inv_t = 1.0 / options.temperature();
  // Queries already divided by τ (folded into the normalisation).
  torch::Tensor qt = options.normalize() ? l2_normalize(query, -1, 1e-12, inv_t) : query * inv_t;
  torch::Tensor k = options.normalize() ? l2_normalize(positive_key) : positive_key;
  if (!negative_keys.defined()) {
    // In-batch: logits (N, N) = q kᵀ / τ, the positive of row i in column i.
    // The positives' logits come from the (N, D) rows rather than the (N, N) diagonal, whose
    // backward would fill a dense (N, N) gradient.
    return (logsumexp(torch::mm(qt, k.t()), 1) - (qt * k).sum(1)).mean();
  }
  TORCH_CHECK((negative_keys.dim() == 2 && negative_keys.size(1) == dim) ||
                  (negative_keys.dim() == 3 && negative_keys.size(0) == query.size(0) &&
                   negative_keys.size(2) == dim),
              "info_nce: negative_keys must be (M, ", dim, ") or (", query.size(0), ", M, ", dim,
              "), got ", negative_keys.sizes());
  TORCH_CHECK(negative_keys.size(-2) > 0, "info_nce: no negatives (negative_keys is ",
              negative_keys.sizes(), ")");
  torch::Tensor n = options.normalize() ? l2_normalize(negative_keys) : negative_keys;
  // Logits already divided by τ (folded into the (N, D) queries), and no (N, 1 + M) concatenation:
  // ℓ = log(e^{s⁺} + Σ e^{s⁻}) − s⁺ = logaddexp(s⁺, logsumexp(s⁻)) − s⁺.
  torch::Tensor positive = (qt * k).sum(1);  // (N)
  torch::Tensor negative = negative_keys.dim() == 2
                               ? torch::mm(qt, n.t())                        // (N, M)
                               : torch::bmm(n, qt.unsqueeze(2)).squeeze(2);  // (N, M)
  return (torch::logaddexp(positive, logsumexp(negative, 1)) - positive).mean();
}

}  // namespace functional

InfoNCEImpl::InfoNCEImpl(InfoNCEOptions options_) : options(std::move(options_)) {
  detail::validate(options, "info_nce");
}

torch::Tensor InfoNCEImpl::forward(const torch::Tensor& positive, const torch::Tensor& negative) {
  return functional::info_nce(positive, negative, options);
}

torch::Tensor InfoNCEImpl::keys(const torch::Tensor& query, const torch::Tensor& positive_key,
                                const torch::Tensor& negative_keys) {
  return functional::info_nce_keys(query, positive_key, negative_keys, options);
}

}  // namespace contra::loss
