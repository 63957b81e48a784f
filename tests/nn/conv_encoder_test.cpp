#include "contra/nn/conv_encoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::nn {
namespace {

using contra::testing::SeededTest;
class ConvEncoderTest : public SeededTest {};

TEST_F(ConvEncoderTest, PaperWindowGives128FramesForEveryNorm) {
  for (const char* norm : {"none", "batch", "layer"}) {
    ConvEncoder enc(ConvEncoderOptions().channels(16).norm(norm));
    auto z = enc->forward(torch::randn({2, 1, 20480}));
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{2, 128, 16})) << norm;
    EXPECT_TRUE(torch::isfinite(z).all().item<bool>()) << norm;
    EXPECT_GE(z.min().item<double>(), 0.0) << norm;  // ReLU output
  }
}

TEST_F(ConvEncoderTest, FrameArithmetic) {
  ConvEncoder enc(ConvEncoderOptions().channels(8));
  EXPECT_EQ(enc->downsampling(), 160);
  EXPECT_EQ(enc->receptive_field(), 465);
  EXPECT_EQ(enc->padding_offset(), 153);
  EXPECT_EQ(enc->frames_for(20480), 128);
  EXPECT_EQ(enc->frames_for(16000), 100);
  EXPECT_EQ(enc->frames_for(0), 0);
  for (int64_t s : {300, 465, 1000, 4000, 4001, 4159}) {
    EXPECT_EQ(enc->forward(torch::randn({1, 1, s})).size(1), enc->frames_for(s)) << s;
  }
}

TEST_F(ConvEncoderTest, ReceptiveFieldMatchesGradientSupport) {
  // d z_t / d x is non-zero exactly on [t·160 − 153, t·160 + 311] (clipped to the input).
  ConvEncoder enc(ConvEncoderOptions().channels(8).norm("none"));
  auto x = torch::randn({1, 1, 4000}, torch::requires_grad());
  auto z = enc->forward(x);
  const int64_t t = 10;
  z.select(1, t).sum().backward();
  auto support = (x.grad().abs().flatten() > 0).nonzero().flatten();
  ASSERT_GT(support.numel(), 0);
  EXPECT_GE(support.min().item<int64_t>(), t * 160 - 153);
  EXPECT_LE(support.max().item<int64_t>(), t * 160 + 311);
}

TEST_F(ConvEncoderTest, LayerNormNormalisesEachFrameOverChannels) {
  ConvEncoder enc(
      ConvEncoderOptions().channels(32).norm("layer").kernels({10}).strides({5}).paddings({3}));
  // One layer, identity affine: before the ReLU each frame has mean 0 / variance 1 over channels,
  // so after it roughly half of each frame's channels are zero.
  auto z = enc->forward(torch::randn({2, 1, 800}));
  auto zero_share = (z == 0).to(torch::kFloat).mean(2);  // (B, T)
  EXPECT_GT(zero_share.min().item<double>(), 0.05);
  EXPECT_LT(zero_share.max().item<double>(), 0.95);
}

TEST_F(ConvEncoderTest, Bfloat16ComputeKeepsFloat32ParametersAndOutput) {
  for (const char* norm : {"none", "batch", "layer"}) {
    ConvEncoder enc(ConvEncoderOptions().channels(16).norm(norm));
    ConvEncoder enc16(ConvEncoderOptions().channels(16).norm(norm).precision("bfloat16"));
    {
      torch::NoGradGuard no_grad;
      for (auto& item : enc16->named_parameters())
        item.value().copy_(enc->named_parameters()[item.key()]);
    }
    auto x = torch::randn({2, 1, 4000});
    auto z = enc->forward(x), z16 = enc16->forward(x);
    ASSERT_EQ(z16.scalar_type(), torch::kFloat) << norm;
    EXPECT_LT((z16 - z).abs().max().item<double>(), 0.05 * z.abs().max().item<double>()) << norm;
    z16.sum().backward();
    for (auto& p : enc16->parameters()) {
      ASSERT_TRUE(p.grad().defined()) << norm;
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat) << norm;
    }
  }
  EXPECT_THROW(ConvEncoder(ConvEncoderOptions().precision("float16")), ConfigError);
}

TEST_F(ConvEncoderTest, InvalidOptionsThrowConfigError) {
  EXPECT_THROW(ConvEncoder(ConvEncoderOptions().norm("group")), ConfigError);
  EXPECT_THROW(ConvEncoder(ConvEncoderOptions().strides({5, 4})), ConfigError);
  EXPECT_THROW(ConvEncoder(ConvEncoderOptions().channels(0)), ConfigError);
  try {
    ConvEncoder(ConvEncoderOptions().norm("group"));
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'group'"), std::string::npos) << e.what();
  }
}

TEST_F(ConvEncoderTest, TooShortInputIsAnError) {
  ConvEncoder enc(ConvEncoderOptions().channels(4));
  EXPECT_THROW(enc->forward(torch::randn({1, 1, 100})), c10::Error);
  EXPECT_THROW(enc->forward(torch::randn({1, 2, 1000})), c10::Error);
}

}  // namespace
}  // namespace contra::nn
