#include "contra/loss/supcon.h"

#include <limits>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor supcon(const torch::Tensor& features, const torch::Tensor& labels,
                     const SupConOptions& options) {
  detail::validate(options, "supcon");
  TORCH_CHECK(features.defined() && (features.dim() == 2 || features.dim() == 3),
              "supcon: features must be (M, D) or (N, V, D), got ",
              features.defined() ? features.sizes() : torch::IntArrayRef{});
  torch::Tensor f = features;
  torch::Tensor y = labels;
  if (features.dim() == 3) {
    const int64_t n = features.size(0);
    const int64_t views = features.size(1);
    TORCH_CHECK(n > 0 && views > 0, "supcon: empty batch (features is ", features.sizes(), ")");
    if (y.defined()) {
      detail::check_labels(y, n, "supcon");
    } else {
      y = torch::arange(n, features.options().dtype(torch::kLong));
    }
    // View-major (all first views, then all second views...), as the official code orders them.
    f = features.transpose(0, 1).reshape({n * views, features.size(2)});
    y = y.repeat({views});
  }
  detail::check_embeddings(f, "supcon", "features");
  TORCH_CHECK(y.defined(), "supcon: labels are required for (M, D) features");
  detail::check_labels(y, f.size(0), "supcon");
  if (options.normalize()) f = l2_normalize(f);
  const int64_t m = f.size(0);
  torch::Tensor pos = positive_mask(y);  // (M, M)
  torch::Tensor num_pos = pos.sum(1);
  torch::Tensor valid = num_pos > 0;
  if (!valid.any().item<bool>()) {
    throw DataError(fmt::format(
        "supcon: no anchor has a positive (got {} samples in {} classes, one view each)", m,
        num_classes(y)));
  }
  torch::Tensor logits = torch::mm(f / options.temperature(), f.t());  // (M, M)
  logits.diagonal().fill_(-std::numeric_limits<double>::infinity());  // a ≠ i (no gradient there)
  // log p_ip = logits_ip − log Σ_{a≠i} e^{logits_ia}, averaged over the positives p.
  torch::Tensor log_prob = torch::log_softmax(logits, 1);
  torch::Tensor mean_log_prob =
      log_prob.masked_fill(pos.logical_not(), 0).sum(1).masked_select(valid) /
      num_pos.masked_select(valid).to(logits.scalar_type());
  return -(options.temperature() / options.base_temperature()) * mean_log_prob.mean();
}

}  // namespace functional

SupConImpl::SupConImpl(SupConOptions options_) : options(std::move(options_)) {
  detail::validate(options, "supcon");
}

torch::Tensor SupConImpl::forward(const torch::Tensor& features, const torch::Tensor& labels) {
  return functional::supcon(features, labels, options);
}

}  // namespace contra::loss
