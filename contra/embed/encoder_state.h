#pragma once
/// Internal to contra/embed: the loaded checkpoint behind a QueryEncoder and the dataset embedder,
/// so that both encode an item with exactly the same code.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

#include "contra/core/config.h"
#include "contra/data/image_batches.h"
#include "contra/method/method.h"

namespace contra::method {
class Clip;
}

namespace contra::embed {

struct EncoderState {
  std::string checkpoint;   // resolved checkpoint file (absolute)
  std::string features;     // resolved representation ("embedding" = CLIP's joint space)
  std::string modality;     // audio | image | image_text | audio_image
  std::string method_name;  // registry name
  std::int64_t step = 0;
  ConfigTree tree;
  std::shared_ptr<method::Method> method;
  method::Clip* clip = nullptr;  // method as Clip for CLIP recipes
  c10::Device device = c10::Device(c10::kCPU);
  std::int64_t dim = 0;
  // Images: normalisation and the input side/channels the model was trained on.
  data::ChannelStats stats;
  std::int64_t channels = 0, side = 0;
  bool has_images = false;
  // clip_audio: samples of the audio window (centre crop / zero pad).
  std::int64_t audio_window = 0;
  mutable std::mutex mutex;  // one forward pass at a time

  /// The recipe's image set for the `split` ("train" | "test") of its own data section (image
  /// and CLIP recipes), or an undefined dataset when the recipe has none.
  /// Images uint8 (N, C, H, W) → (N, D) float CPU, resized to `side` when needed, normalised.
  torch::Tensor encode_images(const torch::Tensor& images) const;
  /// Speech: mono 16 kHz wave (1, S) → (T, D) frame features (CPU float).
  torch::Tensor encode_frames(const torch::Tensor& wave) const;
  /// Audio (speech: mean of encode_frames; clip_audio: the audio embedding of the centred window)
  /// → (D).
  torch::Tensor encode_audio(const torch::Tensor& wave) const;
  /// CLIP text → (N, D).
  torch::Tensor encode_texts(const std::vector<std::string>& texts) const;
  /// "audio", "image" or "text" items this encoder takes.
  bool takes_images() const { return has_images; }
  bool takes_audio() const { return modality == "audio" || modality == "audio_image"; }
  bool takes_text() const;
  /// "mean" for audio pooled over frames, else "none".
  std::string pooling() const { return modality == "audio" ? "mean" : "none"; }
};

/// Loads the checkpoint (run dir or file). DataError for a missing/corrupt checkpoint.
std::shared_ptr<EncoderState> open_encoder_state(const std::string& checkpoint,
                                                 const std::string& features, torch::Device device);

/// "image" (PNG/JPEG/BMP/GIF magic), "audio" (RIFF/WAVE, fLaC, OggS) or "" from a file's first
/// bytes.
std::string sniff_media(const std::string& bytes);

}  // namespace contra::embed
