#include "contra/loss/lifted_structured.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor lifted_structured(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                const LiftedStructuredOptions& options) {
  detail::validate(options, "lifted_structured");
  detail::check_embeddings(embeddings, "lifted_structured", "embeddings");
  detail::check_labels(labels, embeddings.size(0), "lifted_structured");
  torch::Tensor same = same_label_mask(labels);  // (N, N)
  torch::Tensor pairs = same.triu(1).nonzero();  // (P, 2): i < j, same label
  const int64_t num_pairs = pairs.size(0);
  if (num_pairs == 0 || same.all().item<bool>()) {
    throw DataError(fmt::format(
        "lifted_structured: needs a positive pair and two classes (got {} positive pairs, {} "
        "classes in {} samples)",
        num_pairs, num_classes(labels), labels.size(0)));
  }
  torch::Tensor dist = pairwise_distance(embeddings, embeddings, Distance::kEuclidean);
  // Per sample i: log Σ_{k negative of i} e^{α − D_ik} (N), every sample having a negative here.
  // As the official code, in linear space (e^{α − D} <= e^{α}); where the sum leaves the
  // floating-point range (α > ~88, or all negatives beyond α + ~87), again in log space.
  torch::Tensor sums = (options.margin() - dist).exp().masked_fill(same, 0).sum(1);
  torch::Tensor log_sums;
  if (sums.min().item<double>() > detail::tiny_for(sums) &&
      std::isfinite(sums.max().item<double>())) {
    log_sums = sums.log();
  } else {
    log_sums = torch::logsumexp(
        (options.margin() - dist).masked_fill(same, -std::numeric_limits<double>::infinity()), 1);
  }
  torch::Tensor i = pairs.select(1, 0), j = pairs.select(1, 1);
  torch::Tensor jij = torch::logaddexp(log_sums.index_select(0, i), log_sums.index_select(0, j)) +
                      dist.index({i, j});  // (P)
  return jij.clamp_min(0).pow(2).sum() / (2.0 * num_pairs);
}

}  // namespace functional

LiftedStructuredImpl::LiftedStructuredImpl(LiftedStructuredOptions options_)
    : options(std::move(options_)) {
  detail::validate(options, "lifted_structured");
}

torch::Tensor LiftedStructuredImpl::forward(const torch::Tensor& embeddings,
                                            const torch::Tensor& labels) {
  return functional::lifted_structured(embeddings, labels, options);
}

}  // namespace contra::loss
