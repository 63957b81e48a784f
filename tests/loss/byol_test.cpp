#include "contra/loss/byol.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class ByolTest : public SeededTest {};

// BYOL eq. 2, ‖p/‖p‖ − z/‖z‖‖² element by element (or −cos).
double naive_byol(const torch::Tensor& p, const torch::Tensor& z, bool mse) {
  double total = 0;
  for (int64_t i = 0; i < p.size(0); ++i) {
    const double np = p[i].norm().item<double>(), nz = z[i].norm().item<double>();
    double sq = 0, dot = 0;
    for (int64_t k = 0; k < p.size(1); ++k) {
      const double a = p[i][k].item<double>() / np, b = z[i][k].item<double>() / nz;
      sq += (a - b) * (a - b);
      dot += a * b;
    }
    total += mse ? sq : -dot;
  }
  return total / static_cast<double>(p.size(0));
}

// (a) scripts/loss_reference.py → tests/data/loss/byol.json
TEST_F(ByolTest, MatchesPythonReference) {
  for (const auto& c : load_reference("byol")) {
    auto options = c.options<ByolOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::byol(in.at("prediction"), in.at("target"), options);
    });
  }
}

// (b)
TEST_F(ByolTest, MatchesNaiveLoop) {
  torch::Tensor p = randn_double({6, 4}), z = randn_double({6, 4});
  EXPECT_NEAR(functional::byol(p, z).item<double>(), naive_byol(p, z, true), 1e-12);
  EXPECT_NEAR(functional::byol(p, z, ByolOptions().form(ByolForm::kNegativeCosine)).item<double>(),
              naive_byol(p, z, false), 1e-12);
}

// (c) aligned, opposite, orthogonal.
TEST_F(ByolTest, AnalyticCases) {
  torch::Tensor p = torch::tensor({{1.0, 0.0}}, torch::kDouble);
  auto neg = ByolOptions().form(ByolForm::kNegativeCosine);
  EXPECT_NEAR(functional::byol(p, p * 3).item<double>(), 0.0, 1e-15);
  EXPECT_NEAR(functional::byol(p, -p).item<double>(), 4.0, 1e-15);
  EXPECT_NEAR(functional::byol(p, torch::tensor({{0.0, 2.0}}, torch::kDouble)).item<double>(), 2.0,
              1e-15);
  EXPECT_NEAR(functional::byol(p, p * 3, neg).item<double>(), -1.0, 1e-15);
  EXPECT_NEAR(functional::byol(p, -p, neg).item<double>(), 1.0, 1e-15);
}

// (d)
TEST_F(ByolTest, GradientMatchesFiniteDifferences) {
  for (auto form : {ByolForm::kNormalizedMse, ByolForm::kNegativeCosine}) {
    expect_gradcheck(
        [&](const std::vector<torch::Tensor>& in) {
          return functional::byol(in[0], in[1], ByolOptions().form(form));
        },
        {randn_double({4, 3}), randn_double({4, 3})});
  }
}

// (e) byol has no numeric options: a bad form name and bad shapes.
TEST_F(ByolTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor p = torch::randn({3, 4});
  expect_throws_with<ConfigError>(
      [] { ConfigTree::from_string("form: mse\n").get<ByolOptions>(""); }, "got 'mse'");
  expect_throws_with<c10::Error>([&] { functional::byol(p, torch::randn({3, 5})); }, "[3, 5]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::byol(torch::randn({0, 4}), torch::randn({0, 4}));
      },
      "empty batch");
}

TEST_F(ByolTest, FiniteForExtremeInputs) {
  for (auto form : {ByolForm::kNormalizedMse, ByolForm::kNegativeCosine}) {
    auto fn = [&](const std::vector<torch::Tensor>& in) {
      return functional::byol(in[0], in[1], ByolOptions().form(form));
    };
    expect_finite(fn, {torch::zeros({3, 4}), torch::zeros({3, 4})}, "zero vectors");
    expect_finite(fn, {torch::ones({3, 4}), torch::ones({3, 4})}, "identical");
    expect_finite(fn, {torch::randn({3, 4}) * 1e-30, torch::randn({3, 4}) * 1e30}, "scales");
  }
}

TEST_F(ByolTest, ModuleMatchesFunctional) {
  torch::Tensor p = torch::randn({3, 4}), z = torch::randn({3, 4});
  Byol module(ByolOptions().form(ByolForm::kNegativeCosine));
  EXPECT_TRUE(torch::equal(module(p, z), functional::byol(p, z, module->options)));
}

}  // namespace
}  // namespace contra::loss
