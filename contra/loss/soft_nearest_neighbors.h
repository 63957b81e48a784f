#pragma once
/// Soft nearest neighbours loss (Frosst, Papernot & Hinton 2019, "Analyzing and Improving
/// Representations with the Soft Nearest Neighbor Loss", arXiv:1902.01889; after Salakhutdinov &
/// Hinton 2007, "Learning a Nonlinear Embedding by Preserving Class Neighbourhood Structure"):
///
///   ℓ(x, y, T) = −1/b Σ_i log( Σ_{j≠i, y_j=y_i} e^{−d(x_i,x_j)/T} / Σ_{k≠i} e^{−d(x_i,x_k)/T} )
///
/// d the squared Euclidean distance (the paper's), Euclidean, cosine or any function you give. The
/// temperature T is given, or, with `optimize_temperature`, the loss is taken at the T that
/// minimises it (the paper's SNNL = min_T ℓ(x, y, T)): a grid over 8 decades of log T around the
/// mean distance, refined by golden-section search. T* is found without gradient; by the envelope
/// theorem the gradient of min_T ℓ with respect to x is ∂ℓ/∂x at T*, which is what backward
/// computes.
///
/// Shapes: embeddings (b, D), labels (b) → scalar. Anchors whose class has no other sample in the
/// batch are left out of the mean (their term is +∞ in the formula); b counts the others.
/// The same-class pick probabilities are summed in linear space (softmax) as Frosst et al. do, and
/// again in log space when a sum underflows (small T), so the loss stays finite for small T and
/// identical embeddings. Throws ConfigError for T <= 0,
/// c10::Error for shape mismatches or an empty batch, DataError when no anchor has a same-class
/// neighbour.
///
///   auto opts = SoftNearestNeighborsOptions().optimize_temperature(true);
///   auto loss = contra::loss::functional::soft_nearest_neighbors(x, labels, opts);
#include <functional>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

/// Pairwise distance (b, b) between the rows of two (b, D) tensors, >= 0.
using DistanceFunction = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

struct SoftNearestNeighborsOptions {
  /// Temperature T (> 0), used unless `optimize_temperature`.
  TORCH_ARG(double, temperature) = 1.0;
  /// Take the loss at argmin_T (the paper's min over T) instead of `temperature`.
  TORCH_ARG(bool, optimize_temperature) = false;
  /// Built-in distance (squared Euclidean as in the paper).
  TORCH_ARG(Distance, distance) = Distance::kSquaredEuclidean;
  /// Any other distance: when set it replaces `distance` (not part of the config).
  TORCH_ARG(DistanceFunction, distance_fn) = nullptr;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "temperature T (> 0)");
    v("optimize_temperature", optimize_temperature(), "use the T that minimises the loss");
    detail::visit_choice(v, "distance", distance(), "squared_euclidean | euclidean | cosine",
                         parse_distance);
  }
  void validate() const { detail::check_positive(temperature(), "temperature"); }
};

namespace functional {
torch::Tensor soft_nearest_neighbors(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                     const SoftNearestNeighborsOptions& options = {});
/// The loss from a distance matrix (b, b) at temperature T (no checks; used by the search).
torch::Tensor soft_nearest_neighbors_from_distances(const torch::Tensor& distances,
                                                    const torch::Tensor& labels,
                                                    double temperature);
/// argmin_T of the loss for a fixed distance matrix (the search described above).
double soft_nearest_neighbors_best_temperature(const torch::Tensor& distances,
                                               const torch::Tensor& labels);
}  // namespace functional

class SoftNearestNeighborsImpl : public torch::nn::Cloneable<SoftNearestNeighborsImpl> {
 public:
  explicit SoftNearestNeighborsImpl(SoftNearestNeighborsOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& labels);
  SoftNearestNeighborsOptions options;
};
TORCH_MODULE(SoftNearestNeighbors);

}  // namespace contra::loss
