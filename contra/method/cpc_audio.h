#pragma once
/// Contrastive Predictive Coding on raw audio (Oord, Li, Vinyals 2018, arXiv:1807.03748).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "contra/core/error.h"
#include "contra/method/cpc_loss_kernels.h"
#include "contra/method/method.h"
#include "contra/method/sampled_scores.h"
#include "contra/nn/context_network.h"
#include "contra/nn/conv_encoder.h"
#include "contra/nn/cpc_predictor.h"

namespace contra::method {

/// `method.encoder`: the strided Conv1d stack (contra::nn::ConvEncoder).
struct CpcEncoderConfig {
  int64_t channels = 256;
  std::vector<int64_t> kernels{10, 8, 4, 4, 4};
  std::vector<int64_t> strides{5, 4, 2, 2, 2};
  std::vector<int64_t> paddings{3, 2, 1, 1, 1};
  std::string norm = "batch";
  std::string precision = "float32";
  template <class V>
  void visit(V& v) {
    v("channels", channels, "output channels of every conv layer (paper 512, CPC_audio 256)");
    v("kernels", kernels, "kernel size per layer");
    v("strides", strides, "stride per layer (product = samples per frame)");
    v("paddings", paddings, "padding per layer");
    v("norm", norm, "batch (default) | layer (per-frame channel norm, CPC_audio's default) | none");
    v("precision", precision,
      "float32 | bfloat16: compute dtype of the conv stack (parameters stay float32)");
  }
  void validate() const;
  /// The options of the nn::ConvEncoder this section describes.
  nn::ConvEncoderOptions options() const;
};

/// `method.context`: the autoregressive network (contra::nn::ContextNetwork).
struct CpcContextConfig {
  std::string type = "gru";
  int64_t hidden = 256;
  int64_t layers = 1;
  int64_t heads = 8;
  int64_t feedforward = 1024;
  double dropout = 0.0;
  template <class V>
  void visit(V& v) {
    v("type", type, "gru | lstm | transformer (causal)");
    v("hidden", hidden, "size of c_t");
    v("layers", layers, "stacked layers");
    v("heads", heads, "transformer: attention heads (divide hidden)");
    v("feedforward", feedforward, "transformer: feed-forward width");
    v("dropout", dropout, "transformer: dropout in [0, 1)");
  }
  void validate() const;
  /// The options of the nn::ContextNetwork this section describes, over encoder frames of
  /// `input_size` channels.
  nn::ContextNetworkOptions options(int64_t input_size) const;
};

/// `method.predictor`: W_k for k = 1..steps (contra::nn::CpcPredictor).
struct CpcPredictorConfig {
  int64_t steps = 12;
  std::string head = "linear";
  bool bias = false;
  int64_t heads = 8;
  template <class V>
  void visit(V& v) {
    v("steps", steps, "K: future steps predicted (paper 12)");
    v("head", head, "linear | transformer (one shared causal layer, then W_k)");
    v("bias", bias, "bias in W_k");
    v("heads", heads, "transformer head: attention heads");
  }
  void validate() const;
};

/// `method.loss`.
struct CpcLossConfig {
  double temperature = 1.0;
  std::string precision = "float32";
  template <class V>
  void visit(V& v) {
    v("temperature", temperature, "InfoNCE temperature on raw dot products (> 0; CPC 1.0)");
    v("precision", precision,
      "float32 | bfloat16 | auto (bf16 on CPUs with AMX-BF16, else float32): dtype of the "
      "W_k product and the scoring products (bf16 inputs, fp32 "
      "accumulation; the softmax stays float32; parameters stay float32). Several times faster on "
      "CPUs with AMX / AVX-512-BF16, slower on CPUs without; see docs/cpc.md for its accuracy");
  }
  void validate() const;
};

/// `method.negatives`.
struct CpcNegativesConfig {
  std::string mode = "batch";
  int64_t count = 128;
  int64_t hard = 16;
  int64_t bank_size = 2048;
  // Distributed runs, mode batch: draw negatives from every rank's frames (all-gathered, with
  // gradients), as one process would from the global batch.
  bool across_ranks = false;
  template <class V>
  void visit(V& v) {
    v("mode", mode, "batch | same_speaker | same_sequence | hard");
    v("across_ranks", across_ranks,
      "batch mode, distributed: negatives from all ranks' frames (the global batch)");
    v("count", count, "negatives per prediction (paper 128)");
    v("hard", hard, "hard mode: how many of `count` are nearest memory-bank entries");
    v("bank_size", bank_size, "hard mode: memory bank capacity in frames (FIFO)");
  }
  void validate() const;
};

/// The `method:` section of a CPC recipe.
struct CpcAudioConfig {
  CpcEncoderConfig encoder;
  CpcContextConfig context;
  CpcPredictorConfig predictor;
  CpcLossConfig loss;
  CpcNegativesConfig negatives;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder);
    v("context", context);
    v("predictor", predictor);
    v("loss", loss);
    v("negatives", negatives);
  }
  void validate() const;
};

