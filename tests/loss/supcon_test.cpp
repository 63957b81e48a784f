#include "contra/loss/supcon.h"

#include <cmath>

#include "contra/loss/nt_xent.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class SupConTest : public SeededTest {};

// Khosla et al. eq. 2 with explicit sums over anchors, positives and the denominator.
double naive_supcon(const torch::Tensor& f, const torch::Tensor& labels, double t, double base) {
  const int64_t m = f.size(0);
  torch::Tensor z = f / f.norm(2, 1, true);
  double total = 0;
  int64_t anchors = 0;
  for (int64_t i = 0; i < m; ++i) {
    double denominator = 0;
    for (int64_t a = 0; a < m; ++a) {
      if (a != i) denominator += std::exp(z[i].dot(z[a]).item<double>() / t);
    }
    double sum = 0;
    int64_t positives = 0;
    for (int64_t p = 0; p < m; ++p) {
      if (p == i || labels[p].item<int64_t>() != labels[i].item<int64_t>()) continue;
      sum += std::log(std::exp(z[i].dot(z[p]).item<double>() / t) / denominator);
      ++positives;
    }
    if (positives == 0) continue;
    total += -(t / base) * sum / static_cast<double>(positives);
    ++anchors;
  }
  return total / static_cast<double>(anchors);
}

// (a) scripts/loss_reference.py → tests/data/loss/supcon.json (the official SupConLoss)
TEST_F(SupConTest, MatchesPythonReference) {
  for (const auto& c : load_reference("supcon")) {
    auto options = c.options<SupConOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::supcon(in.at("features"),
                                in.count("labels") ? in.at("labels") : torch::Tensor(), options);
    });
  }
}

// (b)
TEST_F(SupConTest, MatchesNaiveLoop) {
  torch::Tensor f = randn_double({9, 4});
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 3});
  for (double t : {0.07, 0.5}) {
    auto opts = SupConOptions().temperature(t).base_temperature(0.07);
    EXPECT_NEAR(functional::supcon(f, labels, opts).item<double>(),
                naive_supcon(f, labels, t, 0.07), 1e-10);
  }
  // (N, V, D): flattened views, labels repeated.
  torch::Tensor views = randn_double({3, 2, 4});
  torch::Tensor y = torch::tensor({0, 1, 0});
  torch::Tensor flat = torch::cat({views.select(1, 0), views.select(1, 1)});
  EXPECT_NEAR(functional::supcon(views, y, SupConOptions().temperature(0.2)).item<double>(),
              naive_supcon(flat, torch::cat({y, y}), 0.2, 0.07), 1e-10);
}

// (c) identical features: every term log(M − 1), scaled by τ/τ_base; and SimCLR as a special case.
TEST_F(SupConTest, AnalyticCases) {
  torch::Tensor same = torch::ones({6, 3}, torch::kDouble);
  auto opts = SupConOptions().temperature(0.1).base_temperature(0.05);
  EXPECT_NEAR(functional::supcon(same, torch::tensor({0, 0, 1, 1, 1, 2}), opts).item<double>(),
              2.0 * std::log(5.0), 1e-12);
  torch::Tensor z1 = randn_double({4, 3}), z2 = randn_double({4, 3});
  EXPECT_NEAR(functional::supcon(torch::stack({z1, z2}, 1), {},
                                 SupConOptions().temperature(0.3).base_temperature(0.3))
                  .item<double>(),
              functional::nt_xent(z1, z2, {}, NTXentOptions().temperature(0.3)).item<double>(),
              1e-12);
}

// (d)
TEST_F(SupConTest, GradientMatchesFiniteDifferences) {
  torch::Tensor labels = torch::tensor({0, 1, 0, 1, 2, 2});
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::supcon(in[0], labels, SupConOptions().temperature(0.5));
      },
      {randn_double({6, 3})});
}

// (e)
TEST_F(SupConTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor f = torch::randn({4, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1});
  expect_throws_with<ConfigError>(
      [&] { functional::supcon(f, labels, SupConOptions().temperature(0)); }, "got 0");
  expect_throws_with<ConfigError>(
      [&] { functional::supcon(f, labels, SupConOptions().base_temperature(-1)); }, "got -1");
  expect_throws_with<ConfigError>([&] { SupCon(SupConOptions().temperature(-0.5)); }, "got -0.5");
  expect_throws_with<DataError>(
      [&] {
        functional::supcon(f, torch::tensor({0, 1, 2, 3}));
      },
      "4 classes");
  expect_throws_with<c10::Error>([&] { functional::supcon(f, torch::tensor({0, 1})); }, "[2]");
  expect_throws_with<c10::Error>([&] { functional::supcon(f); }, "labels are required");
  expect_throws_with<c10::Error>(
      [&] {
        functional::supcon(torch::randn({3, 2, 4}), labels);
      },
      "[4]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::supcon(torch::randn({0, 3}), torch::zeros({0}, torch::kLong));
      },
      "empty batch");
}

TEST_F(SupConTest, FiniteForExtremeInputs) {
  torch::Tensor labels = torch::tensor({0, 0, 1, 1});
  auto fn = [&](const std::vector<torch::Tensor>& in) {
    return functional::supcon(in[0], labels, SupConOptions().temperature(1e-4));
  };
  expect_finite(fn, {torch::randn({4, 3})}, "small temperature");
  expect_finite(fn, {torch::zeros({4, 3})}, "zero vectors");
  expect_finite(fn, {torch::ones({4, 3})}, "identical embeddings");
}

TEST_F(SupConTest, ModuleMatchesFunctional) {
  torch::Tensor f = torch::randn({2, 2, 3});
  SupCon module;
  EXPECT_TRUE(torch::equal(module(f), functional::supcon(f)));
  torch::nn::AnyModule any(module);
  EXPECT_TRUE(torch::equal(any.forward(f), functional::supcon(f)));
}

}  // namespace
}  // namespace contra::loss
