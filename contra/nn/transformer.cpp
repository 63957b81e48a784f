#include "contra/nn/transformer.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::nn {

torch::Tensor additive_causal_mask(int64_t length, const torch::TensorOptions& options) {
  auto o = options.dtype(torch::kFloat32);
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), o).triu(1);
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width_, int64_t heads_,
                                                       int64_t mlp_ratio_)
    : width(width_), heads(heads_), mlp_ratio(mlp_ratio_) {
  check<ConfigError>(width > 0 && heads > 0 && width % heads == 0,
                     "transformer: heads ({}) must divide width ({})", heads, width);
  check<ConfigError>(mlp_ratio > 0, "transformer: mlp_ratio must be > 0 (got {})", mlp_ratio);
  reset();
}

void ResidualAttentionBlockImpl::reset() {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  out = register_module("out", torch::nn::Linear(width, width));
  fc = register_module("fc", torch::nn::Linear(width, mlp_ratio * width));
  proj = register_module("proj", torch::nn::Linear(mlp_ratio * width, width));
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x,
                                                  const torch::Tensor& mask) {
  const int64_t n = x.size(0), l = x.size(1), dh = width / heads;
  auto qkv_out = qkv->forward(ln_1->forward(x)).view({n, l, 3, heads, dh}).permute({2, 0, 3, 1, 4});
  auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];  // (N, H, L, dh)
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(dh));
  if (mask.defined()) scores = scores + mask.to(scores.dtype());
  auto attn = torch::matmul(scores.softmax(-1), v).transpose(1, 2).reshape({n, l, width});
  auto h = x + out->forward(attn);
  return h + proj->forward(torch::gelu(fc->forward(ln_2->forward(h))));
}

TransformerStackImpl::TransformerStackImpl(int64_t width_, int64_t layers_, int64_t heads_,
                                           int64_t mlp_ratio_)
    : width(width_), layers(layers_), heads(heads_), mlp_ratio(mlp_ratio_) {
  check<ConfigError>(layers >= 1, "transformer: layers must be >= 1 (got {})", layers);
  reset();
}

void TransformerStackImpl::reset() {
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i)
    blocks->push_back(ResidualAttentionBlock(width, heads, mlp_ratio));
  // CLIP's initialisation: attention and MLP weights N(0, σ) with σ scaled by depth.
  const double proj_std = std::pow(width, -0.5) * std::pow(2.0 * layers, -0.5);
  const double attn_std = std::pow(width, -0.5);
  const double fc_std = std::pow(2.0 * width, -0.5);
  torch::NoGradGuard guard;
  for (const auto& m : *blocks) {
    auto* b = m->as<ResidualAttentionBlockImpl>();
    b->qkv->weight.normal_(0, attn_std);
    b->out->weight.normal_(0, proj_std);
    b->fc->weight.normal_(0, fc_std);
    b->proj->weight.normal_(0, proj_std);
    for (auto* lin : {&b->qkv, &b->out, &b->fc, &b->proj}) (*lin)->bias.zero_();
  }
}

torch::Tensor TransformerStackImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  torch::Tensor h = x;
  for (const auto& m : *blocks) h = m->as<ResidualAttentionBlockImpl>()->forward(h, mask);
  return h;
}

TextEncoderImpl::TextEncoderImpl(TextEncoderOptions options_, int64_t eot_id_)
    : options(std::move(options_)), eot_id(eot_id_) {
  check<ConfigError>(options.vocab_size() > eot_id && options.context_length() >= 3,
                     "text: vocab_size must be > {} and context_length >= 3 (got {} and {})",
                     eot_id, options.vocab_size(), options.context_length());
  check<ConfigError>(options.embed_dim() > 0, "embed_dim: must be > 0 (got {})",
                     options.embed_dim());
  reset();
}

void TextEncoderImpl::reset() {
  const int64_t w = options.width();
  token_embedding =
      register_module("token_embedding", torch::nn::Embedding(options.vocab_size(), w));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({options.context_length(), w}));
  transformer =
      register_module("transformer", TransformerStack(w, options.layers(), options.heads()));
  ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  text_projection = register_parameter("text_projection", torch::empty({w, options.embed_dim()}));
  torch::NoGradGuard guard;
  token_embedding->weight.normal_(0, 0.02);
  positional_embedding.normal_(0, 0.01);
  text_projection.normal_(0, std::pow(w, -0.5));
}

torch::Tensor TextEncoderImpl::sequence(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "text encoder: tokens must be (N, L), got ", tokens.sizes());
  const int64_t l = tokens.size(1);
  TORCH_CHECK(l <= options.context_length(), "text encoder: ", l, " tokens exceed context_length ",
              options.context_length());
  auto x = token_embedding->forward(tokens) + positional_embedding.slice(0, 0, l);
  x = transformer->forward(x, additive_causal_mask(l, x.options()));
  return ln_final->forward(x);
}

torch::Tensor TextEncoderImpl::forward(const torch::Tensor& tokens) {
  auto x = sequence(tokens);
  const int64_t l = tokens.size(1);
  // First EOT per row; rows without one pool at the last position.
  auto is_eot = tokens.eq(eot_id);
  auto positions = torch::arange(l, tokens.options()).expand_as(tokens);
  auto candidates = torch::where(is_eot, positions, torch::full_like(positions, l));
  auto eot = std::get<0>(candidates.min(1)).clamp_max(l - 1);
  auto pooled = x.index({torch::arange(tokens.size(0), tokens.options()), eot});
  return torch::matmul(pooled, text_projection);
}

VisionTransformerImpl::VisionTransformerImpl(VisionTransformerOptions options_)
    : options(std::move(options_)) {
  check<ConfigError>(options.patch_size() > 0 && options.image_size() > 0 &&
                         options.image_size() % options.patch_size() == 0,
                     "vit: patch_size ({}) must divide image_size ({})", options.patch_size(),
                     options.image_size());
  check<ConfigError>(options.in_channels() >= 1 && options.embed_dim() > 0,
                     "vit: in_channels and embed_dim must be >= 1");
  reset();
}

void VisionTransformerImpl::reset() {
  const int64_t w = options.width(), p = options.patch_size();
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(
                   torch::nn::Conv2dOptions(options.in_channels(), w, p).stride(p).bias(false)));
  const double scale = std::pow(w, -0.5);
  class_embedding = register_parameter("class_embedding", torch::randn({w}) * scale);
  positional_embedding =
      register_parameter("positional_embedding", torch::randn({grid() * grid() + 1, w}) * scale);
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  transformer =
      register_module("transformer", TransformerStack(w, options.layers(), options.heads()));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  proj = register_parameter("proj", torch::randn({w, options.embed_dim()}) * scale);
}

torch::Tensor VisionTransformerImpl::patches(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options.in_channels() &&
                  images.size(2) == options.image_size() && images.size(3) == options.image_size(),
              "vit: images must be (N, ", options.in_channels(), ", ", options.image_size(), ", ",
              options.image_size(), "), got ", images.sizes());
  return conv1->forward(images).flatten(2).transpose(1, 2);  // (N, g², width)
}

torch::Tensor VisionTransformerImpl::pooled(const torch::Tensor& images) {
  auto x = patches(images);
  auto cls = class_embedding.view({1, 1, -1}).expand({x.size(0), 1, x.size(2)});
  x = torch::cat({cls, x}, 1) + positional_embedding;
  x = transformer->forward(ln_pre->forward(x));
  return ln_post->forward(x.select(1, 0));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  return torch::matmul(pooled(images), proj);
}

}  // namespace contra::nn
