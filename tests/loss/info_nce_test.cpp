#include "contra/loss/info_nce.h"

#include <cmath>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class InfoNCETest : public SeededTest {};

// −log e^{s⁺/τ} / (e^{s⁺/τ} + Σ e^{s⁻/τ}), row by row, exp-sum form.
double naive_info_nce(const torch::Tensor& pos, const torch::Tensor& neg, double t) {
  double total = 0;
  for (int64_t i = 0; i < neg.size(0); ++i) {
    const double p = std::exp(pos[i].item<double>() / t);
    double denominator = p;
    for (int64_t k = 0; k < neg.size(1); ++k) denominator += std::exp(neg[i][k].item<double>() / t);
    total += -std::log(p / denominator);
  }
  return total / static_cast<double>(neg.size(0));
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.dot(b) / (a.norm() * b.norm())).item<double>();
}

// (a) scripts/loss_reference.py → tests/data/loss/info_nce.json
TEST_F(InfoNCETest, MatchesPythonReference) {
  for (const auto& c : load_reference("info_nce")) {
    auto options = c.options<InfoNCEOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      if (in.count("positive"))
        return functional::info_nce(in.at("positive"), in.at("negative"), options);
      return functional::info_nce_keys(
          in.at("query"), in.at("positive_key"),
          c.input("negative_keys").defined() ? in.at("negative_keys") : torch::Tensor(), options);
    });
  }
}

// (b) scores form, and the query/key forms built by hand into scores.
TEST_F(InfoNCETest, MatchesNaiveLoop) {
  torch::Tensor pos = randn_double({5}), neg = randn_double({5, 7});
  EXPECT_NEAR(functional::info_nce(pos, neg, InfoNCEOptions().temperature(0.7)).item<double>(),
              naive_info_nce(pos, neg, 0.7), 1e-12);
  torch::Tensor q = randn_double({4, 3}), k = randn_double({4, 3}), queue = randn_double({6, 3});
  torch::Tensor p_in = torch::empty({4}, torch::kDouble),
                n_in = torch::empty({4, 3}, torch::kDouble);
  torch::Tensor n_queue = torch::empty({4, 6}, torch::kDouble);
  for (int64_t i = 0; i < 4; ++i) {
    p_in[i] = cosine(q[i], k[i]);
    for (int64_t j = 0, c = 0; j < 4; ++j) {
      if (j != i) n_in[i][c++] = cosine(q[i], k[j]);
    }
    for (int64_t j = 0; j < 6; ++j) n_queue[i][j] = cosine(q[i], queue[j]);
  }
  auto opts = InfoNCEOptions().temperature(0.2);
  EXPECT_NEAR(functional::info_nce_keys(q, k, {}, opts).item<double>(),
              naive_info_nce(p_in, n_in, 0.2), 1e-12);
  EXPECT_NEAR(functional::info_nce_keys(q, k, queue, opts).item<double>(),
              naive_info_nce(p_in, n_queue, 0.2), 1e-12);
  // Per-query negatives: the same queue for every query gives the same loss.
  EXPECT_NEAR(
      functional::info_nce_keys(q, k, queue.unsqueeze(0).expand({4, 6, 3}), opts).item<double>(),
      naive_info_nce(p_in, n_queue, 0.2), 1e-12);
}

// (c) Equal logits: log(1 + K).
TEST_F(InfoNCETest, AnalyticCases) {
  for (int64_t k : {1, 7, 100}) {
    EXPECT_NEAR(
        functional::info_nce(torch::full({3}, 0.4), torch::full({3, k}, 0.4)).item<double>(),
        std::log(1.0 + k), 1e-5);
  }
  // Identical queries and keys, in-batch: log N.
  torch::Tensor same = torch::ones({5, 4}, torch::kDouble);
  EXPECT_NEAR(functional::info_nce_keys(same, same).item<double>(), std::log(5.0), 1e-12);
}

// (d)
TEST_F(InfoNCETest, GradientMatchesFiniteDifferences) {
  auto opts = InfoNCEOptions().temperature(0.3);
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::info_nce(in[0], in[1], opts);
      },
      {randn_double({4, 1}), randn_double({4, 5})});
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::info_nce_keys(in[0], in[1], in[2], opts);
      },
      {randn_double({3, 4}), randn_double({3, 4}), randn_double({5, 4})});
  expect_gradcheck(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::info_nce_keys(in[0], in[1], {}, opts);
      },
      {randn_double({3, 4}), randn_double({3, 4})});
}

// (e)
TEST_F(InfoNCETest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor pos = torch::randn({3}), neg = torch::randn({3, 4});
  expect_throws_with<ConfigError>(
      [&] { functional::info_nce(pos, neg, InfoNCEOptions().temperature(0)); }, "got 0");
  expect_throws_with<ConfigError>(
      [&] { functional::info_nce(pos, neg, InfoNCEOptions().temperature(-0.1)); }, "got -0.1");
  expect_throws_with<ConfigError>([&] { InfoNCE(InfoNCEOptions().temperature(-1)); }, "got -1");
  expect_throws_with<c10::Error>([&] { functional::info_nce(torch::randn({2}), neg); }, "[2]");
  expect_throws_with<c10::Error>([&] { functional::info_nce(pos, torch::randn({3})); }, "[3]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::info_nce(torch::randn({0}), torch::randn({0, 4}));
      },
      "empty batch");
  torch::Tensor q = torch::randn({3, 4});
  expect_throws_with<c10::Error>(
      [&] {
        functional::info_nce_keys(q, torch::randn({3, 5}));
      },
      "[3, 5]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::info_nce_keys(q, q, torch::randn({6, 5}));
      },
      "[6, 5]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::info_nce_keys(q, q, torch::randn({2, 6, 4}));
      },
      "[2, 6, 4]");
}

TEST_F(InfoNCETest, FiniteForExtremeInputs) {
  auto tiny = InfoNCEOptions().temperature(1e-4);
  expect_finite(
      [&](const std::vector<torch::Tensor>& in) {
        return functional::info_nce(in[0], in[1], tiny);
      },
      {torch::randn({4}), torch::randn({4, 6})}, "small temperature");
  auto keys = [&](const std::vector<torch::Tensor>& in) {
    return functional::info_nce_keys(in[0], in[1], in[2], tiny);
  };
  expect_finite(keys, {torch::zeros({3, 4}), torch::zeros({3, 4}), torch::zeros({5, 4})},
                "zero vectors");
  torch::Tensor same = torch::ones({3, 4});
  expect_finite(keys, {same, same, torch::ones({5, 4})}, "identical embeddings");
}

TEST_F(InfoNCETest, ModuleMatchesFunctional) {
  torch::Tensor pos = torch::randn({3}), neg = torch::randn({3, 4});
  auto opts = InfoNCEOptions().temperature(0.5);
  InfoNCE module(opts);
  EXPECT_TRUE(torch::equal(module(pos, neg), functional::info_nce(pos, neg, opts)));
  torch::Tensor q = torch::randn({3, 4});
  EXPECT_TRUE(
      torch::equal(module->keys(q, q.flip(0)), functional::info_nce_keys(q, q.flip(0), {}, opts)));
}

}  // namespace
}  // namespace contra::loss
