#include "contra/loss/hard_negative.h"

#include <cmath>

#include "contra/loss/debiased.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class HardNegativeTest : public SeededTest {};

// Robinson et al. eq. 3 with explicit importance weights w_k = neg_k^β / mean_j neg_j^β.
double naive_hcl(const torch::Tensor& pos, const torch::Tensor& neg, double t, double tau,
                 double beta) {
  const int64_t k = neg.size(1);
  double total = 0;
  for (int64_t i = 0; i < neg.size(0); ++i) {
    const double p = std::exp(pos[i].item<double>() / t);
    double mean_w = 0;
    for (int64_t j = 0; j < k; ++j)
      mean_w += std::pow(std::exp(neg[i][j].item<double>() / t), beta);
    mean_w /= static_cast<double>(k);
    double weighted = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double e = std::exp(neg[i][j].item<double>() / t);
      weighted += std::pow(e, beta) / mean_w * e;
    }
    const double ng = std::max((weighted - k * tau * p) / (1 - tau), k * std::exp(-1 / t));
    total += -std::log(p / (p + ng));
  }
  return total / static_cast<double>(neg.size(0));
}

torch::Tensor scores(std::vector<int64_t> shape) {
  return torch::rand(shape, torch::kDouble) * 2 - 1;
}

// (a) scripts/loss_reference.py → tests/data/loss/hard_negative.json
TEST_F(HardNegativeTest, MatchesPythonReference) {
  for (const auto& c : load_reference("hard_negative")) {
    auto options = c.options<HardNegativeOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::hard_negative(in.at("positive"), in.at("negative"), options);
    });
  }
}

// (b)
TEST_F(HardNegativeTest, MatchesNaiveLoop) {
  torch::Tensor pos = scores({6}), neg = scores({6, 5});
  for (double beta : {0.0, 0.5, 1.0, 3.0}) {
    for (double tau : {0.0, 0.1}) {
      auto opts = HardNegativeOptions().temperature(0.3).tau_plus(tau).beta(beta);
      EXPECT_NEAR(functional::hard_negative(pos, neg, opts).item<double>(),
                  naive_hcl(pos, neg, 0.3, tau, beta), 1e-10)
          << "beta " << beta << " tau+ " << tau;
    }
  }
}

// (c) β = 0 is the debiased loss; equal negatives make the weights uniform for any β.
TEST_F(HardNegativeTest, AnalyticCases) {
  torch::Tensor pos = scores({5}), neg = scores({5, 7});
  auto deb = DebiasedOptions().temperature(0.5).tau_plus(0.1);
  EXPECT_NEAR(functional::hard_negative(
                  pos, neg, HardNegativeOptions().temperature(0.5).tau_plus(0.1).beta(0))
                  .item<double>(),
              functional::debiased(pos, neg, deb).item<double>(), 1e-12);
  torch::Tensor flat = torch::full({5, 7}, 0.3, torch::kDouble);
  EXPECT_NEAR(functional::hard_negative(
                  pos, flat, HardNegativeOptions().temperature(0.5).tau_plus(0.1).beta(4))
                  .item<double>(),
              functional::debiased(pos, flat, deb).item<double>(), 1e-12);
}

// (d)
TEST_F(HardNegativeTest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::hard_negative(
            in[0], in[1], HardNegativeOptions().temperature(0.5).tau_plus(0.05).beta(1.5));
      },
      {scores({4}), scores({4, 6})});
}

// (e)
TEST_F(HardNegativeTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor pos = torch::rand({3}), neg = torch::rand({3, 4});
  expect_throws_with<ConfigError>(
      [&] { functional::hard_negative(pos, neg, HardNegativeOptions().beta(-1)); }, "got -1");
  expect_throws_with<ConfigError>(
      [&] { functional::hard_negative(pos, neg, HardNegativeOptions().temperature(-0.5)); },
      "got -0.5");
  expect_throws_with<ConfigError>(
      [&] { functional::hard_negative(pos, neg, HardNegativeOptions().tau_plus(1.5)); }, "got 1.5");
  expect_throws_with<ConfigError>([&] { HardNegative(HardNegativeOptions().beta(-2)); }, "got -2");
  expect_throws_with<c10::Error>(
      [&] {
        functional::hard_negative(pos, torch::rand({4, 4}));
      },
      "[3]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::hard_negative(torch::rand({0}), torch::rand({0, 4}));
      },
      "empty batch");
}

TEST_F(HardNegativeTest, FiniteForExtremeInputs) {
  auto opts = HardNegativeOptions().temperature(1e-3).beta(5);
  auto fn = [&](const std::vector<torch::Tensor>& in) {
    return functional::hard_negative(in[0], in[1], opts);
  };
  expect_finite(fn, {torch::rand({4}) * 2 - 1, torch::rand({4, 6}) * 2 - 1}, "small temperature");
  expect_finite(fn, {torch::ones({4}), torch::ones({4, 6})}, "identical scores");
  expect_finite(fn, {torch::full({4}, -1.0), torch::ones({4, 6})}, "positive far below");
}

TEST_F(HardNegativeTest, ModuleMatchesFunctional) {
  torch::Tensor pos = torch::rand({3}), neg = torch::rand({3, 4});
  HardNegative module(HardNegativeOptions().beta(0.5));
  EXPECT_TRUE(torch::equal(module(pos, neg), functional::hard_negative(pos, neg, module->options)));
}

}  // namespace
}  // namespace contra::loss
