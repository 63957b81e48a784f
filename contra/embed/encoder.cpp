#include "contra/embed/encoder.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/audio.h"
#include "contra/data/captions.h"
#include "contra/data/images.h"
#include "contra/embed/encoder_state.h"
#include "contra/method/clip.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"

namespace contra::embed {
namespace fs = std::filesystem;

namespace {

// The training images of an image recipe (for the normalisation statistics and the input side).
data::ImageDataset recipe_train_images(const train::ImageDataConfig& c) {
  if (c.format == "mnist") {
    check<DataError>(path_exists(c.root),
                     "embed: data.root '{}' of the checkpoint's recipe does not exist (its "
                     "training images give the normalisation; run from the training folder or "
                     "set data.mean/data.std)",
                     c.root);
    return data::read_mnist(c.root, c.train_split);
  }
  if (c.format == "cifar10") return data::read_cifar10(c.root, true);
  data::ImageFolderOptions options;
  options.channels = static_cast<int>(c.channels);
  return data::read_image_folder((fs::path(c.root) / c.train_split).string(), options);
}

void open_image_recipe(EncoderState& s, const std::string& features) {
  train::ImageRecipe r = train::load_image_recipe(s.tree);
  s.features = features.empty() ? r.probe.features : features;
  s.has_images = true;
  if (!r.data.mean.empty() && r.data.known_side() > 0) {
    s.stats.mean = r.data.mean;
    s.stats.std = r.data.std;
    s.side = r.data.known_side();
    s.channels = r.data.format == "mnist" ? 1 : 3;
  } else {
    data::ImageDataset train = recipe_train_images(r.data);
    check<DataError>(train.size() > 0, "embed: the recipe's training set '{}' is empty",
                     r.data.root);
    s.channels = train.images.size(1);
    s.side = train.images.size(2);
    if (r.data.mean.empty()) {
      s.stats = data::channel_stats(train.images);
    } else {
      s.stats.mean = r.data.mean;
      s.stats.std = r.data.std;
    }
  }
}

void open_speech_recipe(EncoderState& s, const std::string& features) {
  train::Recipe r = train::load_recipe(s.tree);
  s.features = features.empty() ? r.probe.features : features;
}

void open_clip_recipe(EncoderState& s, const std::string& features) {
  train::ClipRecipe r = train::load_clip_recipe(s.tree);
  s.clip = dynamic_cast<method::Clip*>(s.method.get());
  check<DataError>(s.clip != nullptr, "embed: '{}' holds method {}, expected clip or clip_audio",
                   s.checkpoint, s.method_name);
  s.features = features.empty() ? "embedding" : features;
  const bool audio = s.clip->is_audio();
  const bool ok =
      s.features == "embedding" || s.features == "image" || (audio && s.features == "audio");
  check<ConfigError>(ok, "embed: features '{}' is not a representation of {} (expected {})",
                     s.features, s.method_name,
                     audio ? "embedding (the joint space), image or audio"
                           : "embedding (the joint space) or image");
  auto [mean, std] = s.clip->image_stats();
  check<DataError>(!mean.empty(), "embed: '{}' stores no image normalisation (image_mean)",
                   s.checkpoint);
  s.stats = {mean, std};
  s.side = s.clip->image_config().image_size;
  s.channels = s.clip->image_config().in_channels;
  s.has_images = s.features != "audio";
  if (audio) s.audio_window = static_cast<std::int64_t>(std::llround(r.data.clip_seconds * 16000));
}

std::atomic<std::uint64_t> temp_counter{0};

// A file holding `bytes` for the decoders that read paths; removed on destruction.
class TempMedia {
 public:
  TempMedia(const std::string& bytes, const std::string& ext) {
    path_ = (fs::temp_directory_path() /
             fmt::format("contra-query-{}-{}{}", ::getpid(), temp_counter++, ext))
                .string();
    std::ofstream out(path_, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    check<IoError>(static_cast<bool>(out), "embed: cannot write a temporary file '{}'", path_);
  }
  ~TempMedia() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string extension_for(const std::string& bytes) {
  if (bytes.rfind("\x89PNG", 0) == 0) return ".png";
  if (bytes.rfind("\xFF\xD8\xFF", 0) == 0) return ".jpg";
  if (bytes.rfind("BM", 0) == 0) return ".bmp";
  if (bytes.rfind("GIF8", 0) == 0) return ".gif";
  if (bytes.rfind("fLaC", 0) == 0) return ".flac";
  if (bytes.rfind("OggS", 0) == 0) return ".ogg";
  if (bytes.rfind("RIFF", 0) == 0) return ".wav";
  return "";
}

}  // namespace

std::string sniff_media(const std::string& bytes) {
  const std::string ext = extension_for(bytes);
  if (ext == ".png" || ext == ".jpg" || ext == ".bmp" || ext == ".gif") return "image";
  if (ext == ".flac" || ext == ".ogg") return "audio";
  if (ext == ".wav") return bytes.size() >= 12 && bytes.compare(8, 4, "WAVE") == 0 ? "audio" : "";
  return "";
}

bool EncoderState::takes_text() const {
  return modality == "image_text" && features == "embedding";
}

torch::Tensor EncoderState::encode_images(const torch::Tensor& images) const {
  check<DataError>(has_images, "embed: {} ({} features '{}') does not encode images", checkpoint,
                   method_name, features);
  check<DataError>(images.dim() == 4 && images.scalar_type() == torch::kUInt8,
                   "embed: images must be uint8 (N, C, H, W) (got {})", c10::str(images.sizes()));
  check<DataError>(images.size(1) == channels,
                   "embed: images have {} channels, the model of '{}' takes {}", images.size(1),
                   checkpoint, channels);
  torch::Tensor x = images;
  if (x.size(2) != side || x.size(3) != side) {
    std::vector<torch::Tensor> resized;
    resized.reserve(static_cast<size_t>(x.size(0)));
    for (std::int64_t i = 0; i < x.size(0); ++i) resized.push_back(data::resize_image(x[i], side));
    x = torch::stack(resized);
  }
  x = data::normalize_images(data::to_unit_float(x), stats).to(device);
  const std::string kind = clip && features == "embedding" ? "image_embedding" : features;
  torch::Tensor y;
  {
    std::lock_guard<std::mutex> lock(mutex);
    torch::NoGradGuard guard;
    y = method->features(x, kind);
  }
  check<DataError>(y.dim() == 2, "embed: features '{}' of {} are not vectors (shape {})", kind,
                   method_name, c10::str(y.sizes()));
  return y.to(torch::kCPU, torch::kFloat).contiguous();
}

torch::Tensor EncoderState::encode_frames(const torch::Tensor& wave) const {
  check<DataError>(modality == "audio", "embed: {} does not give frame features", method_name);
  torch::Tensor y;
  {
    std::lock_guard<std::mutex> lock(mutex);
    torch::NoGradGuard guard;
    y = method->features(wave.reshape({1, 1, -1}).to(device), features);
  }
  check<DataError>(y.dim() == 3, "embed: features '{}' of {} are not frame sequences (shape {})",
                   features, method_name, c10::str(y.sizes()));
  return y.squeeze(0).to(torch::kCPU, torch::kFloat).contiguous();
}

torch::Tensor EncoderState::encode_audio(const torch::Tensor& wave) const {
  check<DataError>(takes_audio() && (modality == "audio" || features != "image"),
                   "embed: {} ({} features '{}') does not encode audio", checkpoint, method_name,
                   features);
  if (modality == "audio") {
    torch::Tensor frames = encode_frames(wave);
    check<DataError>(frames.size(0) > 0,
                     "embed: the audio is too short for the encoder ({} samples give no frame)",
                     wave.numel());
    return frames.mean(0);
  }
  // clip_audio: the centred window of audio_window samples (shorter: zero-padded), as evaluation.
  torch::Tensor a = wave.reshape({-1});
  torch::Tensor x = torch::zeros({1, 1, audio_window});
  const std::int64_t n = a.numel();
  if (n <= audio_window) {
    x[0][0].narrow(0, (audio_window - n) / 2, n).copy_(a);
  } else {
    x[0][0].copy_(a.narrow(0, (n - audio_window) / 2, audio_window));
  }
  const std::string kind = features == "embedding" ? "audio_embedding" : "audio";
  torch::Tensor y;
  {
    std::lock_guard<std::mutex> lock(mutex);
    torch::NoGradGuard guard;
    y = method->features(x.to(device), kind);
  }
  return y.reshape({-1}).to(torch::kCPU, torch::kFloat).contiguous();
}

torch::Tensor EncoderState::encode_texts(const std::vector<std::string>& texts) const {
  if (!takes_text()) {
    throw UsageError(fmt::format(
        "embed: '{}' has no text encoder in its embedding space (method {}, features '{}'); "
        "text queries need a clip checkpoint with features 'embedding'",
        checkpoint, method_name, features));
  }
  std::lock_guard<std::mutex> lock(mutex);
  torch::NoGradGuard guard;
  torch::Tensor tokens = clip->tokenize(texts);
  return method->features(tokens, "text_embedding").to(torch::kCPU, torch::kFloat).contiguous();
}

std::shared_ptr<EncoderState> open_encoder_state(const std::string& checkpoint_arg,
                                                 const std::string& features,
                                                 torch::Device device) {
  check<DataError>(!checkpoint_arg.empty(), "embed: no checkpoint given");
  check<DataError>(path_exists(checkpoint_arg), "embed: checkpoint '{}' does not exist",
                   checkpoint_arg);
  auto s = std::make_shared<EncoderState>();
  s->checkpoint = fs::absolute(train::resolve_checkpoint(checkpoint_arg)).lexically_normal();
  s->device = device;
  train::CheckpointMeta meta = train::read_checkpoint_meta(s->checkpoint);
  s->tree = ConfigTree::from_string(meta.config_yaml, s->checkpoint + " (config)");
  s->modality = method::method_modality(s->tree);
  s->method = method::make_method(s->tree);
  s->method_name = s->method->name();
  s->step = train::load_checkpoint(s->checkpoint, *s->method).step;
  s->method->to(device);
  s->method->eval();
  if (s->modality == "image") {
    open_image_recipe(*s, features);
  } else if (s->modality == "audio") {
    open_speech_recipe(*s, features);
  } else {
    open_clip_recipe(*s, features);
  }
  // The dimension, from one forward pass on a blank input (this also rejects an unknown kind).
  if (s->has_images) {
    s->dim =
        s->encode_images(torch::zeros({1, s->channels, s->side, s->side}, torch::kUInt8)).size(1);
  } else {
    s->dim = s->encode_audio(torch::zeros({1, 16000})).size(0);
  }
  return s;
}

// ---- QueryEncoder ----------------------------------------------------------------------------

QueryEncoder::QueryEncoder(std::shared_ptr<EncoderState> state) : state_(std::move(state)) {}

std::shared_ptr<QueryEncoder> QueryEncoder::open(const std::string& checkpoint,
                                                 const std::string& features,
                                                 torch::Device device) {
  return std::make_shared<QueryEncoder>(open_encoder_state(checkpoint, features, device));
}

std::string QueryEncoder::modality() const { return state_->modality; }
std::int64_t QueryEncoder::dim() const { return state_->dim; }
bool QueryEncoder::has_text() const { return state_->takes_text(); }
const std::string& QueryEncoder::checkpoint() const { return state_->checkpoint; }
const std::string& QueryEncoder::features() const { return state_->features; }
std::string QueryEncoder::pooling() const { return state_->pooling(); }
std::string QueryEncoder::query_kind() const {
  if (state_->modality == "audio") return "audio";
  if (state_->modality == "audio_image" && state_->features != "image") {
    return state_->features == "audio" ? "audio" : "image or audio";
  }
  return "image";
}

torch::Tensor QueryEncoder::encode_bytes(const std::string& bytes, const std::string& name) const {
  const std::string kind = sniff_media(bytes);
  const EncoderState& s = *state_;
  if (kind.empty()) {
    throw DataError(fmt::format(
        "embed: '{}' is neither an image (PNG/JPEG/BMP/GIF) nor audio (WAV/FLAC/OGG) ({} bytes)",
        name, bytes.size()));
  }
  const bool ok = kind == "image" ? s.takes_images() : s.takes_audio() && s.features != "image";
  check<DataError>(ok, "embed: '{}' is {}, but {} (features '{}') encodes {}", name,
                   kind == "image" ? "an image" : "audio", s.method_name, s.features, query_kind());
  TempMedia file(bytes, extension_for(bytes));
  try {
    if (kind == "image") {
      torch::Tensor image = data::read_image_file(file.path(), static_cast<int>(s.channels));
      return s.encode_images(image.unsqueeze(0))[0].contiguous();
    }
    return s.encode_audio(data::read_audio(file.path()));
  } catch (const Error& e) {
    // The decoders name the temporary file; name the caller's item instead.
    std::string what = e.what();
    for (auto pos = what.find(file.path()); pos != std::string::npos;
         pos = what.find(file.path())) {
      what.replace(pos, file.path().size(), name);
    }
    if (dynamic_cast<const IoError*>(&e)) throw IoError(what);
    if (dynamic_cast<const ConfigError*>(&e)) throw ConfigError(what);
    throw DataError(fmt::format("{}", what));
  }
}

torch::Tensor QueryEncoder::encode_file(const std::string& path) const {
  check<DataError>(path_exists(path), "embed: query file '{}' does not exist", path);
  return encode_bytes(read_file(path), path);
}

torch::Tensor QueryEncoder::encode_text(const std::string& text) const {
  return encode_texts({text})[0].contiguous();
}

torch::Tensor QueryEncoder::encode_texts(const std::vector<std::string>& texts) const {
  return state_->encode_texts(texts);
}

}  // namespace contra::embed
