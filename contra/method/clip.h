#pragma once
/// CLIP (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
/// Supervision", arXiv:2103.00020): an image encoder and a text encoder trained so that the
/// matching (image, caption) pairs of a batch score highest under the symmetric InfoNCE of
/// contra::loss::Clip, with a learnable logit scale.
///
/// Two registry entries share this class:
///   - `clip` (modality image_text): image ↔ caption, text side = contra::nn::TextEncoder over
///     SentencePiece tokens. The tokeniser is trained by the recipe on the training captions and
///     kept in the module buffer `tokenizer_model`, so a checkpoint carries it.
///   - `clip_audio` (modality audio_image): image ↔ spoken word, the other side = CPC's strided
///     Conv1d encoder (contra::nn::ConvEncoder), optionally its GRU/LSTM/Transformer context
///     network, mean-pooled over frames, then a linear projection.
///
/// Image side: a Vision Transformer (type vit, CLIP's) or the small CNN / ResNet-18 of the image
/// methods followed by a linear projection (the ResNet option of the paper).
///
/// Batch: `input` = images (N, C, S, S); `extra["text_tokens"]` (N, L) int64 for clip,
/// `extra["audio"]` (N, 1, samples) for clip_audio. Metrics: i2t_acc and t2i_acc (the matching
/// item is the row's / column's argmax), logit_scale, pos_sim, neg_sim.
///
/// features(x, kind): "image" (the image encoder's pooled feature before the projection: what
/// linear probes read), "image_embedding" (projected and L2-normalised), "text_embedding"
/// (x = tokens), "audio" (pooled audio feature), "audio_embedding" (x = audio).
///
///   Clip m(ClipConfig{});
///   m.set_tokenizer(text::Tokenizer::train(captions, m.config().text.tokenizer));
///   Batch b; b.input = images; b.extra["text_tokens"] = m.tokenize(captions);
///   StepOutput out = m.step(b);
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "contra/loss/clip.h"
#include "contra/method/cpc_audio.h"
#include "contra/method/method.h"
#include "contra/nn/context_network.h"
#include "contra/nn/conv_encoder.h"
#include "contra/nn/transformer.h"
#include "contra/text/tokenizer.h"

namespace contra::method {

/// `method.image`.
struct ClipImageConfig {
  std::string type = "vit";  // vit | small_cnn | resnet18
  int64_t in_channels = 1;
  int64_t image_size = 28;
  int64_t patch_size = 7;
  int64_t width = 128;
  int64_t layers = 4;
  int64_t heads = 4;
  template <class V>
  void visit(V& v) {
    v("type", type, "vit (CLIP's Vision Transformer) | small_cnn | resnet18 (+ linear projection)");
    v("in_channels", in_channels, "image channels (1 grey, 3 RGB)");
    v("image_size", image_size, "side of the (square) input images");
    v("patch_size", patch_size, "vit: patch side (divides image_size)");
    v("width", width, "vit: model width; small_cnn/resnet18: first-stage channels (0 = default)");
    v("layers", layers, "vit: Transformer blocks");
    v("heads", heads, "vit: attention heads (divide width)");
  }
  void validate() const;
};

/// `method.text`.
struct ClipTextConfig {
  int64_t context_length = 24;
  int64_t width = 128;
  int64_t layers = 3;
  int64_t heads = 4;
  text::TokenizerConfig tokenizer;
  template <class V>
  void visit(V& v) {
    v("context_length", context_length, "tokens per caption incl. start/end (longer: truncated)");
    v("width", width, "Transformer width");
    v("layers", layers, "Transformer blocks");
    v("heads", heads, "attention heads (divide width)");
    v("tokenizer", tokenizer, "SentencePiece model trained on the training captions");
  }
  void validate() const;
};

/// `method.audio` of clip_audio.
struct ClipAudioSideConfig {
  CpcEncoderConfig encoder;
  CpcContextConfig context;
  bool use_context = true;
  template <class V>
  void visit(V& v) {
    v("encoder", encoder, "CPC's strided Conv1d encoder");
    v("context", context, "the autoregressive network over the encoder's frames");
    v("use_context", use_context, "pool the context network's c_t (true) or the encoder's z_t");
  }
  void validate() const;
};

struct ClipConfig {
  int64_t embed_dim = 64;
  ClipImageConfig image;
  ClipTextConfig text;
  loss::ClipOptions loss;
  template <class V>
  void visit(V& v) {
    v("embed_dim", embed_dim, "size of the joint embedding space");
    v("image", image, "the image encoder");
    v("text", text, "the text encoder and its tokeniser");
    v("loss", loss, "symmetric InfoNCE with a learnable logit scale");
  }
  void validate() const;
};

struct ClipAudioConfig {
  int64_t embed_dim = 64;
  ClipImageConfig image;
  ClipAudioSideConfig audio;
  loss::ClipOptions loss;
  template <class V>
  void visit(V& v) {
    v("embed_dim", embed_dim, "size of the joint embedding space");
    v("image", image, "the image encoder");
    v("audio", audio, "the audio encoder (CPC's), mean-pooled");
    v("loss", loss, "symmetric InfoNCE with a learnable logit scale");
  }
  void validate() const;
};

class Clip : public Method {
 public:
  explicit Clip(ClipConfig config);
  explicit Clip(ClipAudioConfig config);

