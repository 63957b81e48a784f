#pragma once
/// CPC prediction heads W_k, k = 1..K (Oord et al. 2018, arXiv:1807.03748, eq. 3).
#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/transformer.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct CpcPredictorOptions {
  CpcPredictorOptions(int64_t context_size = 256, int64_t encoder_size = 256)
      : context_size_(context_size), encoder_size_(encoder_size) {}
  /// H: size of c_t.
  TORCH_ARG(int64_t, context_size);
  /// C: size of z_t (what is predicted).
  TORCH_ARG(int64_t, encoder_size);
  /// K: number of future steps predicted.
  TORCH_ARG(int64_t, steps) = 12;
  /// "linear" (paper: W_k c_t) or "transformer" (one causal Transformer layer shared by all steps,
  /// then W_k).
  TORCH_ARG(std::string, head) = "linear";
  /// Bias in W_k (CPC_audio: none).
  TORCH_ARG(bool, bias) = false;
  /// Transformer head only: attention heads (must divide context_size) and feed-forward width.
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(int64_t, feedforward) = 1024;
  /// "float32", "bfloat16" or "auto" (bf16 on CPUs with bf16 hardware, see resolve_bf16): dtype of
  /// the W_k product (parameters stay float32; the output is then bf16, for a bf16 loss). On CPUs
  /// with AMX this product is several times faster.
  TORCH_ARG(std::string, precision) = "float32";
};

/// Predictions ẑ_{t+k} = W_k h_t for k = 1..K, all steps in one matrix product: one Linear H → K·C
/// whose output is viewed as (K, C). h_t = c_t ("linear") or a shared causal Transformer layer over
/// c
/// ("transformer"), so ẑ_{t+k} depends on c_≤t only.
///
/// Input c (B, T, H) → (B, T, K, C) (bf16 with precision "bfloat16"); out[:, t, k−1] predicts
/// z_{t+k}.
/// Throws ConfigError for non-positive sizes, an unknown head, or heads not dividing H.
///
///   CpcPredictor pred(CpcPredictorOptions(256, 256).steps(12));
///   auto p = pred->forward(c);   // (8, 128, 256) → (8, 128, 12, 256)
class CpcPredictorImpl : public torch::nn::Cloneable<CpcPredictorImpl> {
 public:
  explicit CpcPredictorImpl(CpcPredictorOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& context);

  CpcPredictorOptions options;

 private:
  torch::nn::TransformerEncoderLayer shared_{nullptr};
  torch::nn::Linear linear_{nullptr};
};
TORCH_MODULE(CpcPredictor);

}  // namespace contra::nn
