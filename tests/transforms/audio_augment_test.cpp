#include "contra/transforms/audio_augment.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::transforms {
namespace {

using contra::testing::SeededTest;
class AudioAugmentTest : public SeededTest {};

torch::Tensor sine(double hz, int64_t samples = 16000, int64_t batch = 2) {
  auto t = torch::arange(samples, torch::kDouble) / 16000.0;
  return torch::sin(2 * M_PI * hz * t).to(torch::kFloat).expand({batch, 1, samples}).clone();
}

/// Frequency (Hz) of the strongest rFFT bin of a 1-second signal.
double peak_hz(const torch::Tensor& x) {
  return torch::fft_rfft(x.flatten()).abs().argmax().item<int64_t>();
}

TEST_F(AudioAugmentTest, OffByDefault) {
  AudioAugment augment;
  EXPECT_FALSE(augment.enabled());
  auto x = torch::randn({3, 1, 1000});
  EXPECT_TRUE(torch::equal(augment(x), x));
}

TEST_F(AudioAugmentTest, ReproducibleForASeed) {
  auto options =
      AudioAugmentOptions().noise_p(0.5).gain_p(0.5).shift_p(0.5).speed_p(0.5).band_reject_p(0.5);
  auto x = torch::randn({8, 1, 4000});
  AudioAugment a(options, 7), b(options, 7), c(options, 8);
  auto ya = a(x), yb = b(x), yc = c(x);
  EXPECT_EQ(ya.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(ya, yb));
  EXPECT_FALSE(torch::equal(ya, yc));
  EXPECT_FALSE(torch::equal(a(x), ya));  // the generator advances
}

TEST_F(AudioAugmentTest, NoiseHitsTheRequestedSnr) {
  AudioAugment augment(AudioAugmentOptions().noise_p(1).snr_min_db(10).snr_max_db(10), 1);
  auto x = sine(440);
  auto noise = augment(x) - x;
  const double snr =
      10 * std::log10(x.pow(2).mean().item<double>() / noise.pow(2).mean().item<double>());
  EXPECT_NEAR(snr, 10.0, 0.2);
}

TEST_F(AudioAugmentTest, GainAndShiftAreExact) {
  auto x = torch::randn({2, 1, 1000});
  AudioAugment gain(AudioAugmentOptions().gain_p(1).gain_min_db(6).gain_max_db(6));
  EXPECT_TRUE(torch::allclose(gain(x), x * std::pow(10.0, 0.3), 1e-5, 1e-6));
  AudioAugment shift(AudioAugmentOptions().shift_p(1).max_shift(50), 3);
  auto y = shift(x);
  // Each row equals the input moved by some s in [−50, 50] with zero fill.
  for (int b = 0; b < 2; ++b) {
    bool found = false;
    for (int s = -50; s <= 50 && !found; ++s) {
      auto expected = torch::zeros({1000});
      if (s >= 0) {
        expected.narrow(0, s, 1000 - s).copy_(x[b][0].narrow(0, 0, 1000 - s));
      } else {
        expected.narrow(0, 0, 1000 + s).copy_(x[b][0].narrow(0, -s, 1000 + s));
      }
      found = torch::equal(y[b][0], expected);
    }
    EXPECT_TRUE(found) << b;
  }
}

TEST_F(AudioAugmentTest, BandRejectRemovesTheBandOnly) {
  AudioAugment augment(AudioAugmentOptions()
                           .band_reject_p(1)
                           .band_min_hz(1000)
                           .band_max_hz(1000)
                           .width_min_hz(200)
                           .width_max_hz(200));
  auto in_band = sine(1000), out_band = sine(3000);
  EXPECT_LT(augment(in_band).pow(2).mean().item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(augment(out_band), out_band, 1e-4, 1e-4));
}

TEST_F(AudioAugmentTest, SpeedPerturbationScalesThePitch) {
  AudioAugment augment(AudioAugmentOptions().speed_p(1).speed_min(1.25).speed_max(1.25));
  auto y = augment(sine(400, 16000, 1));
  // The first 1/1.25 of the window holds the sped-up tone: 400 Hz → 500 Hz.
  auto head = y.flatten().narrow(0, 0, 12800);
  const double hz = torch::fft_rfft(head).abs().argmax().item<int64_t>() * 16000.0 / 12800.0;
  EXPECT_NEAR(hz, 500.0, 2.0);
  EXPECT_EQ(y.flatten().narrow(0, 12801, 3199).abs().max().item<double>(), 0.0);
  EXPECT_NEAR(peak_hz(sine(400, 16000, 1)), 400.0, 0.5);
}

TEST_F(AudioAugmentTest, PastAndFutureOnly) {
  auto x = torch::randn({4, 1, 1000});
  auto options = AudioAugmentOptions().noise_p(1).split_sample(300);
  auto past = AudioAugment(options.region("past_only"), 2)(x);
  auto future = AudioAugment(options.region("future_only"), 2)(x);
  EXPECT_TRUE(torch::equal(past.narrow(2, 300, 700), x.narrow(2, 300, 700)));
  EXPECT_FALSE(torch::equal(past.narrow(2, 0, 300), x.narrow(2, 0, 300)));
  EXPECT_TRUE(torch::equal(future.narrow(2, 0, 300), x.narrow(2, 0, 300)));
  EXPECT_FALSE(torch::equal(future.narrow(2, 300, 700), x.narrow(2, 300, 700)));
}

TEST_F(AudioAugmentTest, ProbabilityIsPerWindow) {
  AudioAugment augment(AudioAugmentOptions().gain_p(0.5).gain_min_db(3).gain_max_db(3), 5);
  auto x = torch::randn({400, 1, 10});
  auto changed = (augment(x) != x).any(2).flatten().to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(changed, 0.5, 0.08);
}

TEST_F(AudioAugmentTest, InvalidOptionsThrow) {
  EXPECT_THROW(AudioAugment(AudioAugmentOptions().noise_p(1.5)), ConfigError);
  EXPECT_THROW(AudioAugment(AudioAugmentOptions().speed_min(1.2).speed_max(1.1)), ConfigError);
  EXPECT_THROW(AudioAugment(AudioAugmentOptions().region("middle")), ConfigError);
  EXPECT_THROW(AudioAugment(AudioAugmentOptions().band_max_hz(9000)), ConfigError);
  AudioAugment augment(AudioAugmentOptions().gain_p(1));
  EXPECT_THROW(augment(torch::randn({2, 1000})), c10::Error);
}

}  // namespace
}  // namespace contra::transforms
