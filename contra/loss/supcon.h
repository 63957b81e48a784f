#pragma once
/// Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning",
/// arXiv:2004.11362, L^sup_out, eq. 2), several positives per anchor:
///
///   ℓ = −(τ/τ_base) · 1/|A| Σ_{i∈A} 1/|P(i)| Σ_{p∈P(i)} log( e^{z_i·z_p/τ} / Σ_{a≠i} e^{z_i·z_a/τ}
///   )
///
/// P(i): the other samples with the label of i, A: the anchors with |P(i)| > 0 (the official code
/// divides by zero for the others). τ_base = τ gives the paper's loss; the official code scales by
/// τ/τ_base with τ_base = 0.07.
///
/// Shapes: features (M, D) with labels (M), or (N, V, D) — V views of N items, as the official
/// SupConLoss takes them — with labels (N), or no labels (then only the other views of an item are
/// its positives: SimCLR's NT-Xent for V = 2) → scalar. Log-sum-exp, clamped norms. Throws
/// ConfigError for τ <= 0 or τ_base <= 0, c10::Error for shape mismatches or an empty batch,
/// DataError when no anchor has a positive.
///
///   auto loss = contra::loss::functional::supcon(features, labels,
///                                                SupConOptions().temperature(0.1));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any_value.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct SupConOptions {
  /// Temperature τ (> 0).
  TORCH_ARG(double, temperature) = 0.07;
  /// Base temperature τ_base (> 0): the loss is scaled by τ/τ_base.
  TORCH_ARG(double, base_temperature) = 0.07;
  /// L2-normalise the features first (the paper's embeddings live on the unit sphere).
  TORCH_ARG(bool, normalize) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "temperature τ (> 0)");
    v("base_temperature", base_temperature(), "base temperature (> 0); loss scaled by τ/τ_base");
    v("normalize", normalize(), "L2-normalise the features");
  }
  void validate() const {
    detail::check_positive(temperature(), "temperature");
    detail::check_positive(base_temperature(), "base_temperature");
  }
};

namespace functional {
torch::Tensor supcon(const torch::Tensor& features, const torch::Tensor& labels = {},
                     const SupConOptions& options = {});
}  // namespace functional

class SupConImpl : public torch::nn::Cloneable<SupConImpl> {
 public:
  explicit SupConImpl(SupConOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& labels = {});
  SupConOptions options;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::Tensor())})
};
TORCH_MODULE(SupCon);

}  // namespace contra::loss
