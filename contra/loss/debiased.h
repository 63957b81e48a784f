#pragma once
/// Debiased contrastive loss (Chuang, Robinson, Lin, Torralba & Jegelka 2020, "Debiased Contrastive
/// Learning", arXiv:2007.00224, eq. 6 and the official code): the negatives' sum is corrected for
/// the probability τ⁺ that a "negative" shares the anchor's class:
///
///   pos = e^{s⁺/t},  neg_k = e^{s⁻_k/t}
///   Ng  = max( (Σ_k neg_k − K·τ⁺·pos) / (1 − τ⁺),  K·e^{−1/t} )
///   ℓ   = −log( pos / (pos + Ng) ),  mean over the N rows,
///
/// K the number of negatives per row (2N − 2 for SimCLR-style batches). The clamp at K·e^{−1/t} is
/// the smallest value the sum can take for cosine scores in [−1, 1]; scores should be cosine
/// similarities. With τ⁺ = 0 and no clamp active this is InfoNCE.
///
/// Shapes: positive (N) or (N, 1), negative (N, K) → scalar. Evaluated as the official code does
/// (e^{s/t}, sums); when that overflows or underflows (small t: e^{1/t} beyond the floating-point
/// range) it is evaluated again in log space (log-sum-exp, log1p/expm1 for the subtraction), which
/// stays finite. The check reads the loss back to the host once per call. Throws ConfigError for t
/// <= 0 or τ⁺ outside [0, 1), c10::Error for shape mismatches or an empty batch.
///
///   auto loss = contra::loss::functional::debiased(pos, neg, DebiasedOptions().tau_plus(0.1));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct DebiasedOptions {
  /// Temperature t (> 0); the official code uses 0.5.
  TORCH_ARG(double, temperature) = 0.5;
  /// Class prior τ⁺ in [0, 1): probability that a random sample shares the anchor's class.
  TORCH_ARG(double, tau_plus) = 0.1;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "temperature t (> 0)");
    v("tau_plus", tau_plus(), "class prior τ⁺ in [0, 1)");
  }
  void validate() const;
};

namespace functional {
torch::Tensor debiased(const torch::Tensor& positive, const torch::Tensor& negative,
                       const DebiasedOptions& options = {});
}  // namespace functional

namespace detail {
/// Per-row debiased loss (N) from the positive logit s⁺/t (N) and log Σ_k neg_k (N), in log space.
torch::Tensor debiased_rows(const torch::Tensor& positive_logit, const torch::Tensor& log_negatives,
                            int64_t num_negatives, double temperature, double tau_plus);
/// The same from pos = e^{s⁺/t} (N) and Σ_k neg_k (N) in linear space, as the official code
/// computes it: cheaper, but e^{s/t} overflows or underflows for small t. Returns an undefined
/// tensor when pos + Ng left the trusted floating-point range; callers then use debiased_rows.
torch::Tensor debiased_rows_linear(const torch::Tensor& positive_logit, const torch::Tensor& pos,
                                   const torch::Tensor& negatives, int64_t num_negatives,
                                   double temperature, double tau_plus);
}  // namespace detail

class DebiasedImpl : public torch::nn::Cloneable<DebiasedImpl> {
 public:
  explicit DebiasedImpl(DebiasedOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& positive, const torch::Tensor& negative);
  DebiasedOptions options;
};
TORCH_MODULE(Debiased);

}  // namespace contra::loss
