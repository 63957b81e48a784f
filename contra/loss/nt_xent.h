#pragma once
/// NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen, Kornblith, Norouzi &
/// Hinton 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
/// arXiv:2002.05709, eq. 1), over the 2N views of N items, both directions:
///
///   ℓ(i, j) = −log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ),   sim = cosine
///   L = 1/(2N) Σ_{items} [ℓ(2k−1, 2k) + ℓ(2k, 2k−1)]
///
/// With a memory bank (M, D) its M entries are further negatives in every denominator.
///
/// Shapes: z1 (N, D) and z2 (N, D), the two views of the same N items; memory_bank (M, D) or
/// undefined → scalar. Log-sum-exp with the self-similarity masked out, norms clamped: finite for
/// small τ, identical or zero embeddings. With all 2N embeddings equal the loss is log(2N − 1)
/// (log(2N − 1 + M) with an equal bank). Throws ConfigError for τ <= 0, c10::Error for shape
/// mismatches or an empty batch.
///
///   auto loss = contra::loss::functional::nt_xent(z1, z2, {}, NTXentOptions().temperature(0.5));
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any_value.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct NTXentOptions {
  /// Temperature τ (> 0); SimCLR uses 0.1–0.5.
  TORCH_ARG(double, temperature) = 0.5;
  /// L2-normalise the embeddings (cosine similarity, as in SimCLR); off: raw dot products.
  TORCH_ARG(bool, normalize) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("temperature", temperature(), "temperature τ (> 0)");
    v("normalize", normalize(), "cosine similarity (true) or raw dot products");
  }
  void validate() const { detail::check_positive(temperature(), "temperature"); }
};

namespace functional {
torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2,
                      const torch::Tensor& memory_bank = {}, const NTXentOptions& options = {});

/// NT-Xent over the global batch of a distributed run: this rank's 2N anchors (its z1, z2) against
/// the 2·W·N views of all W ranks (dist::all_gather, with gradients), the positive of a local row
/// at its offset rank·N in the gathered views. The mean over ranks of the returned losses equals
/// nt_xent on the concatenated batch, and with data-parallel gradient averaging so do the
/// gradients (tested). With one process this is nt_xent(z1, z2).
torch::Tensor nt_xent_global(const torch::Tensor& z1, const torch::Tensor& z2,
                             const NTXentOptions& options = {});
}  // namespace functional

class NTXentImpl : public torch::nn::Cloneable<NTXentImpl> {
 public:
  explicit NTXentImpl(NTXentOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& z1, const torch::Tensor& z2,
                        const torch::Tensor& memory_bank = {});
  NTXentOptions options;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(torch::Tensor())})
};
TORCH_MODULE(NTXent);

}  // namespace contra::loss
