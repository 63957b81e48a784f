#pragma once
/// Lifted structured loss (Song, Xiang, Jegelka & Savarese 2016, "Deep Metric Learning via Lifted
/// Structured Feature Embedding", arXiv:1511.06452), the smooth log-sum-exp form (their eq. 4):
///
///   J_ij = log( Σ_{(i,k)∈N} exp(α − D_ik) + Σ_{(j,l)∈N} exp(α − D_jl) ) + D_ij
///   J    = 1/(2|P|) Σ_{(i,j)∈P} max(0, J_ij)²
///
/// over all positive pairs P (i < j with the same label, each unordered pair once) and, for each,
/// all negatives N of both ends; D the Euclidean distance, α the margin.
///
/// Shapes: embeddings (N, D), labels (N) → scalar. The negatives' sums are taken as the official
/// code does (e^{α − D}, linear space) and again with log-sum-exp when they leave the
/// floating-point range, so the loss is finite for any distances; J is evaluated on the positive
/// pairs only. Throws ConfigError for margin < 0, c10::Error for shape mismatches or an empty
/// batch, DataError when the batch has no positive pair or only one class.
///
///   auto loss = contra::loss::functional::lifted_structured(x, labels,
///                                                           LiftedStructuredOptions().margin(1.0));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct LiftedStructuredOptions {
  /// Margin α (>= 0).
  TORCH_ARG(double, margin) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("margin", margin(), "margin α (>= 0)");
  }
  void validate() const { detail::check_non_negative(margin(), "margin"); }
};

namespace functional {
torch::Tensor lifted_structured(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                const LiftedStructuredOptions& options = {});
}  // namespace functional

class LiftedStructuredImpl : public torch::nn::Cloneable<LiftedStructuredImpl> {
 public:
  explicit LiftedStructuredImpl(LiftedStructuredOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& labels);
  LiftedStructuredOptions options;
};
TORCH_MODULE(LiftedStructured);

}  // namespace contra::loss
