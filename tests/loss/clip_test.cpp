#include "contra/loss/clip.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class ClipTest : public SeededTest {};

// Radford et al. Fig. 3, both cross-entropies as explicit loops.
double naive_clip(const torch::Tensor& img, const torch::Tensor& txt, double scale) {
  const int64_t n = img.size(0);
  auto logit = [&](int64_t i, int64_t j) {
    return scale * (img[i].dot(txt[j]) / (img[i].norm() * txt[j].norm())).item<double>();
  };
  double i2t = 0, t2i = 0;
  for (int64_t i = 0; i < n; ++i) {
    double row = 0, col = 0;
    for (int64_t j = 0; j < n; ++j) {
      row += std::exp(logit(i, j));
      col += std::exp(logit(j, i));
    }
    i2t += -std::log(std::exp(logit(i, i)) / row);
    t2i += -std::log(std::exp(logit(i, i)) / col);
  }
  return (i2t + t2i) / (2.0 * n);
}

// (a) scripts/loss_reference.py → tests/data/loss/clip.json (OpenCLIP's ClipLoss)
TEST_F(ClipTest, MatchesPythonReference) {
  for (const auto& c : load_reference("clip")) {
    auto options = c.options<ClipOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::clip(in.at("image"), in.at("text"), in.at("log_scale"), options);
    });
  }
}

// (b)
TEST_F(ClipTest, MatchesNaiveLoop) {
  torch::Tensor img = randn_double({5, 3}), txt = randn_double({5, 3});
  for (double scale : {1.0, 14.0, 100.0}) {
    EXPECT_NEAR(
        functional::clip(img, txt, torch::full({}, std::log(scale), torch::kDouble)).item<double>(),
        naive_clip(img, txt, scale), 1e-10);
  }
  // Above max_scale the scale is clamped.
  EXPECT_NEAR(functional::clip(img, txt, torch::full({}, 10.0, torch::kDouble)).item<double>(),
              naive_clip(img, txt, 100.0), 1e-10);
}

// (c) all embeddings equal: log N; perfectly matched orthogonal pairs at large scale: → 0.
TEST_F(ClipTest, AnalyticCases) {
  torch::Tensor same = torch::ones({6, 4}, torch::kDouble);
  EXPECT_NEAR(functional::clip(same, same, torch::zeros({}, torch::kDouble)).item<double>(),
              std::log(6.0), 1e-12);
  torch::Tensor eye = torch::eye(4, torch::kDouble);
  // Logits s on the diagonal, 0 elsewhere: ℓ = log(1 + 3 e^{−s}) in both directions.
  const double s = 20.0;
  EXPECT_NEAR(
      functional::clip(eye, eye, torch::full({}, std::log(s), torch::kDouble)).item<double>(),
      std::log(1 + 3 * std::exp(-s)), 1e-12);
}

// (d) with respect to both embeddings and the log scale.
TEST_F(ClipTest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) { return functional::clip(in[0], in[1], in[2]); },
      {randn_double({4, 3}), randn_double({4, 3}), torch::full({}, 1.5, torch::kDouble)});
}

// (e)
TEST_F(ClipTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor x = torch::randn({3, 4});
  torch::Tensor s = torch::zeros({});
  expect_throws_with<ConfigError>([&] { functional::clip(x, x, s, ClipOptions().max_scale(0.5)); },
                                  "got 0.5");
  expect_throws_with<ConfigError>([&] { Clip(ClipOptions().init_temperature(0)); }, "got 0");
  expect_throws_with<c10::Error>([&] { functional::clip(x, torch::randn({2, 4}), s); }, "[2, 4]");
  expect_throws_with<c10::Error>([&] { functional::clip(x, x, torch::zeros({2})); }, "[2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::clip(torch::randn({0, 4}), torch::randn({0, 4}), s);
      },
      "empty batch");
}

TEST_F(ClipTest, FiniteForExtremeInputs) {
  auto fn = [](const std::vector<torch::Tensor>& in) {
    return functional::clip(in[0], in[1], in[2]);
  };
  expect_finite(fn, {torch::zeros({3, 4}), torch::zeros({3, 4}), torch::zeros({})}, "zero vectors");
  expect_finite(fn, {torch::randn({3, 4}), torch::randn({3, 4}), torch::full({}, 50.0)},
                "huge log scale (clamped)");
  expect_finite(fn, {torch::ones({3, 4}), torch::ones({3, 4}), torch::full({}, 4.6)}, "identical");
}

// The module owns log_scale = log(1/0.07), learns it, and clamps it in place to [0, log 100].
TEST_F(ClipTest, ModuleLearnsAndClampsScale) {
  Clip clip;
  ASSERT_EQ(clip->parameters().size(), 1u);
  EXPECT_NEAR(clip->log_scale.item<double>(), std::log(1 / 0.07), 1e-6);
  torch::Tensor img = torch::randn({4, 3}), txt = torch::randn({4, 3});
  torch::Tensor loss = clip(img, txt);
  EXPECT_TRUE(torch::allclose(loss, functional::clip(img, txt, clip->log_scale)));
  loss.backward();
  EXPECT_TRUE(clip->log_scale.grad().defined());
  {
    torch::NoGradGuard no_grad;
    clip->log_scale.fill_(9.0);
  }
  clip(img, txt);
  EXPECT_NEAR(clip->log_scale.item<double>(), std::log(100.0), 1e-6);
  Clip fixed(ClipOptions().learnable(false));
  EXPECT_TRUE(fixed->parameters().empty());
  EXPECT_EQ(fixed->buffers().size(), 1u);
}

}  // namespace
}  // namespace contra::loss
