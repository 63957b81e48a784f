#include "contra/loss/nce.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class NCETest : public SeededTest {};

double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

// Gutmann & Hyvärinen's J_T term by term: ln h(x) + Σ_k ln(1 − h(y_k)), h = σ(s − ln(ν q)).
double naive_nce(const torch::Tensor& sx, const torch::Tensor& qx, const torch::Tensor& sy,
                 const torch::Tensor& qy, double nu) {
  double total = 0;
  for (int64_t i = 0; i < sx.size(0); ++i) {
    total +=
        std::log(sigmoid(sx[i].item<double>() - std::log(nu * std::exp(qx[i].item<double>()))));
    for (int64_t k = 0; k < sy.size(1); ++k) {
      total += std::log(
          1 - sigmoid(sy[i][k].item<double>() - std::log(nu * std::exp(qy[i][k].item<double>()))));
    }
  }
  return -total / static_cast<double>(sx.size(0));
}

// (a) scripts/loss_reference.py → tests/data/loss/nce.json
TEST_F(NCETest, MatchesPythonReference) {
  for (const auto& c : load_reference("nce")) {
    auto options = c.options<NCEOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::nce(in.at("data_scores"), in.at("data_log_noise"), in.at("noise_scores"),
                             in.at("noise_log_noise"), options);
    });
  }
}

// (b)
TEST_F(NCETest, MatchesNaiveLoop) {
  torch::Tensor sx = randn_double({5}), qx = randn_double({5}) - 1;
  torch::Tensor sy = randn_double({5, 4}), qy = randn_double({5, 4}) - 1;
  EXPECT_NEAR(functional::nce(sx, qx, sy, qy).item<double>(), naive_nce(sx, qx, sy, qy, 4), 1e-12);
  EXPECT_NEAR(functional::nce(sx, qx, sy, qy, NCEOptions().noise_ratio(2.5)).item<double>(),
              naive_nce(sx, qx, sy, qy, 2.5), 1e-12);
}

// (c) A model equal to ν·q everywhere makes ∆ = 0: every term is log 2 → (1 + K) log 2.
TEST_F(NCETest, AnalyticCase) {
  const int64_t k = 6;
  torch::Tensor qx = randn_double({4}), qy = randn_double({4, k});
  const double log_nu = std::log(static_cast<double>(k));
  EXPECT_NEAR(functional::nce(qx + log_nu, qx, qy + log_nu, qy).item<double>(),
              (1 + k) * std::log(2.0), 1e-12);
}

// (d)
TEST_F(NCETest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::nce(in[0], in[1], in[2], in[3]);
      },
      {randn_double({3}), randn_double({3}), randn_double({3, 4}), randn_double({3, 4})});
}

// (e)
TEST_F(NCETest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor s = torch::randn({3}), n = torch::randn({3, 2});
  expect_throws_with<ConfigError>(
      [&] { functional::nce(s, s, n, n, NCEOptions().noise_ratio(-2)); }, "got -2");
  expect_throws_with<ConfigError>([&] { NCE(NCEOptions().noise_ratio(-1)); }, "got -1");
  expect_throws_with<c10::Error>([&] { functional::nce(s, torch::randn({4}), n, n); }, "[4]");
  expect_throws_with<c10::Error>([&] { functional::nce(s, s, n, torch::randn({3, 5})); }, "[3, 5]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::nce(torch::randn({0}), torch::randn({0}), torch::randn({0, 2}),
                        torch::randn({0, 2}));
      },
      "empty batch");
}

TEST_F(NCETest, FiniteForExtremeInputs) {
  auto fn = [](const std::vector<torch::Tensor>& in) {
    return functional::nce(in[0], in[1], in[2], in[3]);
  };
  expect_finite(fn,
                {torch::full({3}, 1e4), torch::full({3}, -1e4), torch::full({3, 2}, -1e4),
                 torch::full({3, 2}, 1e4)},
                "saturated logits");
  expect_finite(fn,
                {torch::zeros({3}), torch::zeros({3}), torch::zeros({3, 2}), torch::zeros({3, 2})},
                "zeros");
}

TEST_F(NCETest, ModuleMatchesFunctional) {
  torch::Tensor s = torch::randn({3}), n = torch::randn({3, 2});
  NCE module;
  EXPECT_TRUE(torch::equal(module(s, s, n, n), functional::nce(s, s, n, n)));
}

}  // namespace
}  // namespace contra::loss
