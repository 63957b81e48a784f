#include "contra/loss/lifted_structured.h"

#include <limits>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {

torch::Tensor lifted_structured(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                const LiftedStructuredOptions& options) {
  detail::validate(options, "lifted_structured");
  detail::check_embeddings(embeddings, "lifted_structured", "embeddings");
  detail::check_labels(labels, embeddings.size(0), "lifted_structured");
  torch::Tensor pos = positive_mask(labels).triu(1);  // (N, N) pairs i < j
  torch::Tensor neg = negative_mask(labels);
  const int64_t num_pairs = pos.sum().item<int64_t>();
  const int64_t classes = num_classes(labels);
  if (num_pairs == 0 || classes < 2) {
    throw DataError(fmt::format(
        "lifted_structured: needs a positive pair and two classes (got {} positive pairs, {} "
        "classes in {} samples)",
        num_pairs, classes, labels.size(0)));
  }
  torch::Tensor dist = pairwise_distance(embeddings, embeddings, Distance::kEuclidean);
  // Per sample i: log Σ_{k negative of i} exp(α − D_ik), (N). Every sample has a negative here.
  torch::Tensor neg_lse = torch::logsumexp(
      (options.margin() - dist)
          .masked_fill(neg.logical_not(), -std::numeric_limits<double>::infinity()),
      1);
  torch::Tensor j = torch::logaddexp(neg_lse.unsqueeze(1), neg_lse.unsqueeze(0)) + dist;  // (N, N)
  return j.masked_select(pos).clamp_min(0).pow(2).sum() / (2.0 * num_pairs);
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