  StepOutput step(const Batch& batch) override;
  torch::Tensor features(const torch::Tensor& input, const std::string& kind) override;
  std::string name() const override { return audio_ ? "clip_audio" : "clip"; }

  bool is_audio() const { return audio_; }
  int64_t embed_dim() const { return embed_dim_; }
  const ClipImageConfig& image_config() const { return image_config_; }
  /// clip only.
  const ClipTextConfig& text_config() const { return text_config_; }

  /// Projected, unnormalised embeddings (N, embed_dim).
  torch::Tensor encode_image(const torch::Tensor& images);
  torch::Tensor encode_text(const torch::Tensor& tokens);
  torch::Tensor encode_audio(const torch::Tensor& audio);
  /// Pooled features before the projection.
  torch::Tensor image_features(const torch::Tensor& images);
  torch::Tensor audio_features(const torch::Tensor& audio);
  /// Size of image_features' output.
  int64_t image_feature_size() const;

  /// clip: stores the tokeniser in the `tokenizer_model` buffer (saved with checkpoints). Throws
  /// ConfigError when its vocabulary exceeds the text encoder's (method.text.tokenizer.vocab_size).
  void set_tokenizer(const text::Tokenizer& tokenizer);
  bool has_tokenizer() const;
  /// The stored tokeniser; ConfigError when none was set or loaded. Thread-safe; the reference
  /// stays valid until the buffer changes (set_tokenizer, loading a checkpoint).
  const text::Tokenizer& tokenizer();
  /// Captions → (N, context_length) ids on the module's device.
  torch::Tensor tokenize(const std::vector<std::string>& captions);
  /// The per-channel normalisation of the training images (kept in the buffers image_mean /
  /// image_std, so `contra clip classify` can normalise a new image as training did).
  void set_image_stats(const std::vector<double>& mean, const std::vector<double>& std);
  /// (mean, std); empty when never set.
  std::pair<std::vector<double>, std::vector<double>> image_stats() const;
  /// Current logit scale exp(clamped log_scale).
  double logit_scale() const;

  // Image side: vit, or cnn + image_projection.
  nn::VisionTransformer vit{nullptr};
  torch::nn::AnyModule cnn;
  torch::nn::Linear image_projection{nullptr};
  // Text side.
  nn::TextEncoder text{nullptr};
  torch::Tensor tokenizer_model;
  // Audio side.
  nn::ConvEncoder audio_encoder{nullptr};
  nn::ContextNetwork audio_context{nullptr};
  torch::nn::Linear audio_projection{nullptr};
  loss::Clip loss{nullptr};
  torch::Tensor image_mean, image_std;

 private:
  void build_image(const ClipImageConfig& config);
  torch::Device device() const;

  bool audio_ = false;
  int64_t embed_dim_ = 0;
  ClipImageConfig image_config_;
  ClipTextConfig text_config_;
  ClipAudioSideConfig audio_config_;
  std::mutex tokenizer_mutex_;  // tokenizer() may be called from several threads
  std::unique_ptr<text::Tokenizer> tokenizer_;
  const void* tokenizer_data_ = nullptr;  // the buffer storage the cached tokeniser was read from
};

}  // namespace contra::method
