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

torch::Tensor batch_all(const torch::Tensor& dist, const torch::Tensor& pos,
                        const torch::Tensor& neg, const torch::Tensor& labels, double margin) {
  // (a, p, n) → d(a, p) − d(a, n) + margin: (N, N, N)
  torch::Tensor valid = pos.unsqueeze(2).logical_and(neg.unsqueeze(1));
  const int64_t count = valid.sum().item<int64_t>();
  if (count == 0) throw_no_triplet(labels);
  torch::Tensor loss = (dist.unsqueeze(2) - dist.unsqueeze(1) + margin).clamp_min(0);
  return loss.masked_fill(valid.logical_not(), 0).sum() / static_cast<double>(count);
}

torch::Tensor batch_hard(const torch::Tensor& dist, const torch::Tensor& pos,
                         const torch::Tensor& neg, const torch::Tensor& labels, double margin) {
  torch::Tensor valid = pos.any(1).logical_and(neg.any(1));  // (N) anchors with both
  if (!valid.any().item<bool>()) throw_no_triplet(labels);
  torch::Tensor hardest_pos = dist.masked_fill(pos.logical_not(), -kInf).amax(1);
  torch::Tensor hardest_neg = dist.masked_fill(neg.logical_not(), kInf).amin(1);
  torch::Tensor loss = (hardest_pos - hardest_neg + margin).clamp_min(0);
  return loss.masked_select(valid).mean();
}

torch::Tensor semi_hard(const torch::Tensor& dist, const torch::Tensor& pos,
                        const torch::Tensor& neg, const torch::Tensor& labels, double margin) {
  torch::Tensor num_neg = neg.sum(1, /*keepdim=*/true);  // (N, 1)
  torch::Tensor valid = pos.logical_and(num_neg > 0);    // (N, N) positive pairs (a, p)
  if (!valid.any().item<bool>()) throw_no_triplet(labels);
  // Each anchor's negative distances in ascending order, non-negatives (+inf) last: (N, N).
  torch::Tensor sorted = std::get<0>(dist.masked_fill(neg.logical_not(), kInf).sort(1));
  // First negative strictly farther than the positive: index into `sorted`, (N, N) over (a, p).
  torch::Tensor first = torch::searchsorted(sorted, dist.contiguous(), /*out_int32=*/false,
                                            /*right=*/true);
  torch::Tensor exists = first < num_neg;
  torch::Tensor nearest_farther = sorted.gather(1, first.clamp_max(dist.size(1) - 1));
  // Fallback: the farthest negative, sorted[a, num_neg(a) − 1].
  torch::Tensor farthest = sorted.gather(1, (num_neg - 1).clamp_min(0));  // (N, 1)
  torch::Tensor chosen = torch::where(exists, nearest_farther, farthest);
  torch::Tensor loss = (dist - chosen + margin).clamp_min(0);
  return loss.masked_select(valid).mean();
}

}  // namespace

torch::Tensor triplet(const torch::Tensor& anchor, const torch::Tensor& positive,
                      const torch::Tensor& negative, const TripletOptions& options) {
  detail::validate(options, "triplet");
  detail::check_embeddings(anchor, "triplet", "anchor");
  detail::check_same_shape(anchor, positive, "triplet", "anchor", "positive");
  detail::check_same_shape(anchor, negative, "triplet", "anchor", "negative");
  const Distance d = options.squared() ? Distance::kSquaredEuclidean : Distance::kEuclidean;
  torch::Tensor dap = paired_distance(anchor, positive, d);
  torch::Tensor dan = paired_distance(anchor, negative, d);
  return (dap - dan + options.margin()).clamp_min(0).mean();
}

torch::Tensor triplet_mined(const torch::Tensor& embeddings, const torch::Tensor& labels,
                            const TripletOptions& options) {
  detail::validate(options, "triplet");
  detail::check_embeddings(embeddings, "triplet", "embeddings");
  detail::check_labels(labels, embeddings.size(0), "triplet");
  const Distance d = options.squared() ? Distance::kSquaredEuclidean : Distance::kEuclidean;
  torch::Tensor dist = pairwise_distance(embeddings, embeddings, d);  // (N, N)
  torch::Tensor pos = positive_mask(labels);
  torch::Tensor neg = negative_mask(labels);
  switch (options.mining()) {
    case TripletMining::kBatchAll:
      return batch_all(dist, pos, neg, labels, options.margin());
    case TripletMining::kBatchHard:
      return batch_hard(dist, pos, neg, labels, options.margin());
    case TripletMining::kSemiHard:
      return semi_hard(dist, pos, neg, labels, options.margin());
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
