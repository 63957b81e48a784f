#include "contra/method/clip.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/image_encoder.h"

namespace contra::method {

void ClipImageConfig::validate() const {
  check<ConfigError>(type == "vit" || type == "small_cnn" || type == "resnet18",
                     "type: must be vit, small_cnn or resnet18 (got '{}')", type);
  check<ConfigError>(in_channels >= 1 && in_channels <= 4, "in_channels: must be 1..4 (got {})",
                     in_channels);
  check<ConfigError>(image_size >= 1, "image_size: must be >= 1 (got {})", image_size);
  if (type == "vit") {
    check<ConfigError>(patch_size >= 1 && image_size % patch_size == 0,
                       "patch_size: must divide image_size {} (got {})", image_size, patch_size);
    check<ConfigError>(width >= 1 && heads >= 1 && width % heads == 0,
                       "heads: must divide width {} (got {})", width, heads);
    check<ConfigError>(layers >= 1, "layers: must be >= 1 (got {})", layers);
  } else {
    check<ConfigError>(width >= 0, "width: must be >= 0 (got {})", width);
  }
}

void ClipTextConfig::validate() const {
  check<ConfigError>(context_length >= 3 && context_length <= 1024,
                     "context_length: must be in 3..1024 (got {})", context_length);
  check<ConfigError>(width >= 1 && heads >= 1 && width % heads == 0,
                     "heads: must divide width {} (got {})", width, heads);
  check<ConfigError>(layers >= 1, "layers: must be >= 1 (got {})", layers);
  tokenizer.validate();
}

void ClipAudioSideConfig::validate() const {
  encoder.validate();
  if (use_context) context.validate();
}

void ClipConfig::validate() const {
  check<ConfigError>(embed_dim >= 1, "embed_dim: must be >= 1 (got {})", embed_dim);
  loss.validate();
}

void ClipAudioConfig::validate() const {
  check<ConfigError>(embed_dim >= 1, "embed_dim: must be >= 1 (got {})", embed_dim);
  loss.validate();
}

Clip::Clip(ClipConfig config) : embed_dim_(config.embed_dim), image_config_(config.image) {
  config.validate();
  config.image.validate();
  config.text.validate();
  text_config_ = config.text;
  build_image(config.image);
  text = register_module("text", nn::TextEncoder(nn::TextEncoderOptions()
                                                     .vocab_size(config.text.tokenizer.vocab_size)
                                                     .context_length(config.text.context_length)
                                                     .width(config.text.width)
                                                     .layers(config.text.layers)
                                                     .heads(config.text.heads)
                                                     .embed_dim(embed_dim_),
                                                 text::Tokenizer::kEnd));
  tokenizer_model = register_buffer("tokenizer_model", torch::empty({0}, torch::kUInt8));
  loss = register_module("loss", loss::Clip(config.loss));
}

Clip::Clip(ClipAudioConfig config)
    : audio_(true), embed_dim_(config.embed_dim), image_config_(config.image) {
  config.validate();
  config.image.validate();
  config.audio.validate();
  audio_config_ = config.audio;
  build_image(config.image);
  const auto& e = config.audio.encoder;
  audio_encoder = register_module("audio_encoder", nn::ConvEncoder(e.options()));
  int64_t pooled = e.channels;
  if (config.audio.use_context) {
    const auto& c = config.audio.context;
    audio_context = register_module("audio_context", nn::ContextNetwork(c.options(e.channels)));
    pooled = c.hidden;
  }
  audio_projection =
      register_module("audio_projection",
                      torch::nn::Linear(torch::nn::LinearOptions(pooled, embed_dim_).bias(false)));
  loss = register_module("loss", loss::Clip(config.loss));
}

void Clip::build_image(const ClipImageConfig& c) {
  image_mean = register_buffer("image_mean", torch::empty({0}, torch::kFloat64));
  image_std = register_buffer("image_std", torch::empty({0}, torch::kFloat64));
  if (c.type == "vit") {
    vit = register_module("vit", nn::VisionTransformer(nn::VisionTransformerOptions()
                                                           .image_size(c.image_size)
                                                           .patch_size(c.patch_size)
                                                           .in_channels(c.in_channels)
                                                           .width(c.width)
                                                           .layers(c.layers)
                                                           .heads(c.heads)
                                                           .embed_dim(embed_dim_)));
    return;
  }
  nn::ImageEncoderConfig ec;
  ec.type = c.type;
  ec.in_channels = c.in_channels;
  ec.width = c.width;
  cnn = torch::nn::AnyModule(nn::make_image_encoder(ec));
  register_module("cnn", cnn.ptr());
  image_projection = register_module(
      "image_projection",
      torch::nn::Linear(torch::nn::LinearOptions(ec.output_size(), embed_dim_).bias(false)));
}

int64_t Clip::image_feature_size() const {
  if (vit) return image_config_.width;
  nn::ImageEncoderConfig ec;
  ec.type = image_config_.type;
  ec.width = image_config_.width;
  return ec.output_size();
}

torch::Device Clip::device() const { return loss->log_scale.device(); }

torch::Tensor Clip::image_features(const torch::Tensor& images) {
  return vit ? vit->pooled(images) : cnn.forward(images);
}

torch::Tensor Clip::encode_image(const torch::Tensor& images) {
  return vit ? vit->forward(images) : image_projection->forward(cnn.forward(images));
}

torch::Tensor Clip::encode_text(const torch::Tensor& tokens) {
  check<ConfigError>(!audio_, "clip_audio has no text encoder");
  return text->forward(tokens);
}

torch::Tensor Clip::audio_features(const torch::Tensor& audio) {
  check<ConfigError>(audio_, "clip has no audio encoder (use method clip_audio)");
  auto z = audio_encoder->forward(audio).to(torch::kFloat32);  // (N, T, C)
  if (audio_context) z = audio_context->forward(z);
  return z.mean(1);
}

torch::Tensor Clip::encode_audio(const torch::Tensor& audio) {
  return audio_projection->forward(audio_features(audio));
}

StepOutput Clip::step(const Batch& batch) {
  const std::string key = audio_ ? "audio" : "text_tokens";
  auto it = batch.extra.find(key);
  check<DataError>(it != batch.extra.end() && it->second.defined(),
                   "{}: the batch has no '{}' (pairs of images and {})", name(), key,
                   audio_ ? "audio" : "captions");
  check<DataError>(batch.input.defined() && batch.input.size(0) == it->second.size(0),
                   "{}: {} images but {} {}", name(),
                   batch.input.defined() ? batch.input.size(0) : 0, it->second.size(0),
                   audio_ ? "audio clips" : "captions");
  torch::Tensor img = encode_image(batch.input);
  torch::Tensor other = audio_ ? encode_audio(it->second) : encode_text(it->second);
  StepOutput out;
  // In a distributed run the similarity matrix spans every rank's pairs (clip_global).
  out.loss = loss->forward_global(img, other);
  {
    torch::NoGradGuard guard;
    auto sim =
        torch::matmul(torch::nn::functional::normalize(
                          img.detach(), torch::nn::functional::NormalizeFuncOptions().dim(1)),
                      torch::nn::functional::normalize(
                          other.detach(), torch::nn::functional::NormalizeFuncOptions().dim(1))
                          .t());
    const int64_t n = sim.size(0);
    auto target = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(sim.device()));
    out.metrics["i2t_acc"] = sim.argmax(1).eq(target).to(torch::kFloat32).mean().item<double>();
    out.metrics["t2i_acc"] = sim.argmax(0).eq(target).to(torch::kFloat32).mean().item<double>();
    auto diag = sim.diagonal();
    out.metrics["pos_sim"] = diag.mean().item<double>();
    out.metrics["neg_sim"] =
        n > 1 ? ((sim.sum() - diag.sum()) / static_cast<double>(n * (n - 1))).item<double>() : 0.0;
    out.metrics["logit_scale"] = logit_scale();
  }
  return out;
}

