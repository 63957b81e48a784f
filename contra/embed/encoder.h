#pragma once
/// A trained checkpoint opened for encoding single items (queries) exactly the way `contra embed`
/// encodes a dataset's items: same representation (`features` kind), same preprocessing (audio
/// decoded, resampled to the recipe's rate, mono; images decoded, resized to the recipe's side,
/// grey/RGB as trained, normalised with the recipe's channel statistics), same pooling (audio:
/// mean over frames; images: the (B, D) representation itself). See docs/search.md.
///
///   auto enc = QueryEncoder::open("runs/byol_mnist", "", torch::kCPU);
///   torch::Tensor v = enc->encode_file("digit.png");      // (D) float32 on the CPU
///   torch::Tensor t = clip->encode_text("a photo of a seven");
///
/// encode_* are safe to call from several threads at once (one forward pass at a time).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

namespace contra::embed {

struct EncoderState;  // the loaded recipe, method and preprocessing (encoder.cpp)

/// A checkpoint loaded for encoding single queries the way `contra embed` encodes items.
class QueryEncoder {
 public:
  /// `checkpoint`: a run directory or a checkpoint file. features "" = the method's default
  /// representation (image recipes: probe.features; speech: probe.features; CLIP: the joint
  /// embedding "image"/"audio"). DataError for a missing/corrupt checkpoint, ConfigError for an
  /// unknown features kind.
  static std::shared_ptr<QueryEncoder> open(const std::string& checkpoint,
                                            const std::string& features, torch::Device device);

  /// "audio" | "image" | "image_text" | "audio_image" (the recipe's method modality).
  std::string modality() const;
  /// Dimension D of the vectors encode_* return.
  std::int64_t dim() const;
  /// True for CLIP recipes (method clip): encode_text works.
  bool has_text() const;
  /// The resolved checkpoint file, and the representation used (never "").
  const std::string& checkpoint() const;
  const std::string& features() const;
  /// "mean" (audio: mean over frames) or "none" (images, texts).
  std::string pooling() const;
  /// What a query file must be: "audio" (WAV/FLAC/...) or "image" (PNG/JPEG/...).
  std::string query_kind() const;

  /// An audio or image file's bytes (WAV/FLAC/… or PNG/JPEG/…) → (D) float32 CPU vector, exactly
  /// as embed computes it (same pooling, resampling/normalisation). `name` is used in errors.
  /// DataError when undecodable.
  torch::Tensor encode_bytes(const std::string& bytes, const std::string& name) const;
  /// encode_bytes of a file's content; IoError/DataError naming the file.
  torch::Tensor encode_file(const std::string& path) const;
  /// CLIP text → (D). UsageError when the checkpoint has no text encoder.
  torch::Tensor encode_text(const std::string& text) const;
  /// Several texts at once → (N, D).
  torch::Tensor encode_texts(const std::vector<std::string>& texts) const;

  /// The loaded state (used by contra::embed's dataset embedding; not part of the stable API).
  const EncoderState& state() const { return *state_; }

  explicit QueryEncoder(std::shared_ptr<EncoderState> state);

 private:
  std::shared_ptr<EncoderState> state_;
};

}  // namespace contra::embed
