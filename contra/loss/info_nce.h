#pragma once
/// InfoNCE (Oord et al. 2018, arXiv:1807.03748): -log exp(s⁺/τ) / (exp(s⁺/τ) + Σ_k exp(s⁻_k/τ)).
///
/// positive: (N) or (N, 1) scores of the positive pair; negative: (N, K) scores of K negatives.
/// Returns the mean over N (a scalar). Computed as cross-entropy over logits (N, 1 + K) with target 0,
/// i.e. with log-sum-exp, so it is finite for any finite scores and any τ > 0.
/// Throws c10::Error for shape mismatches and ConfigError for τ <= 0.
///
///   auto loss = contra::loss::functional::info_nce(pos, neg, InfoNCEOptions().temperature(0.1));
#include <torch/arg.h>
#include <torch/types.h>

namespace contra::loss {

struct InfoNCEOptions {
  /// Softmax temperature τ (> 0). CPC uses 1.0 on raw dot products; SimCLR/MoCo 0.07–0.5 on cosine.
  TORCH_ARG(double, temperature) = 0.1;
};

namespace functional {
/// Logits (N, 1 + K) = [positive, negative] / τ (the positive in column 0).
torch::Tensor info_nce_logits(const torch::Tensor& positive, const torch::Tensor& negative,
                              const InfoNCEOptions& options = {});
/// Scalar InfoNCE loss, mean over rows.
torch::Tensor info_nce(const torch::Tensor& positive, const torch::Tensor& negative,
                       const InfoNCEOptions& options = {});
}  // namespace functional

}  // namespace contra::loss
