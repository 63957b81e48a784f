#pragma once
/// CLIP's Transformers (Radford et al. 2021, arXiv:2103.00020, §2.4; the released model.py): a
/// stack of pre-norm residual blocks shared by the text encoder and the Vision Transformer.
///
///   block:  x ← x + Attn(LN(x), mask);  x ← x + MLP(LN(x)),   MLP = Linear(4w) → GELU → Linear(w)
///
/// Layout is batch-first, (N, L, width). Attention is written out (q·kᵀ/√d_h, additive mask,
/// softmax, ·v) with the stable tensor API, so it is the same on LibTorch 1.13 and 2.x.
#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace contra::nn {

/// Additive causal mask (L, L): 0 on and below the diagonal, −inf above (position i sees j ≤ i).
torch::Tensor additive_causal_mask(int64_t length, const torch::TensorOptions& options = {});

class ResidualAttentionBlockImpl : public torch::nn::Cloneable<ResidualAttentionBlockImpl> {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, int64_t mlp_ratio = 4);
  void reset() override;
  /// x (N, L, width); mask (L, L) additive or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {});

  int64_t width, heads, mlp_ratio;
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr}, fc{nullptr}, proj{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

class TransformerStackImpl : public torch::nn::Cloneable<TransformerStackImpl> {
 public:
  TransformerStackImpl(int64_t width, int64_t layers, int64_t heads, int64_t mlp_ratio = 4);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {});

  int64_t width, layers, heads, mlp_ratio;
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(TransformerStack);

/// `method.text` of CLIP: the text Transformer and its tokeniser's context.
struct TextEncoderOptions {
  TORCH_ARG(int64_t, vocab_size) = 256;
  TORCH_ARG(int64_t, context_length) = 24;
  TORCH_ARG(int64_t, width) = 128;
  TORCH_ARG(int64_t, layers) = 3;
  TORCH_ARG(int64_t, heads) = 4;
  TORCH_ARG(int64_t, embed_dim) = 64;
};

/// CLIP's text encoder: token + learned position embeddings, a causally masked Transformer, the
/// final LayerNorm, the feature at the EOT token (the first position holding `eot_id`, or the last
/// position when a row has none), and a linear projection (no bias) to the joint space.
///
/// Input (N, L) int64 ids, L ≤ context_length; output (N, embed_dim), not normalised. Because of
/// the causal mask, the feature at position i depends on tokens 0..i only.
class TextEncoderImpl : public torch::nn::Cloneable<TextEncoderImpl> {
 public:
  explicit TextEncoderImpl(TextEncoderOptions options = {}, int64_t eot_id = 3);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& tokens);
  /// Per-position features after ln_final, (N, L, width) (for tests and inspection).
  torch::Tensor sequence(const torch::Tensor& tokens);

  TextEncoderOptions options;
  int64_t eot_id;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection;
  TransformerStack transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(TextEncoder);

struct VisionTransformerOptions {
  TORCH_ARG(int64_t, image_size) = 28;
  TORCH_ARG(int64_t, patch_size) = 7;
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, width) = 128;
  TORCH_ARG(int64_t, layers) = 4;
  TORCH_ARG(int64_t, heads) = 4;
  TORCH_ARG(int64_t, embed_dim) = 64;
};

/// CLIP's Vision Transformer: a conv patch embedding (kernel = stride = patch, no bias), a learned
/// class token prepended, learned position embeddings, ln_pre, the Transformer (no mask), ln_post
/// of the class token, and a linear projection (no bias).
///
/// Input (N, C, S, S) with S = image_size divisible by patch_size; `patches` returns
/// (N, (S/p)², width); `forward` → (N, embed_dim); `pooled` → the class token after ln_post
/// (N, width), the representation linear probes read.
class VisionTransformerImpl : public torch::nn::Cloneable<VisionTransformerImpl> {
 public:
  explicit VisionTransformerImpl(VisionTransformerOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& images);
  torch::Tensor pooled(const torch::Tensor& images);
  torch::Tensor patches(const torch::Tensor& images);
  int64_t grid() const { return options.image_size() / options.patch_size(); }

  VisionTransformerOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  TransformerStack transformer{nullptr};
};
TORCH_MODULE(VisionTransformer);

}  // namespace contra::nn
