#pragma once
/// InfoNCE (Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding",
/// arXiv:1807.03748; as used by MoCo, He et al. 2019, arXiv:1911.05722):
///
///   ℓ = −log exp(s⁺/τ) / (exp(s⁺/τ) + Σ_k exp(s⁻_k/τ)),  mean over the N rows.
///
/// Two forms:
/// - scores: positive (N) or (N, 1) scores s⁺ of the positive pair, negative (N, K) scores s⁻ of K
///   negatives (CPC scores z·W_k c on raw dot products with τ = 1);
/// - query/key: query (N, D), positive_key (N, D) and the negatives as
///   * nothing: in-batch — the other rows' positive keys (logits q·kᵀ (N, N), target the diagonal);
///   * (M, D): one set shared by every query — a MoCo queue (`KeyQueue::negatives()`) or any
///     explicit list;
///   * (N, M, D): M negatives per query.
///   With `normalize` (default) the scores are cosine similarities.
/// Computed with log-sum-exp (cross-entropy, target 0), so it is finite for any finite scores and
/// any τ > 0. Throws ConfigError for τ <= 0 and c10::Error for shapes that do not match or an empty
/// batch.
///
///   auto loss = contra::loss::functional::info_nce(pos, neg, InfoNCEOptions().temperature(0.1));
///   auto moco = contra::loss::functional::info_nce_keys(q, k, queue->negatives(),
///                                                       InfoNCEOptions().temperature(0.07));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct InfoNCEOptions {
  /// Softmax temperature τ (> 0). CPC uses 1.0 on raw dot products; SimCLR/MoCo 0.07–0.5 on cosine.
  TORCH_ARG(double, temperature) = 0.1;
  /// Query/key form only: L2-normalise queries and keys (cosine similarity), as MoCo does.
  TORCH_ARG(bool, normalize) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "softmax temperature (> 0)");
    v("normalize", normalize(), "query/key form: L2-normalise queries and keys");
  }
  void validate() const { detail::check_positive(temperature(), "temperature"); }
};

namespace functional {
/// Logits (N, 1 + K) = [positive, negative] / τ (the positive in column 0).
torch::Tensor info_nce_logits(const torch::Tensor& positive, const torch::Tensor& negative,
                              const InfoNCEOptions& options = {});
/// Scalar InfoNCE loss from scores, mean over rows.
torch::Tensor info_nce(const torch::Tensor& positive, const torch::Tensor& negative,
                       const InfoNCEOptions& options = {});
/// Scalar InfoNCE loss from embeddings: query (N, D), positive_key (N, D), negative_keys undefined
/// (in-batch), (M, D) shared or (N, M, D) per query.
torch::Tensor info_nce_keys(const torch::Tensor& query, const torch::Tensor& positive_key,
                            const torch::Tensor& negative_keys = {},
                            const InfoNCEOptions& options = {});
}  // namespace functional

/// Module form: forward(positive, negative) is the scores form; keys(...) the query/key form.
class InfoNCEImpl : public torch::nn::Cloneable<InfoNCEImpl> {
 public:
  explicit InfoNCEImpl(InfoNCEOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& positive, const torch::Tensor& negative);
  torch::Tensor keys(const torch::Tensor& query, const torch::Tensor& positive_key,
                     const torch::Tensor& negative_keys = {});
  InfoNCEOptions options;
};
TORCH_MODULE(InfoNCE);

}  // namespace contra::loss
