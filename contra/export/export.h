#pragma once
/// `contra export`: a trained method's encoder(s) as a safetensors file that PyTorch loads without
/// contra (python/contra_torch.py rebuilds the module from the file's metadata; docs/export.md).
///
/// Tensor names are the parameter and buffer names of the equivalent PyTorch module: the C++
/// submodule names with the method's prefix ("encoder.conv1.weight", "context.gru.weight_ih_l0",
/// "vit.transformer.blocks.0.qkv.weight", ...). The image methods' backbone is always "encoder.*"
/// (MoCo's encoder_q / encoder_k, BYOL's target_encoder included) and their head "projection.*".
/// Metadata (all strings):
///   format "pt", contra_version, method, features (the default kind of the module's forward),
///   architecture (JSON: family, kinds, modules {name: {type, sizes...}}, input, output),
///   source_checkpoint, step; CLIP also tokenizer (JSON) and the tensor "tokenizer_model" (the
///   SentencePiece model proto as uint8 bytes).
///
///   ExportSummary s = export_checkpoint("runs/cpc_speech", "cpc.safetensors");
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "contra/io/safetensors.h"
#include "contra/method/method.h"

namespace contra::exporter {

/// How inputs are prepared before the module sees them (the checkpoint alone does not say).
struct InputInfo {
  /// Images: per-channel mean/std of the [0, 1] pixels (empty when unknown), channels and side.
  std::vector<double> mean, std;
  std::int64_t image_size = 0;
  /// Audio: sample rate of the waveform in Hz.
  std::int64_t sample_rate = 16000;
};

/// The feature kind `contra export` writes when --features is not given: cpc_audio "context",
/// cpc_image and the image methods "encoder", clip/clip_audio "image_embedding".
std::string default_features(const method::Method& method);

/// The kinds `method` can be exported for (ConfigError for a method the export does not know).
std::vector<std::string> exportable_features(const method::Method& method);

/// ConfigError naming the method and the valid kinds unless `kind` is one of exportable_features.
void check_exportable(const method::Method& method, const std::string& kind);

/// Tensors and metadata of the module that computes method.features(x, features) (without
/// source_checkpoint/step, which `extra_metadata` may add). ConfigError for a kind that cannot be
/// exported; the tensors are detached CPU copies.
io::SafetensorsFile export_method(method::Method& method, const std::string& features,
                                  const InputInfo& input,
                                  const std::map<std::string, std::string>& extra_metadata = {});

struct ExportSummary {
  std::string out, checkpoint, method, features, architecture;
  std::int64_t step = 0, tensors = 0, parameters = 0;
};

/// Loads the checkpoint (a run directory or a .pt file) with its own config, builds the export
/// and writes it to `out` atomically. `features` "" = default_features. DataError naming the file
/// for a missing/corrupt checkpoint; ConfigError for an unknown kind.
ExportSummary export_checkpoint(const std::string& checkpoint, const std::string& out,
                                const std::string& features = "");

}  // namespace contra::exporter
