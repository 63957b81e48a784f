#pragma once
/// Strided Conv1d encoder of raw audio, as in CPC (Oord et al. 2018, arXiv:1807.03748, §3.1).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

struct ConvEncoderOptions {
  /// Input channels (1 for mono audio).
  TORCH_ARG(int64_t, in_channels) = 1;
  /// Output channels of every layer (paper 512, CPC_audio 256).
  TORCH_ARG(int64_t, channels) = 256;
  TORCH_ARG(std::vector<int64_t>, kernels) = std::vector<int64_t>{10, 8, 4, 4, 4};
  TORCH_ARG(std::vector<int64_t>, strides) = std::vector<int64_t>{5, 4, 2, 2, 2};
  TORCH_ARG(std::vector<int64_t>, paddings) = std::vector<int64_t>{3, 2, 1, 1, 1};
  /// "none", "batch" (BatchNorm1d) or "layer" (CPC_audio's channel norm: per frame, over channels).
  TORCH_ARG(std::string, norm) = "layer";
  /// Epsilon of the normalisation.
  TORCH_ARG(double, eps) = 1e-5;
  /// "float32" or "bfloat16": compute dtype of the convolutions and layer norms (parameters stay
  /// float32; batch-norm statistics float32). bf16 runs ~2× faster on CPUs with AMX/AVX512-BF16.
  TORCH_ARG(std::string, precision) = "float32";
};

/// CPC's audio encoder g_enc: a stack of Conv1d → norm → ReLU layers, 160× down-sampling by default
/// (16 kHz → 100 Hz frames).
///
/// Layer l maps length L to ⌊(L + 2·p_l − k_l) / s_l⌋ + 1; with the defaults 20480 samples → 128
/// frames. Frame t sees samples [t·D − o, t·D − o + R) with D = `downsampling()` (160), R =
/// `receptive_field()` (465) and o = `padding_offset()` = Σ_l p_l·Π_{j<l} s_j (153): [t·160 − 153,
/// t·160 + 311], centred at t·160 + 79 ≈ the centre of the hop [t·160, t·160 + 160). Feature
/// extractors aligned with the encoder (MFCC, 100 Hz phone labels) centre their frame t at t·160
/// + 80. "layer" norm: y = γ ⊙ (x − μ_t) / sqrt(σ²_t + ε) + β with μ_t, σ²_t the mean and (biased)
/// variance over the channels of frame t (CPC_audio's ChannelNorm uses the unbiased variance; the
/// difference is a factor C/(C−1) inside the square root, and the fused LayerNorm kernel is
/// faster).
///
/// Input (B, in_channels, S) float; output (B, T, channels), time-major for the context network.
/// Throws ConfigError for inconsistent options (list lengths, non-positive sizes, unknown norm).
///
///   ConvEncoder enc(ConvEncoderOptions().channels(256));
///   auto z = enc->forward(torch::randn({8, 1, 20480}));   // (8, 128, 256)
class ConvEncoderImpl : public torch::nn::Cloneable<ConvEncoderImpl> {
 public:
  explicit ConvEncoderImpl(ConvEncoderOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);

  /// Product of the strides (160 by default): samples per output frame.
  int64_t downsampling() const;
  /// Samples that influence one output frame (465 by default).
  int64_t receptive_field() const;
  /// Σ_l p_l·Π_{j<l} s_j (153 by default): how far before t·downsampling() frame t's field starts.
  int64_t padding_offset() const;
  /// Output frames for an input of `samples` samples (0 when too short).
  int64_t frames_for(int64_t samples) const;

  ConvEncoderOptions options;

 private:
  torch::nn::ModuleList convs_{nullptr};
  torch::nn::ModuleList norms_{nullptr};  // BatchNorm1d or LayerNorm, empty for "none"
};
TORCH_MODULE(ConvEncoder);

}  // namespace contra::nn
