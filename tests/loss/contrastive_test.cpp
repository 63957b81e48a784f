#include "contra/loss/contrastive.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class ContrastiveTest : public SeededTest {};

// Per-pair loop: y d² + (1 − y) max(0, m − d)².
double naive_contrastive(const torch::Tensor& x1, const torch::Tensor& x2,
                         const torch::Tensor& similar, double margin, bool cosine) {
  auto a = x1.accessor<double, 2>();
  auto b = x2.accessor<double, 2>();
  double total = 0;
  for (int64_t i = 0; i < x1.size(0); ++i) {
    double d = 0;
    if (cosine) {
      double dot = 0, na = 0, nb = 0;
      for (int64_t k = 0; k < x1.size(1); ++k) {
        dot += a[i][k] * b[i][k];
        na += a[i][k] * a[i][k];
        nb += b[i][k] * b[i][k];
      }
      d = 1 - dot / (std::sqrt(na) * std::sqrt(nb));
    } else {
      for (int64_t k = 0; k < x1.size(1); ++k) d += (a[i][k] - b[i][k]) * (a[i][k] - b[i][k]);
      d = std::sqrt(d);
    }
    const double y = similar[i].item<double>();
    const double hinge = std::max(0.0, margin - d);
    total += y * d * d + (1 - y) * hinge * hinge;
  }
  return total / static_cast<double>(x1.size(0));
}

// (a) scripts/loss_reference.py → tests/data/loss/contrastive.json
TEST_F(ContrastiveTest, MatchesPythonReference) {
  for (const auto& c : load_reference("contrastive")) {
    auto options = c.options<ContrastiveOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::contrastive(in.at("x1"), in.at("x2"), in.at("similar"), options);
    });
  }
}

// (b)
TEST_F(ContrastiveTest, MatchesNaiveLoop) {
  torch::Tensor x1 = randn_double({7, 5});
  torch::Tensor x2 = randn_double({7, 5});
  torch::Tensor y = torch::randint(2, {7}, torch::kLong);
  for (bool cosine : {false, true}) {
    auto options = ContrastiveOptions()
                       .margin(cosine ? 0.8 : 3.0)
                       .distance(cosine ? Distance::kCosine : Distance::kEuclidean);
    EXPECT_NEAR(functional::contrastive(x1, x2, y, options).item<double>(),
                naive_contrastive(x1, x2, y, options.margin(), cosine), 1e-12);
  }
}

// (c)
TEST_F(ContrastiveTest, AnalyticCases) {
  torch::Tensor a = torch::tensor({{0.0, 0.0}}, torch::kDouble);
  torch::Tensor b = torch::tensor({{3.0, 4.0}}, torch::kDouble);  // d = 5
  auto opts = ContrastiveOptions().margin(2.0);
  EXPECT_DOUBLE_EQ(functional::contrastive(a, b, torch::ones({1}), opts).item<double>(), 25.0);
  EXPECT_DOUBLE_EQ(functional::contrastive(a, b, torch::zeros({1}), opts).item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(functional::contrastive(a, a, torch::zeros({1}), opts).item<double>(), 4.0);
  EXPECT_DOUBLE_EQ(functional::contrastive(a, a, torch::ones({1}), opts).item<double>(), 0.0);
  // Orthogonal vectors: cosine distance 1; dissimilar with margin 1.5 → 0.25.
  torch::Tensor e1 = torch::tensor({{1.0, 0.0}}, torch::kDouble);
  torch::Tensor e2 = torch::tensor({{0.0, 2.0}}, torch::kDouble);
  auto cos = ContrastiveOptions().margin(1.5).distance(Distance::kCosine);
  EXPECT_NEAR(functional::contrastive(e1, e2, torch::zeros({1}), cos).item<double>(), 0.25, 1e-15);
  EXPECT_NEAR(functional::contrastive(e1, e2, torch::ones({1}), cos).item<double>(), 1.0, 1e-15);
}

// (d)
TEST_F(ContrastiveTest, GradientMatchesFiniteDifferences) {
  torch::Tensor y = torch::tensor({1, 0, 0, 1, 0});
  for (auto d : {Distance::kEuclidean, Distance::kCosine}) {
    auto opts = ContrastiveOptions().margin(d == Distance::kCosine ? 1.2 : 3.0).distance(d);
    expect_gradcheck(
        [&](const std::vector<torch::Tensor>& in) {
          return functional::contrastive(in[0], in[1], y, opts);
        },
        {randn_double({5, 3}), randn_double({5, 3})});
  }
}

// (e)
TEST_F(ContrastiveTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor x = torch::randn({3, 4});
  torch::Tensor y = torch::ones({3});
  expect_throws_with<ConfigError>(
      [&] { functional::contrastive(x, x, y, ContrastiveOptions().margin(-0.5)); }, "got -0.5");
  expect_throws_with<ConfigError>(
      [&] {
        functional::contrastive(x, x, y,
                                ContrastiveOptions().distance(Distance::kSquaredEuclidean));
      },
      "squared_euclidean");
  expect_throws_with<ConfigError>([&] { Contrastive(ContrastiveOptions().margin(-2)); }, "got -2");
  expect_throws_with<c10::Error>(
      [&] {
        functional::contrastive(x, torch::randn({3, 5}), y);
      },
      "[3, 5]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::contrastive(torch::randn({0, 4}), torch::randn({0, 4}), torch::ones({0}));
      },
      "empty batch");
  expect_throws_with<c10::Error>([&] { functional::contrastive(x, x, torch::ones({2})); }, "[2]");
  expect_throws_with<DataError>(
      [&] {
        functional::contrastive(x, x, torch::tensor({1, 2, 0}));
      },
      "got 2");
}

TEST_F(ContrastiveTest, FiniteForExtremeInputs) {
  torch::Tensor y = torch::tensor({1, 0, 1, 0});
  for (auto d : {Distance::kEuclidean, Distance::kCosine}) {
    auto opts = ContrastiveOptions().distance(d);
    auto fn = [&](const std::vector<torch::Tensor>& in) {
      return functional::contrastive(in[0], in[1], y, opts);
    };
    torch::Tensor same = torch::randn({4, 3});
    expect_finite(fn, {same, same}, "identical embeddings");
    expect_finite(fn, {torch::zeros({4, 3}), torch::zeros({4, 3})}, "zero vectors");
    expect_finite(fn, {torch::randn({4, 3}) * 1e4, torch::randn({4, 3}) * 1e4}, "large");
  }
}

TEST_F(ContrastiveTest, ModuleAndConfigMatchFunctional) {
  torch::Tensor x1 = torch::randn({4, 3});
  torch::Tensor x2 = torch::randn({4, 3});
  torch::Tensor y = torch::tensor({1, 0, 1, 0});
  auto opts =
      ConfigTree::from_string("margin: 0.7\ndistance: cosine\n").get<ContrastiveOptions>("");
  EXPECT_EQ(opts.distance(), Distance::kCosine);
  Contrastive module(opts);
  EXPECT_TRUE(torch::equal(module(x1, x2, y), functional::contrastive(x1, x2, y, opts)));
  expect_throws_with<ConfigError>(
      [] { ConfigTree::from_string("distance: manhattan\n").get<ContrastiveOptions>(""); },
      "manhattan");
}

}  // namespace
}  // namespace contra::loss
