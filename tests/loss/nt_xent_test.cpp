#include "contra/loss/nt_xent.h"

#include <cmath>

#include "contra/loss/info_nce.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class NTXentTest : public SeededTest {};

// SimCLR eq. 1 over the 2N views, with explicit sums over k ≠ i (and the bank).
double naive_nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, const torch::Tensor& bank,
                     double t) {
  const int64_t n = z1.size(0);
  torch::Tensor z = torch::cat({z1, z2});
  auto sim = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (a.dot(b) / (a.norm() * b.norm())).item<double>();
  };
  double total = 0;
  for (int64_t i = 0; i < 2 * n; ++i) {
    const int64_t j = (i + n) % (2 * n);
    double denominator = 0;
    for (int64_t k = 0; k < 2 * n; ++k) {
      if (k != i) denominator += std::exp(sim(z[i], z[k]) / t);
    }
    for (int64_t m = 0; bank.defined() && m < bank.size(0); ++m) {
      denominator += std::exp(sim(z[i], bank[m]) / t);
    }
    total += -std::log(std::exp(sim(z[i], z[j]) / t) / denominator);
  }
  return total / static_cast<double>(2 * n);
}

// (a) scripts/loss_reference.py → tests/data/loss/nt_xent.json
TEST_F(NTXentTest, MatchesPythonReference) {
  for (const auto& c : load_reference("nt_xent")) {
    auto options = c.options<NTXentOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      return functional::nt_xent(in.at("z1"), in.at("z2"),
                                 in.count("memory_bank") ? in.at("memory_bank") : torch::Tensor(),
                                 options);
    });
  }
}

// (b)
TEST_F(NTXentTest, MatchesNaiveLoop) {
  torch::Tensor z1 = randn_double({4, 3}), z2 = randn_double({4, 3}), bank = randn_double({5, 3});
  for (double t : {0.1, 0.5, 2.0}) {
    auto opts = NTXentOptions().temperature(t);
    EXPECT_NEAR(functional::nt_xent(z1, z2, {}, opts).item<double>(), naive_nt_xent(z1, z2, {}, t),
                1e-11);
    EXPECT_NEAR(functional::nt_xent(z1, z2, bank, opts).item<double>(),
                naive_nt_xent(z1, z2, bank, t), 1e-11);
  }
}

// (c) Identical views of identical items: log(2N − 1) (with an equal bank log(2N − 1 + M)).
TEST_F(NTXentTest, AnalyticCases) {
  for (int64_t n : {1, 2, 8}) {
    torch::Tensor z = torch::ones({n, 5}, torch::kDouble);
    EXPECT_NEAR(functional::nt_xent(z, z).item<double>(), std::log(2.0 * n - 1), 1e-12);
    EXPECT_NEAR(functional::nt_xent(z, z, torch::ones({3, 5}, torch::kDouble)).item<double>(),
                std::log(2.0 * n - 1 + 3), 1e-12);
  }
}

// NT-Xent row i is InfoNCE with the other view as positive and the 2N − 2 others as negatives.
TEST_F(NTXentTest, EqualsInfoNCEOverViews) {
  torch::Tensor z1 = randn_double({3, 4}), z2 = randn_double({3, 4});
  torch::Tensor z = l2_normalize(torch::cat({z1, z2}));
  torch::Tensor sim = z.mm(z.t());
  std::vector<torch::Tensor> pos, neg;
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t j = (i + 3) % 6;
    pos.push_back(sim[i][j]);
    std::vector<torch::Tensor> row;
    for (int64_t k = 0; k < 6; ++k) {
      if (k != i && k != j) row.push_back(sim[i][k]);
    }
    neg.push_back(torch::stack(row));
  }
  EXPECT_NEAR(
      functional::nt_xent(z1, z2, {}, NTXentOptions().temperature(0.3)).item<double>(),
      functional::info_nce(torch::stack(pos), torch::stack(neg), InfoNCEOptions().temperature(0.3))
          .item<double>(),
      1e-12);
}

// (d)
TEST_F(NTXentTest, GradientMatchesFiniteDifferences) {
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::nt_xent(in[0], in[1], in[2], NTXentOptions().temperature(0.4));
      },
      {randn_double({3, 4}), randn_double({3, 4}), randn_double({2, 4})});
}

// (e)
TEST_F(NTXentTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor z = torch::randn({3, 4});
  expect_throws_with<ConfigError>(
      [&] { functional::nt_xent(z, z, {}, NTXentOptions().temperature(0)); }, "got 0");
  expect_throws_with<ConfigError>([&] { NTXent(NTXentOptions().temperature(-2)); }, "got -2");
  expect_throws_with<c10::Error>([&] { functional::nt_xent(z, torch::randn({2, 4})); }, "[2, 4]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::nt_xent(z, z, torch::randn({5, 3}));
      },
      "[5, 3]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::nt_xent(torch::randn({0, 4}), torch::randn({0, 4}));
      },
      "empty batch");
}

TEST_F(NTXentTest, FiniteForExtremeInputs) {
  auto tiny = NTXentOptions().temperature(1e-4);
  auto fn = [&](const std::vector<torch::Tensor>& in) {
    return functional::nt_xent(in[0], in[1], in[2], tiny);
  };
  expect_finite(fn, {torch::randn({4, 3}), torch::randn({4, 3}), torch::randn({5, 3})},
                "small temperature");
  expect_finite(fn, {torch::zeros({4, 3}), torch::zeros({4, 3}), torch::zeros({5, 3})},
                "zero vectors");
  expect_finite(fn, {torch::ones({4, 3}), torch::ones({4, 3}), torch::ones({5, 3})},
                "identical embeddings");
}

TEST_F(NTXentTest, ModuleWithAndWithoutBank) {
  torch::Tensor z1 = torch::randn({3, 4}), z2 = torch::randn({3, 4}), bank = torch::randn({5, 4});
  NTXent module(NTXentOptions().temperature(0.2));
  EXPECT_TRUE(torch::equal(module(z1, z2), functional::nt_xent(z1, z2, {}, module->options)));
  EXPECT_TRUE(
      torch::equal(module(z1, z2, bank), functional::nt_xent(z1, z2, bank, module->options)));
  torch::nn::AnyModule any(module);
  EXPECT_TRUE(torch::equal(any.forward(z1, z2), module(z1, z2)));  // default argument
}

}  // namespace
}  // namespace contra::loss
