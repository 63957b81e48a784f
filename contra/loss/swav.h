#pragma once
/// SwAV's swapped prediction (Caron et al. 2020, "Unsupervised Learning of Visual Features by
/// Contrasting Cluster Assignments", arXiv:2006.09882, eq. 1–3 and the official code): codes q are
/// computed from one view's prototype scores by Sinkhorn-Knopp (equal partition of the batch over
/// the K prototypes), and every other view predicts them:
///
///   Q = diag(u) exp(Sᵀ/ε) diag(v)  with rows summing to 1/K and columns to 1/B (3 iterations), × B
///   ℓ = 1/|assign| Σ_{a∈assign} 1/(V−1) Σ_{v≠a} −(1/B) Σ_b Σ_k q^a_bk log softmax(s^v_b / τ)_k
///
/// Shapes: scores (V, B, K) — the dot products of V views' normalised embeddings with the K
/// normalised prototypes → scalar. Codes carry no gradient. Sinkhorn-Knopp runs as the official
/// code (exponentials shifted by the largest score, so they cannot overflow) and again in log space
/// when a prototype's or a sample's exponentials all underflow (small ε). With equal scores
/// everywhere the loss is log K. Throws ConfigError for τ <= 0, ε <= 0, fewer than 1 iteration, no
/// or out-of-range assignment views; c10::Error for shapes (V < 2, an empty batch).
///
///   auto scores = torch::stack({z1.mm(protos.t()), z2.mm(protos.t())});   // (2, B, K)
///   auto loss = contra::loss::functional::swav(scores);
#include <cstdint>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct SwAVOptions {
  /// Softmax temperature τ (> 0) of the predictions.
  TORCH_ARG(double, temperature) = 0.1;
  /// Entropic regularisation ε (> 0) of Sinkhorn-Knopp.
  TORCH_ARG(double, epsilon) = 0.05;
  /// Sinkhorn-Knopp iterations (>= 1).
  TORCH_ARG(int64_t, sinkhorn_iterations) = 3;
  /// Views whose codes are predicted (indices into V; the official default is the two large crops).
  TORCH_ARG(std::vector<int64_t>, crops_for_assign) = std::vector<int64_t>{0, 1};

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "prediction temperature τ (> 0)");
    v("epsilon", epsilon(), "Sinkhorn-Knopp ε (> 0)");
    v("sinkhorn_iterations", sinkhorn_iterations(), "Sinkhorn-Knopp iterations (>= 1)");
    v("crops_for_assign", crops_for_assign(), "views whose codes are predicted");
  }
  void validate() const;
};

namespace functional {
/// Codes (B, K) for scores (B, K): each row sums to 1, each column to B/K. No gradient.
torch::Tensor sinkhorn_knopp(const torch::Tensor& scores, double epsilon = 0.05,
                             int64_t iterations = 3);
torch::Tensor swav(const torch::Tensor& scores, const SwAVOptions& options = {});
/// The official `distributed_sinkhorn`: Sinkhorn-Knopp over the scores of every rank of
/// dist::world() together (the total, the prototypes' row sums and B are global), this rank's codes
/// (B, K): equal to sinkhorn_knopp of the ranks' scores concatenated, this rank's rows. The
/// same as sinkhorn_knopp with one process.
torch::Tensor sinkhorn_knopp_global(const torch::Tensor& scores, double epsilon = 0.05,
                                    int64_t iterations = 3);
}  // namespace functional

class SwAVImpl : public torch::nn::Cloneable<SwAVImpl> {
 public:
  explicit SwAVImpl(SwAVOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& scores);
  SwAVOptions options;
};
TORCH_MODULE(SwAV);

}  // namespace contra::loss
