#include "contra/transforms/mfcc.h"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/nn/conv_encoder.h"
#include "tests/support/support.h"

namespace contra::transforms {
namespace {

using contra::testing::SeededTest;
class MfccTest : public SeededTest {};

TEST_F(MfccTest, MatchesIndependentNumpyReference) {
  // Values from scripts/mfcc_reference.py (explicit DFT/filterbank/DCT loops in numpy).
  std::ifstream in(contra::testing::source_dir() + "/tests/data/transforms/mfcc_reference.json");
  ASSERT_TRUE(in) << "missing tests/data/transforms/mfcc_reference.json";
  auto ref = nlohmann::json::parse(in);
  const int64_t S = ref["samples"];
  std::vector<float> x(S);
  for (int64_t n = 0; n < S; ++n) {
    const double t = static_cast<double>(n);
    x[n] = static_cast<float>(0.5 * std::sin(2 * M_PI * 440 * t / 16000) +
                              0.3 * std::sin(2 * M_PI * 1234.5 * t / 16000 + 0.3) +
                              0.1 * std::sin(1e-4 * t * t));
  }
  auto feats = mfcc(torch::tensor(x));
  ASSERT_EQ(feats.sizes(), (std::vector<int64_t>{ref["frames"].get<int64_t>(), 39}));
  double worst = 0;
  for (int64_t t = 0; t < feats.size(0); ++t) {
    for (int64_t f = 0; f < 39; ++f) {
      const double expected = ref["features"][t][f];
      const double got = feats[t][f].item<double>();
      worst = std::max(worst, std::abs(got - expected) / (1e-2 + std::abs(expected)));
      EXPECT_NEAR(got, expected, 1e-4 + 1e-5 * std::abs(expected))
          << "frame " << t << " feat " << f;
    }
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST_F(MfccTest, ShapesAndAlignmentWithTheEncoder) {
  auto audio = torch::randn({3, 1, 20480});
  auto feats = mfcc(audio);
  nn::ConvEncoder enc(nn::ConvEncoderOptions().channels(4));
  EXPECT_EQ(feats.sizes(), (std::vector<int64_t>{3, enc->frames_for(20480), 39}));
  EXPECT_EQ(mfcc(torch::randn({16000})).sizes(), (std::vector<int64_t>{100, 39}));
  EXPECT_EQ(mfcc(torch::randn({2, 16000}), MfccOptions().deltas(false)).sizes(),
            (std::vector<int64_t>{2, 100, 13}));
  // Batch rows are independent: row 1 alone gives the same features.
  EXPECT_TRUE(torch::allclose(mfcc(audio[1]), feats[1], 1e-4, 1e-4));
  // Frame t is centred on sample t·160 + 80: an impulse there makes frame t the loudest (c0).
  auto impulse = torch::zeros({1600});
  impulse[5 * 160 + 80] = 1.0;
  auto c0 = mfcc(impulse, MfccOptions().deltas(false).pre_emphasis(0)).select(1, 0);
  EXPECT_EQ(c0.argmax().item<int64_t>(), 5);
  EXPECT_NEAR(c0[4].item<double>(), c0[6].item<double>(), 1e-3);  // symmetric neighbours
}

TEST_F(MfccTest, FilterbankIsTriangularAndCoversTheBand) {
  auto fb = mel_filterbank(MfccOptions());
  EXPECT_EQ(fb.sizes(), (std::vector<int64_t>{257, 40}));
  EXPECT_GE(fb.min().item<double>(), 0.0);
  EXPECT_LE(fb.max().item<double>(), 1.0 + 1e-6);
  // Every filter has some weight, and every bin except DC and Nyquist is covered.
  EXPECT_GT(fb.sum(0).min().item<double>(), 0.0);
  EXPECT_GT(fb.narrow(0, 1, 255).sum(1).min().item<double>(), 0.0);
}

TEST_F(MfccTest, InvalidOptionsThrow) {
  auto x = torch::randn({1600});
  EXPECT_THROW(mfcc(x, MfccOptions().n_fft(256)), ConfigError);
  EXPECT_THROW(mfcc(x, MfccOptions().n_mfcc(50)), ConfigError);
  EXPECT_THROW(mfcc(x, MfccOptions().f_max(9000)), ConfigError);
  EXPECT_THROW(mfcc(torch::randn({100})), c10::Error);
  EXPECT_THROW(mfcc(torch::randn({2, 3, 1600})), c10::Error);
}

}  // namespace
}  // namespace contra::transforms
