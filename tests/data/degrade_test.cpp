#include "contra/data/degrade.h"

#include <cmath>

#include <gtest/gtest.h>

#include "contra/core/config.h"
#include "contra/core/error.h"

namespace contra::data {
namespace {

std::vector<float> tone(int n, double amp = 0.5) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = float(amp * std::sin(2 * M_PI * 220.0 * i / 16000));
  return x;
}
double power(const std::vector<float>& x) {
  double p = 0;
  for (float v : x) p += double(v) * v;
  return p / x.size();
}

TEST(Degrade, NoiseHitsTheRequestedSnr) {
  for (double snr : {5.0, 20.0}) {
    auto clean = tone(64000);
    auto noisy = clean;
    SplitMix64 rng(3);
    add_noise(noisy, snr, rng);
    std::vector<float> noise(clean.size());
    for (size_t i = 0; i < clean.size(); ++i) noise[i] = noisy[i] - clean[i];
    EXPECT_NEAR(10 * std::log10(power(clean) / power(noise)), snr, 0.2);
  }
}

TEST(Degrade, GainPeakAndReverb) {
  auto x = tone(16000, 0.5);
  apply_gain(x, -6.0206);
  EXPECT_NEAR(*std::max_element(x.begin(), x.end()), 0.25, 1e-3);
  auto loud = tone(16000, 3.0);
  limit_peak(loud, 0.99f);
  float peak = 0;
  for (float v : loud) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 0.99f, 1e-6);
  // Reverb: an impulse gets a decaying tail that lasts about RT60.
  std::vector<float> impulse(16000, 0.0f);
  impulse[0] = 1.0f;
  add_reverb(impulse, 0.3, 16000);
  double early = 0, late = 0;
  for (int i = 800; i < 2400; ++i) early += std::fabs(impulse[i]);
  for (int i = 9600; i < 11200; ++i) late += std::fabs(impulse[i]);
  EXPECT_GT(early, 0.0);
  EXPECT_LT(late, early * 0.1);  // 60 dB down by 0.3 s: the tail at 0.6 s is tiny
}

TEST(Degrade, DeterministicForASeed) {
  DegradeConfig config;
  config.noise_probability = 1.0;
  config.reverb_probability = 1.0;
  auto a = tone(8000), b = tone(8000);
  SplitMix64 ra(11), rb(11);
  EXPECT_EQ(degrade(a, config, 16000, ra), degrade(b, config, 16000, rb));
  EXPECT_EQ(a, b);
}

TEST(Degrade, ConfigValidation) {
  auto bad = ConfigTree::from_string("d:\n  snr_db_min: 30\n  snr_db_max: 10\n", "d.yaml");
  EXPECT_THROW(bad.get<DegradeConfig>("d"), ConfigError);
  auto prob = ConfigTree::from_string("d:\n  noise_probability: 1.5\n", "d.yaml");
  try {
    prob.get<DegradeConfig>("d");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("d.noise_probability: must be in [0, 1] (got 1.5)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace contra::data