/// Where negatives come from.
enum class NegativeMode {
  kBatch,         ///< uniform over all frames of the minibatch
  kSameSpeaker,   ///< frames of windows whose label equals the anchor's (CPC_audio's default)
  kSameSequence,  ///< frames of the anchor's own window
  kHard,          ///< in-batch uniform + nearest memory-bank entries to the positive
};
/// "batch", "same_speaker", "same_sequence", "hard"; anything else → ConfigError listing them.
NegativeMode parse_negative_mode(const std::string& name);
const char* negative_mode_name(NegativeMode mode);

/// How many distinct frames the pool of the tightest anchor offers (its pool minus the positive)
/// for a batch of `batch` windows of `frames` frames each; `labels` (B) is needed for kSameSpeaker.
int64_t available_negatives(NegativeMode mode, int64_t batch, int64_t frames,
                            const torch::Tensor& labels = {});

/// Samples `count` negatives per anchor, uniformly with replacement from the anchor's pool minus
/// the positive itself, with torch ops only (randint + shift: r ∈ [0, P−1), r += (r ≥ positive's
/// slot)).
///
/// Frames are numbered b·frames + t over the minibatch. positive: (M) int64 frame ids of the
/// positives z_{t+k}; returns (M, count) int64 frame ids, never equal to the row's positive, within
/// the pool of `mode` (kHard samples its in-batch part like kBatch). Throws ConfigError when
/// `count` exceeds `available_negatives` (the numbers in the message), or when labels are
/// missing/mis-sized for kSameSpeaker.
///
///   auto neg = sample_negatives(NegativeMode::kSameSequence, pos, 8, 128, 64);   // (M, 64)
torch::Tensor sample_negatives(NegativeMode mode, const torch::Tensor& positive, int64_t batch,
                               int64_t frames, int64_t count, const torch::Tensor& labels = {});

// sampled_scores(predictions, frames, index): contra/method/sampled_scores.h
// step_info_nce, uniform_candidates: contra/method/cpc_loss_kernels.h

