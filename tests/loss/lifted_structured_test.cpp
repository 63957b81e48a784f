#include "contra/loss/lifted_structured.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class LiftedStructuredTest : public SeededTest {};

// Song et al. eq. 4 with explicit sums over pairs and negatives.
double naive_lifted(const torch::Tensor& x, const torch::Tensor& labels, double margin) {
  const int64_t n = x.size(0);
  auto d = [&](int64_t i, int64_t j) { return (x[i] - x[j]).norm().item<double>(); };
  auto y = [&](int64_t i) { return labels[i].item<int64_t>(); };
  double total = 0;
  int64_t pairs = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      if (y(i) != y(j)) continue;
      double s = 0;
      for (int64_t k = 0; k < n; ++k) {
        if (y(k) != y(i)) s += std::exp(margin - d(i, k));
        if (y(k) != y(j)) s += std::exp(margin - d(j, k));
      }
      const double jij = std::log(s) + d(i, j);
      total += std::max(0.0, jij) * std::max(0.0, jij);
      ++pairs;
    }
  }
  return total / (2.0 * pairs);
}

// (a) scripts/loss_reference.py → tests/data/loss/lifted_structured.json
TEST_F(LiftedStructuredTest, MatchesPythonReference) {
  for (const auto& c : load_reference("lifted_structured")) {
    auto options = c.options<LiftedStructuredOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::lifted_structured(in.at("x"), in.at("labels"), options);
    });
  }
}

// (b)
TEST_F(LiftedStructuredTest, MatchesNaiveLoop) {
  torch::Tensor x = randn_double({9, 4});
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 3, 1});
  for (double margin : {0.0, 1.0, 5.0}) {
    EXPECT_NEAR(functional::lifted_structured(x, labels, LiftedStructuredOptions().margin(margin))
                    .item<double>(),
                naive_lifted(x, labels, margin), 1e-11);
  }
}

// (c) Two pairs at distance 0 of two classes, classes at distance r apart:
// J_ij = log(4 e^{α − r}) = log 4 + α − r for both pairs → loss = ½ max(0, ·)².
TEST_F(LiftedStructuredTest, AnalyticCase) {
  torch::Tensor x = torch::tensor({{0.0, 0.0}, {0.0, 0.0}, {3.0, 4.0}, {3.0, 4.0}}, torch::kDouble);
  torch::Tensor labels = torch::tensor({0, 0, 1, 1});
  for (double margin : {1.0, 6.0}) {
    const double j = std::log(4.0) + margin - 5.0;
    EXPECT_NEAR(functional::lifted_structured(x, labels, LiftedStructuredOptions().margin(margin))
                    .item<double>(),
                0.5 * std::pow(std::max(0.0, j), 2), 1e-12);
  }
}

// (d)
TEST_F(LiftedStructuredTest, GradientMatchesFiniteDifferences) {
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0});
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::lifted_structured(in[0], labels, LiftedStructuredOptions().margin(2.0));
      },
      {randn_double({7, 3})});
}

// (e)
TEST_F(LiftedStructuredTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor x = torch::randn({4, 3});
  expect_throws_with<ConfigError>(
      [&] {
        functional::lifted_structured(x, torch::tensor({0, 0, 1, 1}),
                                      LiftedStructuredOptions().margin(-0.25));
      },
      "got -0.25");
  expect_throws_with<DataError>(
      [&] {
        functional::lifted_structured(x, torch::tensor({0, 1, 2, 3}));
      },
      "0 positive pairs");
  expect_throws_with<DataError>(
      [&] {
        functional::lifted_structured(x, torch::tensor({1, 1, 1, 1}));
      },
      "1 classes");
  expect_throws_with<c10::Error>(
      [&] {
        functional::lifted_structured(x, torch::tensor({0, 1, 2}));
      },
      "[3]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::lifted_structured(torch::randn({0, 3}), torch::zeros({0}, torch::kLong));
      },
      "empty batch");
}

TEST_F(LiftedStructuredTest, FiniteForExtremeInputs) {
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  auto fn = [&](const std::vector<torch::Tensor>& in) {
    return functional::lifted_structured(in[0], labels);
  };
  expect_finite(fn, {torch::ones({6, 3})}, "identical embeddings");
  expect_finite(fn, {torch::zeros({6, 3})}, "zero vectors");
  expect_finite(fn, {torch::randn({6, 3}) * 1e4}, "large distances");
}

TEST_F(LiftedStructuredTest, ModuleMatchesFunctional) {
  torch::Tensor x = torch::randn({6, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  LiftedStructured module(LiftedStructuredOptions().margin(0.5));
  EXPECT_TRUE(torch::equal(
      module(x, labels),
      functional::lifted_structured(x, labels, LiftedStructuredOptions().margin(0.5))));
}

}  // namespace
}  // namespace contra::loss
