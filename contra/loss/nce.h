#pragma once
/// Noise-contrastive estimation (Gutmann & Hyvärinen 2010, "Noise-contrastive estimation: A new
/// estimation principle for unnormalized statistical models", AISTATS; JMLR 13, 2012): logistic
/// regression of data against ν noise samples per data sample, with known noise log-probabilities:
///
///   ∆(u) = s(u) − log(ν·q(u)),   h(u) = σ(∆(u))
///   ℓ = −[ log h(x) + Σ_{k=1..K} log(1 − h(y_k)) ],  mean over the N data samples,
///
/// which is −J_T of the paper (J_T sums over data and noise samples and divides by T_d).
/// s is the model's unnormalised log-density (log-normaliser included as a parameter, or not), q
/// the noise density, ν the noise ratio (K by default).
///
/// Shapes: data_scores s(x) (N), data_log_noise log q(x) (N), noise_scores s(y) (N, K),
/// noise_log_noise log q(y) (N, K) → scalar. Computed with softplus (−log σ(z) = softplus(−z)),
/// finite for any finite inputs. Throws ConfigError for noise_ratio < 0, c10::Error for shape
/// mismatches or an empty batch.
///
///   auto loss = contra::loss::functional::nce(s_data, logq_data, s_noise, logq_noise);
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "contra/loss/common.h"

namespace contra::loss {

struct NCEOptions {
  /// Noise ratio ν in ∆ = s − log(ν q); 0 means K, the number of noise samples per data sample.
  TORCH_ARG(double, noise_ratio) = 0.0;

 public:
  template <class V>
  void visit(V& v) {
    v("noise_ratio", noise_ratio(), "noise samples per data sample ν (0: K)");
  }
  void validate() const { detail::check_non_negative(noise_ratio(), "noise_ratio"); }
};

namespace functional {
torch::Tensor nce(const torch::Tensor& data_scores, const torch::Tensor& data_log_noise,
                  const torch::Tensor& noise_scores, const torch::Tensor& noise_log_noise,
                  const NCEOptions& options = {});
}  // namespace functional

class NCEImpl : public torch::nn::Cloneable<NCEImpl> {
 public:
  explicit NCEImpl(NCEOptions options = {});
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& data_scores, const torch::Tensor& data_log_noise,
                        const torch::Tensor& noise_scores, const torch::Tensor& noise_log_noise);
  NCEOptions options;
};
TORCH_MODULE(NCE);

}  // namespace contra::loss
