#include "contra/loss/barlow_twins.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class BarlowTwinsTest : public SeededTest {};

// Zbontar et al. eq. 1 with explicit batch statistics and a triple loop for C.
double naive_barlow(const torch::Tensor& z1, const torch::Tensor& z2, double lambd, double eps) {
  const int64_t n = z1.size(0), d = z1.size(1);
  auto standardize = [&](const torch::Tensor& z) {
    torch::Tensor out = torch::empty_like(z);
    for (int64_t j = 0; j < d; ++j) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < n; ++i) mean += z[i][j].item<double>() / n;
      for (int64_t i = 0; i < n; ++i) var += std::pow(z[i][j].item<double>() - mean, 2) / n;
      for (int64_t i = 0; i < n; ++i)
        out[i][j] = (z[i][j].item<double>() - mean) / std::sqrt(var + eps);
    }
    return out;
  };
  torch::Tensor a = standardize(z1), b = standardize(z2);
  double loss = 0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      double c = 0;
      for (int64_t k = 0; k < n; ++k) c += a[k][i].item<double>() * b[k][j].item<double>();
      c /= n;
      loss += i == j ? (1 - c) * (1 - c) : lambd * c * c;
    }
  }
  return loss;
}

// (a) scripts/loss_reference.py → tests/data/loss/barlow_twins.json (the official code's
// BatchNorm1d)
TEST_F(BarlowTwinsTest, MatchesPythonReference) {
  for (const auto& c : load_reference("barlow_twins")) {
    auto options = c.options<BarlowTwinsOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::barlow_twins(in.at("z1"), in.at("z2"), options);
    });
  }
}

// (b)
TEST_F(BarlowTwinsTest, MatchesNaiveLoop) {
  torch::Tensor z1 = randn_double({6, 4}), z2 = randn_double({6, 4});
  for (double lambd : {0.0, 0.0051, 1.0}) {
    EXPECT_NEAR(functional::barlow_twins(z1, z2, BarlowTwinsOptions().lambd(lambd)).item<double>(),
                naive_barlow(z1, z2, lambd, 1e-5), 1e-11);
  }
}

// (c) Two samples ±1 in both features of both views: C = 1/(1+ε) everywhere.
TEST_F(BarlowTwinsTest, AnalyticCases) {
  torch::Tensor z = torch::tensor({{1.0, 1.0}, {-1.0, -1.0}}, torch::kDouble);
  const double eps = 1e-5, lambd = 0.3, c = 1 / (1 + eps);
  EXPECT_NEAR(
      functional::barlow_twins(z, z, BarlowTwinsOptions().lambd(lambd).eps(eps)).item<double>(),
      2 * (1 - c) * (1 - c) + lambd * 2 * c * c, 1e-14);
  // Identical rows: the standardised embeddings vanish and C = 0 → ℓ = D.
  torch::Tensor flat = torch::ones({4, 5}, torch::kDouble);
  EXPECT_DOUBLE_EQ(functional::barlow_twins(flat, flat).item<double>(), 5.0);
}

// (d)
TEST_F(BarlowTwinsTest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::barlow_twins(in[0], in[1], BarlowTwinsOptions().lambd(0.2));
      },
      {randn_double({5, 3}), randn_double({5, 3})});
}

// (e)
TEST_F(BarlowTwinsTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor z = torch::randn({4, 3});
  expect_throws_with<ConfigError>(
      [&] { functional::barlow_twins(z, z, BarlowTwinsOptions().lambd(-0.1)); }, "got -0.1");
  expect_throws_with<ConfigError>(
      [&] { functional::barlow_twins(z, z, BarlowTwinsOptions().eps(0)); }, "got 0");
  expect_throws_with<ConfigError>([&] { BarlowTwins(BarlowTwinsOptions().lambd(-1)); }, "got -1");
  expect_throws_with<c10::Error>(
      [&] {
        functional::barlow_twins(z, torch::randn({4, 2}));
      },
      "[4, 2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::barlow_twins(torch::randn({1, 3}), torch::randn({1, 3}));
      },
      "N = 1");
  expect_throws_with<c10::Error>(
      [&] {
        functional::barlow_twins(torch::randn({0, 3}), torch::randn({0, 3}));
      },
      "empty batch");
}

TEST_F(BarlowTwinsTest, FiniteForExtremeInputs) {
  auto fn = [](const std::vector<torch::Tensor>& in) {
    return functional::barlow_twins(in[0], in[1]);
  };
  expect_finite(fn, {torch::ones({4, 3}), torch::ones({4, 3})}, "identical embeddings");
  expect_finite(fn, {torch::zeros({4, 3}), torch::zeros({4, 3})}, "zero vectors");
  expect_finite(fn, {torch::randn({4, 3}) * 1e5, torch::randn({4, 3}) * 1e-5}, "scales");
}

TEST_F(BarlowTwinsTest, ModuleMatchesFunctional) {
  torch::Tensor z1 = torch::randn({4, 3}), z2 = torch::randn({4, 3});
  BarlowTwins module;
  EXPECT_TRUE(torch::equal(module(z1, z2), functional::barlow_twins(z1, z2)));
}

}  // namespace
}  // namespace contra::loss
