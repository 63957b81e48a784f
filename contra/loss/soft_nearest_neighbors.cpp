#include "contra/loss/soft_nearest_neighbors.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace contra::loss {
namespace functional {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

}  // namespace

torch::Tensor soft_nearest_neighbors_from_distances(const torch::Tensor& distances,
                                                    const torch::Tensor& labels,
                                                    double temperature) {
  torch::Tensor same = same_label_mask(labels);
  torch::Tensor valid = same.sum(1) > 1;            // anchors with a same-class neighbour
  torch::Tensor logits = distances / -temperature;  // (b, b)
  logits.diagonal().fill_(kNegInf);                 // k ≠ i (in place: no gradient there)
  // Σ_{j same class} of the pick probabilities (the diagonal's is 0), in linear space as Frosst et
  // al.; where it underflows (small T), again in log space.
  torch::Tensor picked = torch::softmax(logits, 1).masked_fill(same.logical_not(), 0).sum(1);
  torch::Tensor kept = picked.masked_select(valid);
  if (kept.min().item<double>() > detail::tiny_for(kept)) return -kept.log().mean();
  torch::Tensor log_pick = torch::log_softmax(logits, 1);
  torch::Tensor log_same = torch::logsumexp(log_pick.masked_fill(same.logical_not(), kNegInf), 1);
  return -log_same.masked_select(valid).mean();
}

double soft_nearest_neighbors_best_temperature(const torch::Tensor& distances,
                                               const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  torch::Tensor d = distances.detach().to(torch::kDouble);
  const int64_t b = d.size(0);
  // Scale of the search: the mean off-diagonal distance (1 if every distance is 0).
  double scale = b > 1 ? d.sum().item<double>() / static_cast<double>(b * (b - 1)) : 1.0;
  if (!(scale > 0) || !std::isfinite(scale)) scale = 1.0;
  auto loss_at = [&](double log_t) {
    return soft_nearest_neighbors_from_distances(d, labels, std::exp(log_t)).item<double>();
  };
  // Grid: 8 points per decade over [scale·1e-4, scale·1e4].
  constexpr int kPerDecade = 8;
  constexpr int kDecades = 4;
  const double step = std::log(10.0) / kPerDecade;
  const double center = std::log(scale);
  int best = -kPerDecade * kDecades;
  double best_loss = std::numeric_limits<double>::infinity();
  for (int i = -kPerDecade * kDecades; i <= kPerDecade * kDecades; ++i) {
    const double loss = loss_at(center + i * step);
    if (loss < best_loss) {
      best_loss = loss;
      best = i;
    }
  }
  // Golden-section refinement on the bracket around the best grid point.
  double lo = center + (best - 1) * step;
  double hi = center + (best + 1) * step;
  const double phi = (std::sqrt(5.0) - 1) / 2;
  double x1 = hi - phi * (hi - lo);
  double x2 = lo + phi * (hi - lo);
  double f1 = loss_at(x1);
  double f2 = loss_at(x2);
  for (int it = 0; it < 40; ++it) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - phi * (hi - lo);
      f1 = loss_at(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + phi * (hi - lo);
      f2 = loss_at(x2);
    }
  }
  const double refined = f1 <= f2 ? x1 : x2;
  const double refined_loss = std::min(f1, f2);
  return std::exp(refined_loss <= best_loss ? refined : center + best * step);
}

torch::Tensor soft_nearest_neighbors(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                     const SoftNearestNeighborsOptions& options) {
  detail::validate(options, "soft_nearest_neighbors");
  detail::check_embeddings(embeddings, "soft_nearest_neighbors", "embeddings");
  detail::check_labels(labels, embeddings.size(0), "soft_nearest_neighbors");
  const int64_t b = embeddings.size(0);
  if (!positive_mask(labels).any().item<bool>()) {
    throw DataError(fmt::format(
        "soft_nearest_neighbors: no sample has another of its class in the batch (got {} samples "
        "in {} classes)",
        b, num_classes(labels)));
  }
  torch::Tensor distances = options.distance_fn()
                                ? options.distance_fn()(embeddings, embeddings)
                                : pairwise_distance(embeddings, embeddings, options.distance());
  TORCH_CHECK(distances.dim() == 2 && distances.size(0) == b && distances.size(1) == b,
              "soft_nearest_neighbors: distance_fn must return (", b, ", ", b, "), got ",
              distances.sizes());
  const double t = options.optimize_temperature()
                       ? soft_nearest_neighbors_best_temperature(distances, labels)
                       : options.temperature();
  return soft_nearest_neighbors_from_distances(distances, labels, t);
}

}  // namespace functional

SoftNearestNeighborsImpl::SoftNearestNeighborsImpl(SoftNearestNeighborsOptions options_)
    : options(std::move(options_)) {
  detail::validate(options, "soft_nearest_neighbors");
}

torch::Tensor SoftNearestNeighborsImpl::forward(const torch::Tensor& embeddings,
                                                const torch::Tensor& labels) {
  return functional::soft_nearest_neighbors(embeddings, labels, options);
}

}  // namespace contra::loss
