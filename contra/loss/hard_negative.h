#pragma once
/// Hard-negative contrastive loss, HCL (Robinson, Chuang, Sra & Jegelka 2021, "Contrastive Learning
/// with Hard Negative Samples", arXiv:2010.04592, eq. 3 and the official code): negatives are
/// importance-weighted towards the anchor with concentration β, then debiased as in
/// Chuang et al. 2020 (see debiased.h):
///
///   neg_k = e^{s⁻_k/t},  w_k = neg_k^β / ((1/K) Σ_j neg_j^β)
///   Ng    = max( (Σ_k w_k·neg_k − K·τ⁺·pos) / (1 − τ⁺),  K·e^{−1/t} )
///   ℓ     = −log( pos / (pos + Ng) ),  mean over the N rows.
///
/// β = 0 gives the debiased loss; β = 0 and τ⁺ = 0 InfoNCE (when the clamp is inactive). The
/// weights are not detached (as in the official code).
///
/// Shapes: positive (N) or (N, 1), negative (N, K) cosine scores → scalar. Evaluated as the
/// official code does, and again in log space when e^{s/t} overflows or underflows (see
/// debiased.h). Throws ConfigError for t <= 0, τ⁺ outside [0, 1) or β < 0, c10::Error for shape
/// mismatches or an empty batch.
///
///   auto loss = contra::loss::functional::hard_negative(pos, neg,
///   HardNegativeOptions().beta(1.0));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct HardNegativeOptions {
  /// Temperature t (> 0).
  TORCH_ARG(double, temperature) = 0.5;
  /// Class prior τ⁺ in [0, 1) of the debiasing.
  TORCH_ARG(double, tau_plus) = 0.1;
  /// Concentration β (>= 0): how strongly negatives close to the anchor are up-weighted.
  TORCH_ARG(double, beta) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "temperature t (> 0)");
    v("tau_plus", tau_plus(), "class prior τ⁺ in [0, 1)");
    v("beta", beta(), "concentration β (>= 0)");
  }
  void validate() const;
};

namespace functional {
torch::Tensor hard_negative(const torch::Tensor& positive, const torch::Tensor& negative,
                            const HardNegativeOptions& options = {});
}  // namespace functional

class HardNegativeImpl : public torch::nn::Cloneable<HardNegativeImpl> {
 public:
  explicit HardNegativeImpl(HardNegativeOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& positive, const torch::Tensor& negative);
  HardNegativeOptions options;
};
TORCH_MODULE(HardNegative);

}  // namespace contra::loss
