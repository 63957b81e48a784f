#pragma once
/// Contrastive pair loss (Chopra, Hadsell & LeCun 2005, "Learning a Similarity Metric
/// Discriminatively"; Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an
/// Invariant Mapping"):
///
///   ℓ = y·d² + (1 − y)·max(0, m − d)²,  mean over the N pairs,
///
/// with y = 1 for a similar pair and 0 for a dissimilar one (Hadsell et al. write Y = 0 for similar
/// and a factor ½ on both terms: their loss is half of this one with y = 1 − Y), d the Euclidean
/// distance ‖x₁ − x₂‖ or the cosine distance 1 − cos(x₁, x₂), m the margin.
///
/// Shapes: x1 (N, D), x2 (N, D), similar (N) of 0/1 (bool, integer or floating point) → scalar.
/// d has a zero gradient at d = 0, so identical embeddings give finite gradients. Throws
/// ConfigError for margin < 0 or a distance other than euclidean/cosine, c10::Error for shape
/// mismatches or an empty batch, DataError when `similar` holds a value other than 0 or 1.
///
///   auto loss = contra::loss::functional::contrastive(x1, x2, same,
///                                                     ContrastiveOptions().margin(0.5));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct ContrastiveOptions {
  /// Margin m (>= 0): dissimilar pairs further apart than m cost nothing.
  TORCH_ARG(double, margin) = 1.0;
  /// kEuclidean or kCosine.
  TORCH_ARG(Distance, distance) = Distance::kEuclidean;

 public:
  template <class V>
  void visit(V& v) {
    v("margin", margin(), "margin m (>= 0)");
    detail::visit_choice(v, "distance", distance(), "euclidean | cosine", parse_distance);
  }
  void validate() const;
};

namespace functional {
torch::Tensor contrastive(const torch::Tensor& x1, const torch::Tensor& x2,
                          const torch::Tensor& similar, const ContrastiveOptions& options = {});
}  // namespace functional

class ContrastiveImpl : public torch::nn::Cloneable<ContrastiveImpl> {
 public:
  explicit ContrastiveImpl(ContrastiveOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x1, const torch::Tensor& x2,
                        const torch::Tensor& similar);
  ContrastiveOptions options;
};
TORCH_MODULE(Contrastive);

}  // namespace contra::loss