/// CPC for audio: z = g_enc(x) (ConvEncoder), c = g_ar(z) (ContextNetwork), ẑ_{t+k} = W_k c_t
/// (CpcPredictor), and per step k the InfoNCE loss
///   L_k = −E log exp(ẑ_{t+k}·z_{t+k}/τ) / (exp(ẑ_{t+k}·z_{t+k}/τ) + Σ_{n} exp(ẑ_{t+k}·z_n/τ)),
/// z_n the sampled negatives; loss = mean_k L_k over anchors t ∈ [0, T−k).
///
/// step(batch): batch.input (B, 1, S) float audio, batch.labels (B) int64 speaker ids (needed for
/// same_speaker). Metrics: loss, loss_k and acc_k (share of anchors whose positive scores strictly
/// highest) for k = 1..K. Negatives are sampled independently for every k and anchor
/// (sample_candidates); all steps are scored in one call (step_info_nce: fused sparse kernels on
/// the CPU, one dense product per k elsewhere), never materialising (B, T, N, C) negative vectors.
/// Hard mode keeps a FIFO memory bank of past frames (detached z) as module buffers (`bank`,
/// `bank_next`, `bank_filled`, saved by checkpoints), pushed in step() while training; the `hard`
/// entries nearest (Euclidean) to each positive z_{t+k} join its negatives; until the bank holds
/// `hard` frames those slots are in-batch negatives. `loss.precision: bfloat16` runs the scoring
/// products in bf16 (fp32 accumulation, fp32 softmax), `encoder.precision: bfloat16` the conv
/// stack. features(input, "context" | "encoder") → c (B, T, H) | z (B, T, C); wrap in
/// torch::NoGradGuard for frozen features. Frame t of either is centred on sample t·160 + 79, i.e.
/// aligned with 100 Hz label t (ConvEncoder). Throws ConfigError for invalid config, a window
/// shorter than `min_window()`, more negatives than a batch can supply, missing labels for
/// same_speaker, an unknown feature kind.
///
///   CpcAudio cpc(CpcAudioConfig{});
///   auto out = cpc.step(batch);          // out.loss, out.metrics["acc_12"]
///   out.loss.backward();
class CpcAudio : public Method {
 public:
  explicit CpcAudio(CpcAudioConfig config = {});

  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return "cpc_audio"; }

  /// The loss part of step(): z (B, T, C) encoder frames, predictions (B, T, K, C) from the
  /// predictor, labels (B) speaker ids (same_speaker). Returns the loss averaged over k and the
  /// metrics.
  StepOutput contrastive_loss(const torch::Tensor& z, const torch::Tensor& predictions,
                              const torch::Tensor& labels = {});

  /// The candidates step() scores, drawn as step() draws them (same generator calls): for every
  /// row of cpc_rows(batch, frames, K) order, the positive's pool id (pool_offset + b·T + t + k),
  /// then `count` negatives of the configured mode (a pool of `pool_batch` windows). batch and
  /// hard mode on the CPU: uniform_candidates seeded by one draw of the default generator; else
  /// sample_negatives per step. (R, 1 + count) int32 or int64. Hard mode's bank entries are not
  /// included (step() appends them).
  torch::Tensor sample_candidates(int64_t batch, int64_t frames, int64_t count,
                                  const torch::Tensor& labels = {}, int64_t pool_batch = 0,
                                  int64_t pool_offset = 0, c10::Device device = torch::kCPU) const;

  /// Encoder frames for a window of `samples` samples (20480 → 128 by default).
  int64_t frames_for(int64_t samples) const;
  /// Shortest usable window: receptive field + K · downsampling samples.
  int64_t min_window() const;
  /// Throws ConfigError unless `samples` >= min_window().
  void check_window(int64_t samples) const;
  /// Throws ConfigError unless a batch of `batch` windows of `samples` samples (with `labels` for
  /// same_speaker) can supply the configured negatives.
  void check_batch(int64_t batch, int64_t samples, const torch::Tensor& labels = {}) const;

  const CpcAudioConfig& config() const { return config_; }
  NegativeMode negative_mode() const { return mode_; }

  nn::ConvEncoder encoder{nullptr};
  nn::ContextNetwork context{nullptr};
  nn::CpcPredictor predictor{nullptr};

 private:
  void push_bank(const torch::Tensor& frames);

  CpcAudioConfig config_;
  NegativeMode mode_;
  torch::Tensor bank_;         // (bank_size, C) past frames, hard mode only
  torch::Tensor bank_next_;    // () int64: next slot to overwrite
  torch::Tensor bank_filled_;  // () int64: valid entries
};

}  // namespace contra::method
