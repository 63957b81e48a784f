#include "contra/loss/debiased.h"

#include <cmath>

#include "contra/loss/info_nce.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class DebiasedTest : public SeededTest {};

// Chuang et al. eq. 6, row by row in the exp form.
double naive_debiased(const torch::Tensor& pos, const torch::Tensor& neg, double t, double tau) {
  const int64_t k = neg.size(1);
  double total = 0;
  for (int64_t i = 0; i < neg.size(0); ++i) {
    const double p = std::exp(pos[i].item<double>() / t);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(neg[i][j].item<double>() / t);
    const double ng = std::max((sum - k * tau * p) / (1 - tau), k * std::exp(-1 / t));
    total += -std::log(p / (p + ng));
  }
  return total / static_cast<double>(neg.size(0));
}

torch::Tensor scores(std::vector<int64_t> shape) {
  return torch::rand(shape, torch::kDouble) * 2 - 1;
}

// (a) scripts/loss_reference.py → tests/data/loss/debiased.json
TEST_F(DebiasedTest, MatchesPythonReference) {
  for (const auto& c : load_reference("debiased")) {
    auto options = c.options<DebiasedOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::debiased(in.at("positive"), in.at("negative"), options);
    });
  }
}

// (b) including rows where the clamp is active.
TEST_F(DebiasedTest, MatchesNaiveLoop) {
  torch::Tensor pos = scores({8}), neg = scores({8, 6});
  for (double t : {0.1, 0.5, 1.0}) {
    for (double tau : {0.0, 0.1, 0.4, 0.9}) {
      EXPECT_NEAR(functional::debiased(pos, neg, DebiasedOptions().temperature(t).tau_plus(tau))
                      .item<double>(),
                  naive_debiased(pos, neg, t, tau), 1e-10)
          << "t " << t << " tau+ " << tau;
    }
  }
}

// (c) τ⁺ = 0 without the clamp is InfoNCE; with the clamp active ℓ = log(1 + K e^{−1/t} / pos).
TEST_F(DebiasedTest, AnalyticCases) {
  torch::Tensor pos = scores({5}), neg = scores({5, 7});
  EXPECT_NEAR(
      functional::debiased(pos, neg, DebiasedOptions().temperature(0.5).tau_plus(0)).item<double>(),
      functional::info_nce(pos, neg, InfoNCEOptions().temperature(0.5)).item<double>(), 1e-12);
  // s⁺ = 1, every s⁻ = 0.2 and τ⁺ = 0.5: Σneg − K τ⁺ pos < 0, so Ng = K e^{−1/t}.
  const double t = 0.5;
  const int64_t k = 4;
  const double expected = std::log(1 + k * std::exp(-1 / t) / std::exp(1 / t));
  EXPECT_NEAR(functional::debiased(torch::ones({2}, torch::kDouble),
                                   torch::full({2, k}, 0.2, torch::kDouble),
                                   DebiasedOptions().temperature(t).tau_plus(0.5))
                  .item<double>(),
              expected, 1e-12);
}

// (d)
TEST_F(DebiasedTest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::debiased(in[0], in[1], DebiasedOptions().temperature(0.4).tau_plus(0.2));
      },
      {scores({4}), scores({4, 6})});
}

// (e)
TEST_F(DebiasedTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor pos = torch::rand({3}), neg = torch::rand({3, 4});
  expect_throws_with<ConfigError>(
      [&] { functional::debiased(pos, neg, DebiasedOptions().temperature(0)); }, "got 0");
  expect_throws_with<ConfigError>(
      [&] { functional::debiased(pos, neg, DebiasedOptions().tau_plus(1)); }, "got 1");
  expect_throws_with<ConfigError>(
      [&] { functional::debiased(pos, neg, DebiasedOptions().tau_plus(-0.1)); }, "got -0.1");
  expect_throws_with<ConfigError>([&] { Debiased(DebiasedOptions().temperature(-3)); }, "got -3");
  expect_throws_with<c10::Error>([&] { functional::debiased(torch::rand({2}), neg); }, "[2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::debiased(torch::rand({0}), torch::rand({0, 4}));
      },
      "empty batch");
}

TEST_F(DebiasedTest, FiniteForExtremeInputs) {
  for (double tau : {0.0, 0.1, 0.9}) {
    auto opts = DebiasedOptions().temperature(1e-3).tau_plus(tau);
    auto fn = [&](const std::vector<torch::Tensor>& in) {
      return functional::debiased(in[0], in[1], opts);
    };
    // e^{s/t} overflows here in the exp form (e^{1000}).
    expect_finite(fn, {torch::rand({4}) * 2 - 1, torch::rand({4, 6}) * 2 - 1}, "small temperature");
    expect_finite(fn, {torch::ones({4}), torch::ones({4, 6})}, "identical scores");
    expect_finite(fn, {torch::full({4}, -1.0), torch::ones({4, 6})}, "positive far below");
  }
}

TEST_F(DebiasedTest, ModuleMatchesFunctional) {
  torch::Tensor pos = torch::rand({3}), neg = torch::rand({3, 4});
  Debiased module(DebiasedOptions().tau_plus(0.2));
  EXPECT_TRUE(torch::equal(module(pos, neg), functional::debiased(pos, neg, module->options)));
}

}  // namespace
}  // namespace contra::loss