void Clip::set_image_stats(const std::vector<double>& mean, const std::vector<double>& std) {
  check<ConfigError>(
      mean.size() == std.size() && static_cast<int64_t>(mean.size()) == image_config_.in_channels,
      "{}: normalisation needs {} means and stds (got {} and {})", name(),
      image_config_.in_channels, mean.size(), std.size());
  torch::NoGradGuard guard;
  image_mean.set_(torch::tensor(mean, torch::kFloat64).to(image_mean.device()));
  image_std.set_(torch::tensor(std, torch::kFloat64).to(image_std.device()));
}

std::pair<std::vector<double>, std::vector<double>> Clip::image_stats() const {
  auto m = image_mean.to(torch::kCPU).contiguous(), s = image_std.to(torch::kCPU).contiguous();
  return {std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel()),
          std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel())};
}

double Clip::logit_scale() const {
  return std::exp(std::min(loss->log_scale.item<double>(), std::log(loss->options.max_scale())));
}

torch::Tensor Clip::features(const torch::Tensor& input, const std::string& kind) {
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().dim(1);
  if (kind == "image") return image_features(input);
  if (kind == "image_embedding") return F::normalize(encode_image(input), unit);
  if (!audio_ && kind == "text_embedding") return F::normalize(encode_text(input), unit);
  if (audio_ && kind == "audio") return audio_features(input);
  if (audio_ && kind == "audio_embedding") return F::normalize(encode_audio(input), unit);
  throw ConfigError(fmt::format("{}: unknown feature kind '{}' (valid: image, image_embedding, {})",
                                name(), kind,
                                audio_ ? "audio, audio_embedding" : "text_embedding"));
}

