#include "contra/loss/triplet.h"

#include <cmath>
#include <limits>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class TripletTest : public SeededTest {};

double dist(const torch::Tensor& x, int64_t i, int64_t j, bool squared) {
  double s = 0;
  for (int64_t k = 0; k < x.size(1); ++k) {
    const double d = x[i][k].item<double>() - x[j][k].item<double>();
    s += d * d;
  }
  return squared ? s : std::sqrt(s);
}

// Loops over anchors, positives and negatives, following each mining rule's definition.
double naive_mined(const torch::Tensor& x, const torch::Tensor& labels, double margin, bool squared,
                   TripletMining mining) {
  const int64_t n = x.size(0);
  auto y = [&](int64_t i) { return labels[i].item<int64_t>(); };
  double total = 0;
  int64_t count = 0;
  for (int64_t a = 0; a < n; ++a) {
    if (mining == TripletMining::kBatchHard) {
      double hp = -1, hn = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        if (j != a && y(j) == y(a)) hp = std::max(hp, dist(x, a, j, squared));
        if (y(j) != y(a)) hn = std::min(hn, dist(x, a, j, squared));
      }
      if (hp < 0 || std::isinf(hn)) continue;
      total += std::max(0.0, hp - hn + margin);
      ++count;
      continue;
    }
    for (int64_t p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      const double dap = dist(x, a, p, squared);
      if (mining == TripletMining::kBatchAll) {
        for (int64_t m = 0; m < n; ++m) {
          if (y(m) == y(a)) continue;
          total += std::max(0.0, dap - dist(x, a, m, squared) + margin);
          ++count;
        }
      } else {  // semi-hard
        double nearest_farther = std::numeric_limits<double>::infinity();
        double farthest = -1;
        for (int64_t m = 0; m < n; ++m) {
          if (y(m) == y(a)) continue;
          const double dan = dist(x, a, m, squared);
          if (dan > dap) nearest_farther = std::min(nearest_farther, dan);
          farthest = std::max(farthest, dan);
        }
        if (farthest < 0) continue;
        const double chosen = std::isinf(nearest_farther) ? farthest : nearest_farther;
        total += std::max(0.0, dap - chosen + margin);
        ++count;
      }
    }
  }
  return total / static_cast<double>(count);
}

// (a) scripts/loss_reference.py → tests/data/loss/triplet.json
TEST_F(TripletTest, MatchesPythonReference) {
  for (const auto& c : load_reference("triplet")) {
    auto options = c.options<TripletOptions>();
    expect_matches_reference(c, [&](const TensorMap& in) {
      if (in.count("anchor")) {
        return functional::triplet(in.at("anchor"), in.at("positive"), in.at("negative"), options);
      }
      return functional::triplet_mined(in.at("x"), in.at("labels"), options);
    });
  }
}

// (b)
TEST_F(TripletTest, MatchesNaiveLoop) {
  torch::Tensor x = randn_double({10, 4});
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 3, 2});
  for (auto mining :
       {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    for (bool squared : {false, true}) {
      for (double margin : {0.2, 1.0, 4.0}) {
        auto opts = TripletOptions().margin(margin).squared(squared).mining(mining);
        EXPECT_NEAR(functional::triplet_mined(x, labels, opts).item<double>(),
                    naive_mined(x, labels, margin, squared, mining), 1e-12)
            << to_string(mining) << " squared " << squared << " margin " << margin;
      }
    }
  }
  // Explicit triplets: one loop.
  torch::Tensor a = randn_double({6, 3}), p = randn_double({6, 3}), n = randn_double({6, 3});
  double total = 0;
  for (int64_t i = 0; i < 6; ++i) {
    torch::Tensor trio = torch::stack({a[i], p[i], n[i]});
    total += std::max(0.0, dist(trio, 0, 1, false) - dist(trio, 0, 2, false) + 1.0);
  }
  EXPECT_NEAR(functional::triplet(a, p, n).item<double>(), total / 6, 1e-12);
}

