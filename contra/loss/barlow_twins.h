#pragma once
/// Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny 2021, "Barlow Twins: Self-Supervised Learning
/// via Redundancy Reduction", arXiv:2103.03230, eq. 1 and the official code):
///
///   ẑ = (z − mean_batch z) / √(var_batch z + ε)     (batch norm without affine, biased variance)
///   C = ẑ₁ᵀ ẑ₂ / N                                   (D, D) cross-correlation
///   ℓ = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²
///
/// Shapes: z1 (N, D), z2 (N, D), N >= 2 → scalar. Identical or zero embeddings give ẑ = 0 and a
/// finite loss (D). Throws ConfigError for λ < 0 or ε <= 0, c10::Error for shape mismatches or N
/// < 2.
///
///   auto loss = contra::loss::functional::barlow_twins(z1, z2, BarlowTwinsOptions().lambd(5e-3));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct BarlowTwinsOptions {
  /// λ (>= 0): weight of the redundancy-reduction (off-diagonal) term; 0.0051 in the official code.
  TORCH_ARG(double, lambd) = 0.0051;
  /// ε (> 0) of the batch normalisation (BatchNorm1d's default).
  TORCH_ARG(double, eps) = 1e-5;

 public:
  template <class V>
  void visit(V& v) {
    v("lambd", lambd(), "off-diagonal weight λ (>= 0)");
    v("eps", eps(), "batch-norm ε (> 0)");
  }
  void validate() const {
    detail::check_non_negative(lambd(), "lambd");
    detail::check_positive(eps(), "eps");
  }
};

namespace functional {
torch::Tensor barlow_twins(const torch::Tensor& z1, const torch::Tensor& z2,
                           const BarlowTwinsOptions& options = {});

/// The same over the global batch of a distributed run (the official code's SyncBatchNorm and
/// all_reduce of C): ẑ standardised with the mean and variance of all ranks' rows, and
/// C = Σ_ranks ẑ₁ᵀẑ₂ / N_global (all-reduces with autograd). Every rank returns the same loss, the
/// one-process loss on the concatenated batch; each rank's gradient is W × its share, which the
/// data-parallel average divides back out. With one process this is barlow_twins().
torch::Tensor barlow_twins_global(const torch::Tensor& z1, const torch::Tensor& z2,
                                  const BarlowTwinsOptions& options = {});
}  // namespace functional

class BarlowTwinsImpl : public torch::nn::Cloneable<BarlowTwinsImpl> {
 public:
  explicit BarlowTwinsImpl(BarlowTwinsOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& z1, const torch::Tensor& z2);
  BarlowTwinsOptions options;
};
TORCH_MODULE(BarlowTwins);

}  // namespace contra::loss