void Clip::set_tokenizer(const text::Tokenizer& tokenizer) {
  check<ConfigError>(!audio_, "clip_audio has no tokeniser");
  check<ConfigError>(tokenizer.vocab_size() <= text_config_.tokenizer.vocab_size,
                     "method.text.tokenizer.vocab_size: the tokeniser has {} ids but the text "
                     "encoder embeds only {}",
                     tokenizer.vocab_size(), text_config_.tokenizer.vocab_size);
  std::lock_guard<std::mutex> lock(tokenizer_mutex_);
  torch::NoGradGuard guard;
  tokenizer_model.set_(text::bytes_to_tensor(tokenizer.serialized()).to(tokenizer_model.device()));
  tokenizer_ = std::make_unique<text::Tokenizer>(text::Tokenizer::load(tokenizer.serialized()));
  tokenizer_data_ = tokenizer_model.data_ptr();
}

bool Clip::has_tokenizer() const { return !audio_ && tokenizer_model.numel() > 0; }

const text::Tokenizer& Clip::tokenizer() {
  check<ConfigError>(has_tokenizer(),
                     "clip: no tokeniser (train one with the recipe, or load a checkpoint)");
  std::lock_guard<std::mutex> lock(tokenizer_mutex_);
  if (!tokenizer_ || tokenizer_data_ != tokenizer_model.data_ptr()) {
    tokenizer_ = std::make_unique<text::Tokenizer>(
        text::Tokenizer::load(text::tensor_to_bytes(tokenizer_model)));
    tokenizer_data_ = tokenizer_model.data_ptr();
    check<DataError>(tokenizer_->vocab_size() <= text_config_.tokenizer.vocab_size,
                     "clip: the stored tokeniser has {} ids, the text encoder {}",
                     tokenizer_->vocab_size(), text_config_.tokenizer.vocab_size);
  }
  return *tokenizer_;
}

torch::Tensor Clip::tokenize(const std::vector<std::string>& captions) {
  return tokenizer().encode_batch(captions, text_config_.context_length).to(device());
}

}  // namespace contra::method
