#include "contra/loss/swav.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class SwAVTest : public SeededTest {};

// Sinkhorn-Knopp as the official code writes it, element by element.
torch::Tensor naive_sinkhorn(const torch::Tensor& scores, double eps, int64_t iterations) {
  const int64_t b = scores.size(0), k = scores.size(1);
  std::vector<std::vector<double>> q(k, std::vector<double>(b));
  double total = 0;
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t i = 0; i < b; ++i) total += q[c][i] = std::exp(scores[i][c].item<double>() / eps);
  }
  for (auto& row : q)
    for (auto& v : row) v /= total;
  for (int64_t it = 0; it < iterations; ++it) {
    for (int64_t c = 0; c < k; ++c) {
      double s = 0;
      for (int64_t i = 0; i < b; ++i) s += q[c][i];
      for (int64_t i = 0; i < b; ++i) q[c][i] /= s * k;
    }
    for (int64_t i = 0; i < b; ++i) {
      double s = 0;
      for (int64_t c = 0; c < k; ++c) s += q[c][i];
      for (int64_t c = 0; c < k; ++c) q[c][i] /= s * b;
    }
  }
  torch::Tensor out = torch::empty({b, k}, torch::kDouble);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t c = 0; c < k; ++c) out[i][c] = q[c][i] * b;
  }
  return out;
}

double naive_swav(const torch::Tensor& scores, double t, double eps, int64_t iterations,
                  const std::vector<int64_t>& assign) {
  const int64_t views = scores.size(0), b = scores.size(1), k = scores.size(2);
  double loss = 0;
  for (int64_t a : assign) {
    torch::Tensor q = naive_sinkhorn(scores[a], eps, iterations);
    double sub = 0;
    for (int64_t v = 0; v < views; ++v) {
      if (v == a) continue;
      double ce = 0;
      for (int64_t i = 0; i < b; ++i) {
        double z = 0;
        for (int64_t c = 0; c < k; ++c) z += std::exp(scores[v][i][c].item<double>() / t);
        for (int64_t c = 0; c < k; ++c) {
          ce -= q[i][c].item<double>() * std::log(std::exp(scores[v][i][c].item<double>() / t) / z);
        }
      }
      sub += ce / b;
    }
    loss += sub / (views - 1);
  }
  return loss / static_cast<double>(assign.size());
}

torch::Tensor cosine_scores(int64_t views, int64_t b, int64_t k) {
  torch::Tensor protos = l2_normalize(torch::randn({k, 4}, torch::kDouble));
  return torch::matmul(l2_normalize(torch::randn({views, b, 4}, torch::kDouble)), protos.t());
}

// (a) scripts/loss_reference.py → tests/data/loss/swav.json (the official distributed_sinkhorn)
TEST_F(SwAVTest, MatchesPythonReference) {
  for (const auto& c : load_reference("swav")) {
    auto options = c.options<SwAVOptions>();
    expect_matches_reference(
        c, [&](const TensorMap& in) { return functional::swav(in.at("scores"), options); });
  }
}

// (b)
TEST_F(SwAVTest, MatchesNaiveLoop) {
  torch::Tensor scores = cosine_scores(3, 5, 4);
  EXPECT_NEAR(functional::swav(scores).item<double>(), naive_swav(scores, 0.1, 0.05, 3, {0, 1}),
              1e-10);
  auto opts =
      SwAVOptions().temperature(0.3).epsilon(0.2).sinkhorn_iterations(7).crops_for_assign({2});
  EXPECT_NEAR(functional::swav(scores, opts).item<double>(), naive_swav(scores, 0.3, 0.2, 7, {2}),
              1e-10);
  EXPECT_TRUE(torch::allclose(functional::sinkhorn_knopp(scores[0], 0.05, 3),
                              naive_sinkhorn(scores[0], 0.05, 3), 1e-10, 1e-12));
}

// (c) equal scores: uniform codes → log K; codes sum to 1 per sample and B/K per prototype.
TEST_F(SwAVTest, AnalyticCases) {
  EXPECT_NEAR(functional::swav(torch::full({2, 6, 5}, 0.3, torch::kDouble)).item<double>(),
              std::log(5.0), 1e-12);
  torch::Tensor q = functional::sinkhorn_knopp(cosine_scores(1, 8, 4)[0], 0.5, 200);
  EXPECT_TRUE(torch::allclose(q.sum(1), torch::ones({8}, torch::kDouble), 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(q.sum(0), torch::full({4}, 2.0, torch::kDouble), 1e-6, 1e-6));
}

// (d) codes are constants; the gradient flows through the predictions.
TEST_F(SwAVTest, GradientMatchesFiniteDifferences) {
  // Sinkhorn's codes have no gradient, so finite differences must hold them fixed: perturb only a
  // view that is not an assignment view.
  torch::Tensor fixed = cosine_scores(2, 4, 3);
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::swav(torch::cat({fixed, in[0].unsqueeze(0)}),
                                SwAVOptions().temperature(0.5).crops_for_assign({0, 1}));
      },
      {cosine_scores(1, 4, 3)[0]});
}

// (e)
TEST_F(SwAVTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor s = torch::randn({2, 4, 3});
  expect_throws_with<ConfigError>([&] { functional::swav(s, SwAVOptions().temperature(0)); },
                                  "got 0");
  expect_throws_with<ConfigError>([&] { functional::swav(s, SwAVOptions().epsilon(-0.05)); },
                                  "got -0.05");
  expect_throws_with<ConfigError>(
      [&] { functional::swav(s, SwAVOptions().sinkhorn_iterations(0)); }, "got 0");
  expect_throws_with<ConfigError>(
      [&] {
        functional::swav(s, SwAVOptions().crops_for_assign({0, 5}));
      },
      "view 5");
  expect_throws_with<ConfigError>(
      [&] { functional::swav(s, SwAVOptions().crops_for_assign({-1})); }, "got -1");
  expect_throws_with<ConfigError>([&] { SwAV(SwAVOptions().crops_for_assign({})); },
                                  "at least one");
  expect_throws_with<c10::Error>(
      [&] {
        functional::swav(torch::randn({1, 4, 3}), SwAVOptions().crops_for_assign({0}));
      },
      "[1, 4, 3]");
  expect_throws_with<c10::Error>([&] { functional::swav(torch::randn({4, 3})); }, "[4, 3]");
  expect_throws_with<c10::Error>([&] { functional::swav(torch::randn({2, 0, 3})); }, "empty batch");
}

TEST_F(SwAVTest, FiniteForExtremeInputs) {
  auto opts = SwAVOptions().temperature(1e-4).epsilon(1e-4);
  auto fn = [&](const std::vector<torch::Tensor>& in) { return functional::swav(in[0], opts); };
  // exp(scores/ε) overflows in the official form here.
  expect_finite(fn, {torch::rand({2, 4, 3}) * 2 - 1}, "small temperature and epsilon");
  expect_finite(fn, {torch::ones({2, 4, 3})}, "identical scores");
  expect_finite(fn, {torch::zeros({2, 4, 3})}, "zero scores");
}

TEST_F(SwAVTest, ModuleMatchesFunctional) {
  torch::Tensor s = torch::randn({2, 4, 3});
  SwAV module;
  EXPECT_TRUE(torch::equal(module(s), functional::swav(s)));
}

}  // namespace
}  // namespace contra::loss
