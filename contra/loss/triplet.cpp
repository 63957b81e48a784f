#include "contra/loss/triplet.h"

#include <limits>

#include <torch/torch.h>

namespace contra::loss {

std::string_view to_string(TripletMining mining) {
  switch (mining) {
    case TripletMining::kBatchAll:
      return "batch_all";
    case TripletMining::kBatchHard:
      return "batch_hard";
    case TripletMining::kSemiHard:
      return "semi_hard";
  }
  return "?";
}

TripletMining parse_triplet_mining(std::string_view text, std::string_view key) {
  for (auto m : {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    if (text == to_string(m)) return m;
  }
  throw ConfigError(fmt::format(
      "{}: unknown triplet mining (got '{}', expected batch_all, batch_hard or semi_hard)", key,
      text));
}

namespace functional {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void throw_no_triplet(const torch::Tensor& labels) {
  throw DataError(fmt::format(
      "triplet: the labels give no valid triplet (got {} samples in {} classes; an anchor needs "
      "another sample of its class and one of another class)",
      labels.size(0), num_classes(labels)));
}

Distance distance_of(const TripletOptions& options) {
  return options.squared() ? Distance::kSquaredEuclidean : Distance::kEuclidean;
}

// Every valid triplet. Non-positive pairs get d(a, p) = −inf and non-negatives d(a, n) = +inf, so
// the (N, N, N) term max(0, d_ap + m − d_an) is 0 for them without a mask: 3 passes over N³.
torch::Tensor batch_all(const torch::Tensor& x, const torch::Tensor& labels,
                        const torch::Tensor& same, const TripletOptions& options) {
  const int64_t n = x.size(0);
  torch::Tensor n_same = same.sum(1);  // (N), the anchor included
  const int64_t count = ((n_same - 1) * (n - n_same)).sum().item<int64_t>();
  if (count == 0) throw_no_triplet(labels);
  torch::Tensor dist = pairwise_distance(x, x, distance_of(options));
  torch::Tensor dap = (dist + options.margin()).masked_fill(same.logical_not(), -kInf);
  dap.diagonal().fill_(-kInf);
  torch::Tensor dan = dist.masked_fill(same, kInf);
  return (dap.unsqueeze(2) - dan.unsqueeze(1)).clamp_min(0).sum() / static_cast<double>(count);
}

// Batch-hard and semi-hard pick one negative (and for batch-hard one positive) per term: the picks
// are made on a distance matrix without gradient, and only the picked pairs' distances are
// recomputed with gradient — O(N·D) backward instead of O(N²·D).
torch::Tensor picked_loss(const torch::Tensor& x, const torch::Tensor& anchors,
                          const torch::Tensor& positives, const torch::Tensor& negatives,
                          const TripletOptions& options) {
  torch::Tensor a = x.index_select(0, anchors);
  torch::Tensor dap = paired_distance(a, x.index_select(0, positives), distance_of(options));
  torch::Tensor dan = paired_distance(a, x.index_select(0, negatives), distance_of(options));
  return (dap - dan + options.margin()).clamp_min(0).mean();
}

torch::Tensor batch_hard(const torch::Tensor& x, const torch::Tensor& labels,
                         const torch::Tensor& same, const TripletOptions& options) {
  const int64_t n = x.size(0);
  torch::Tensor n_same = same.sum(1);
  torch::Tensor anchors = ((n_same > 1).logical_and(n_same < n)).nonzero().squeeze(1);
  if (anchors.numel() == 0) throw_no_triplet(labels);
  torch::Tensor hardest_pos, hardest_neg;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor dist = pairwise_distance(x, x, distance_of(options));
    torch::Tensor pos = dist.masked_fill(same.logical_not(), -kInf);
    pos.diagonal().fill_(-kInf);
    hardest_pos = pos.argmax(1);                           // farthest positive
    hardest_neg = dist.masked_fill(same, kInf).argmin(1);  // nearest negative
  }
  return picked_loss(x, anchors, hardest_pos.index_select(0, anchors),
                     hardest_neg.index_select(0, anchors), options);
}

torch::Tensor semi_hard(const torch::Tensor& x, const torch::Tensor& labels,
                        const torch::Tensor& same, const TripletOptions& options) {
  const int64_t n = x.size(0);
  torch::Tensor num_neg = n - same.sum(1);  // (N)
  // Positive pairs (a, p), a ≠ p, of anchors that have a negative.
  torch::Tensor pairs_mask = same.logical_and(num_neg.gt(0).unsqueeze(1));
  pairs_mask.diagonal().fill_(false);
  torch::Tensor pairs = pairs_mask.nonzero();  // (P, 2)
  if (pairs.size(0) == 0) throw_no_triplet(labels);
  torch::Tensor a = pairs.select(1, 0), p = pairs.select(1, 1);
  torch::Tensor chosen;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor dist = pairwise_distance(x, x, distance_of(options));
    // Each anchor's negatives by distance, ascending; non-negatives (+inf) last: (N, N).
    auto [sorted, order] = dist.masked_fill(same, kInf).sort(1);
    // First negative strictly farther than the positive, per pair (P): searchsorted on the
    // anchor's row. When there is none, the farthest negative (index num_neg − 1).
    torch::Tensor first = torch::searchsorted(sorted, dist.contiguous(), /*out_int32=*/false,
                                              /*right=*/true)
                              .index({a, p});
    torch::Tensor last = num_neg.index_select(0, a) - 1;
    torch::Tensor slot = torch::where(first <= last, first, last);
    chosen = order.index({a, slot});
  }
  return picked_loss(x, a, p, chosen, options);
}

}  // namespace

torch::Tensor triplet(const torch::Tensor& anchor, const torch::Tensor& positive,
                      const torch::Tensor& negative, const TripletOptions& options) {
  detail::validate(options, "triplet");
  detail::check_embeddings(anchor, "triplet", "anchor");
  detail::check_same_shape(anchor, positive, "triplet", "anchor", "positive");
  detail::check_same_shape(anchor, negative, "triplet", "anchor", "negative");
  torch::Tensor dap = paired_distance(anchor, positive, distance_of(options));
  torch::Tensor dan = paired_distance(anchor, negative, distance_of(options));
  return (dap - dan + options.margin()).clamp_min(0).mean();
}

torch::Tensor triplet_mined(const torch::Tensor& embeddings, const torch::Tensor& labels,
                            const TripletOptions& options) {
  detail::validate(options, "triplet");
  detail::check_embeddings(embeddings, "triplet", "embeddings");
  detail::check_labels(labels, embeddings.size(0), "triplet");
  torch::Tensor same = same_label_mask(labels);  // (N, N)
  switch (options.mining()) {
    case TripletMining::kBatchAll:
      return batch_all(embeddings, labels, same, options);
    case TripletMining::kBatchHard:
      return batch_hard(embeddings, labels, same, options);
    case TripletMining::kSemiHard:
      return semi_hard(embeddings, labels, same, options);
  }
  throw ConfigError("triplet: unknown mining");
}

}  // namespace functional

TripletImpl::TripletImpl(TripletOptions options_) : options(std::move(options_)) {
  detail::validate(options, "triplet");
}

torch::Tensor TripletImpl::forward(const torch::Tensor& embeddings, const torch::Tensor& labels) {
  return functional::triplet_mined(embeddings, labels, options);
}

torch::Tensor TripletImpl::triplets(const torch::Tensor& anchor, const torch::Tensor& positive,
                                    const torch::Tensor& negative) {
  return functional::triplet(anchor, positive, negative, options);
}

}  // namespace contra::loss
