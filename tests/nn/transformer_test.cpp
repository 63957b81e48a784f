// CLIP's Transformers: causal masking, EOT pooling, ViT patching and shapes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/nn/transformer.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class TransformerTest : public SeededTest {};

TEST_F(TransformerTest, CausalMaskIsZeroOnAndBelowTheDiagonal) {
  auto m = additive_causal_mask(4);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(std::isinf(m[i][j].item<float>()), j > i) << i << "," << j;
}

TEST_F(TransformerTest, ChangingALaterTokenLeavesEarlierOutputsUnchanged) {
  TextEncoder enc(
      TextEncoderOptions().vocab_size(30).context_length(8).width(16).layers(2).heads(2).embed_dim(
          8));
  auto a = torch::tensor({{2, 5, 6, 7, 8, 9, 3, 0}}, torch::kLong);
  auto b = a.clone();
  b[0][4] = 11;  // change position 4
  auto sa = enc->sequence(a), sb = enc->sequence(b);
  EXPECT_TRUE(torch::allclose(sa.narrow(1, 0, 4), sb.narrow(1, 0, 4), 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(sa.narrow(1, 4, 4), sb.narrow(1, 4, 4), 1e-4, 1e-4));
}

TEST_F(TransformerTest, TextEncoderPoolsAtTheFirstEndToken) {
  TextEncoder enc(
      TextEncoderOptions().vocab_size(30).context_length(8).width(16).layers(1).heads(2).embed_dim(
          8));
  auto tokens = torch::tensor({{2, 5, 6, 3, 0, 0, 0, 0}, {2, 7, 8, 9, 10, 3, 0, 0}}, torch::kLong);
  auto out = enc->forward(tokens);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 8}));
  auto seq = enc->sequence(tokens);
  EXPECT_TRUE(torch::allclose(out[0], torch::matmul(seq[0][3], enc->text_projection), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(out[1], torch::matmul(seq[1][5], enc->text_projection), 1e-5, 1e-5));
  // Padding after the end token does not change the pooled feature.
  auto changed = tokens.clone();
  changed[0][6] = 12;
  EXPECT_TRUE(torch::allclose(enc->forward(changed)[0], out[0], 1e-6, 1e-6));
  // Fewer tokens than the context are accepted; more are not.
  EXPECT_EQ(enc->forward(tokens.narrow(1, 0, 6)).size(0), 2);
  EXPECT_THROW(enc->forward(torch::zeros({1, 9}, torch::kLong)), c10::Error);
}

TEST_F(TransformerTest, VitPatchesClassTokenAndProjection) {
  VisionTransformer vit(VisionTransformerOptions()
                            .image_size(28)
                            .patch_size(7)
                            .in_channels(1)
                            .width(16)
                            .layers(2)
                            .heads(4)
                            .embed_dim(10));
  auto x = torch::randn({3, 1, 28, 28});
  EXPECT_EQ(vit->grid(), 4);
  EXPECT_EQ(vit->patches(x).sizes(), (std::vector<int64_t>{3, 16, 16}));
  EXPECT_EQ(vit->positional_embedding.sizes(), (std::vector<int64_t>{17, 16}));
  EXPECT_EQ(vit->pooled(x).sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(vit->forward(x).sizes(), (std::vector<int64_t>{3, 10}));
  // Patch i covers rows/cols [7r, 7r+7) x [7c, 7c+7): changing one pixel changes one patch.
  auto y = x.clone();
  y[0][0][9][20] += 1.0;  // row block 1, col block 2 → patch 1·4 + 2 = 6
  auto diff = (vit->patches(y) - vit->patches(x))[0].abs().sum(1);
  for (int64_t p = 0; p < 16; ++p) EXPECT_EQ(diff[p].item<float>() > 0, p == 6) << p;
  // Batch items are independent (no BatchNorm).
  EXPECT_TRUE(torch::allclose(vit->forward(x)[1], vit->forward(x.narrow(0, 1, 1))[0], 1e-5, 1e-5));
}

TEST_F(TransformerTest, RejectsInconsistentSizes) {
  EXPECT_THROW(VisionTransformer(VisionTransformerOptions().image_size(28).patch_size(5)),
               ConfigError);
  EXPECT_THROW(ResidualAttentionBlock(10, 3), ConfigError);
  EXPECT_THROW(TextEncoder(TextEncoderOptions().vocab_size(2)), ConfigError);
  VisionTransformer vit(VisionTransformerOptions().width(8).heads(2).layers(1));
  EXPECT_THROW(vit->forward(torch::zeros({1, 3, 28, 28})), c10::Error);
}

}  // namespace
}  // namespace contra::nn
