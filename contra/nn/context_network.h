#pragma once
/// Autoregressive context network g_ar of CPC (Oord et al. 2018, arXiv:1807.03748, §2.2).
#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct ContextNetworkOptions {
  ContextNetworkOptions(int64_t input_size = 256) : input_size_(input_size) {}
  /// Channels of the encoder output z_t.
  TORCH_ARG(int64_t, input_size);
  /// "gru" (paper), "lstm" (CPC_audio's default) or "transformer" (causal self-attention).
  TORCH_ARG(std::string, type) = "gru";
  /// Size H of c_t (GRU/LSTM hidden units, transformer model width).
  TORCH_ARG(int64_t, hidden_size) = 256;
  TORCH_ARG(int64_t, layers) = 1;
  /// Transformer only: attention heads (must divide hidden_size) and feed-forward width.
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(int64_t, feedforward) = 1024;
  /// Dropout inside the transformer layers (0 keeps training deterministic-friendly).
  TORCH_ARG(double, dropout) = 0.0;
};

/// c_t = g_ar(z_≤t) for every time step: a GRU, an LSTM, or a causal Transformer (masked
/// self-attention over frames ≤ t, sinusoidal position encoding added to a linear projection of z).
/// c_t depends only on z_1..z_t for every type (the prediction of z_{t+k} must not see the future).
///
/// Input (B, T, input_size) → output (B, T, hidden_size).
/// Throws ConfigError for an unknown type, non-positive sizes, or heads not dividing hidden_size.
///
///   ContextNetwork ar(ContextNetworkOptions(256).type("gru").hidden_size(256));
///   auto c = ar->forward(z);   // z (8, 128, 256) → c (8, 128, 256)
class ContextNetworkImpl : public torch::nn::Cloneable<ContextNetworkImpl> {
 public:
  explicit ContextNetworkImpl(ContextNetworkOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& z);

  ContextNetworkOptions options;

 private:
  torch::nn::GRU gru_{nullptr};
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::Linear input_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(ContextNetwork);

namespace functional {
/// Sinusoidal position encoding (Vaswani et al. 2017): (T, D), even columns sin, odd columns cos.
torch::Tensor sinusoidal_positions(int64_t length, int64_t dim,
                                   const torch::TensorOptions& options);
/// Additive causal attention mask (T, T): 0 on and below the diagonal, −inf above.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options);
}  // namespace functional

}  // namespace contra::nn