// (c)
TEST_F(TripletTest, AnalyticCases) {
  // On a line: a = 0, p = 1, n = 3: d(a,p) − d(a,n) + m = 1 − 3 + m.
  torch::Tensor a = torch::tensor({{0.0}}, torch::kDouble);
  torch::Tensor p = torch::tensor({{1.0}}, torch::kDouble);
  torch::Tensor n = torch::tensor({{3.0}}, torch::kDouble);
  EXPECT_DOUBLE_EQ(functional::triplet(a, p, n, TripletOptions().margin(5)).item<double>(), 3.0);
  EXPECT_DOUBLE_EQ(functional::triplet(a, p, n, TripletOptions().margin(1)).item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(
      functional::triplet(a, p, n, TripletOptions().margin(9).squared(true)).item<double>(), 1.0);
  // All embeddings equal: every distance 0, every mining gives the margin.
  torch::Tensor same = torch::ones({6, 3}, torch::kDouble);
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  for (auto mining :
       {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    EXPECT_NEAR(functional::triplet_mined(same, labels, TripletOptions().margin(0.3).mining(mining))
                    .item<double>(),
                0.3, 1e-12);
  }
  // Semi-hard picks the nearest negative beyond the positive: points 0 (a), 1 (p), negatives at
  // 0.5 (closer than p, skipped), 1.5 and 4 → loss max(0, 1 − 1.5 + m) for the pair (a, p).
  torch::Tensor line = torch::tensor({{0.0}, {1.0}, {0.5}, {1.5}, {4.0}}, torch::kDouble);
  torch::Tensor y = torch::tensor({0, 0, 1, 2, 3});
  const double loss = functional::triplet_mined(
                          line, y, TripletOptions().margin(1.0).mining(TripletMining::kSemiHard))
                          .item<double>();
  // Pairs: (0,1): nearest farther than 1 from 0 is 1.5 → 0.5. (1,0): negatives of 1 at distances
  // 0.5, 0.5, 3; none > 1 except 3 → max(0, 1 − 3 + 1) = 0.
  EXPECT_NEAR(loss, 0.25, 1e-12);
}

// (d)
TEST_F(TripletTest, GradientMatchesFiniteDifferences) {
  torch::Tensor labels = torch::tensor({0, 1, 2, 0, 1, 2, 0});
  for (auto mining :
       {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    for (bool squared : {false, true}) {
      auto opts = TripletOptions().margin(1.5).squared(squared).mining(mining);
      expect_gradcheck(
          [&](const std::vector<torch::Tensor>& in) {
            return functional::triplet_mined(in[0], labels, opts);
          },
          {randn_double({7, 3})});
    }
  }
  expect_gradcheck(
      [](const std::vector<torch::Tensor>& in) {
        return functional::triplet(in[0], in[1], in[2], TripletOptions().margin(2.0));
      },
      {randn_double({4, 3}), randn_double({4, 3}), randn_double({4, 3})});
}

// (e)
TEST_F(TripletTest, RejectsInvalidOptionsAndInputs) {
  torch::Tensor x = torch::randn({4, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1});
  expect_throws_with<ConfigError>(
      [&] { functional::triplet_mined(x, labels, TripletOptions().margin(-1)); }, "got -1");
  expect_throws_with<ConfigError>([&] { Triplet(TripletOptions().margin(-3)); }, "got -3");
  expect_throws_with<c10::Error>(
      [&] {
        functional::triplet_mined(x, torch::tensor({0, 1}));
      },
      "[2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::triplet(x, x, torch::randn({4, 2}));
      },
      "[4, 2]");
  expect_throws_with<c10::Error>(
      [&] {
        functional::triplet_mined(torch::randn({0, 3}), torch::zeros({0}, torch::kLong));
      },
      "empty batch");
  for (auto mining :
       {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    // No positives (all labels distinct) and no negatives (one class).
    expect_throws_with<DataError>(
        [&] {
          functional::triplet_mined(x, torch::tensor({0, 1, 2, 3}),
                                    TripletOptions().mining(mining));
        },
        "4 classes");
    expect_throws_with<DataError>(
        [&] {
          functional::triplet_mined(x, torch::tensor({5, 5, 5, 5}),
                                    TripletOptions().mining(mining));
        },
        "1 classes");
  }
  expect_throws_with<ConfigError>(
      [] { ConfigTree::from_string("mining: hardest\n").get<TripletOptions>(""); }, "hardest");
}

TEST_F(TripletTest, FiniteForExtremeInputs) {
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  for (auto mining :
       {TripletMining::kBatchAll, TripletMining::kBatchHard, TripletMining::kSemiHard}) {
    auto fn = [&](const std::vector<torch::Tensor>& in) {
      return functional::triplet_mined(in[0], labels, TripletOptions().mining(mining));
    };
    expect_finite(fn, {torch::ones({6, 3})}, "identical embeddings");
    expect_finite(fn, {torch::zeros({6, 3})}, "zero vectors");
    expect_finite(fn, {torch::randn({6, 3}) * 1e6}, "large");
  }
}

TEST_F(TripletTest, ModuleMatchesFunctional) {
  torch::Tensor x = torch::randn({6, 3});
  torch::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2});
  auto opts = TripletOptions().margin(0.4).mining(TripletMining::kSemiHard);
  Triplet module(opts);
  EXPECT_TRUE(torch::equal(module(x, labels), functional::triplet_mined(x, labels, opts)));
  EXPECT_TRUE(torch::equal(module->triplets(x, x.flip(0), x.roll(1, 0)),
                           functional::triplet(x, x.flip(0), x.roll(1, 0), opts)));
}

}  // namespace
}  // namespace contra::loss
