#include "contra/loss/mining.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "contra/loss/common.h"
#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class MiningTest : public SeededTest {};

// Index of the row of `pool` equal to `row` (−1 if none).
int64_t find_row(const torch::Tensor& pool, const torch::Tensor& row) {
  for (int64_t i = 0; i < pool.size(0); ++i) {
    if (torch::equal(pool[i], row)) return i;
  }
  return -1;
}

TEST_F(MiningTest, GetNegativesTakesRandomOthersThenNearest) {
  torch::Tensor features = torch::randn({5, 4}, torch::kDouble);
  torch::Tensor memory = torch::randn({20, 4}, torch::kDouble);
  torch::Tensor exclude = torch::tensor({3, -1, 7, 0, 19});
  torch::Tensor out =
      get_negatives(features, memory, 3, NegativeMiningOptions().num_random(2), exclude);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{5, 5, 4}));
  for (int64_t i = 0; i < 5; ++i) {
    // Random part: two distinct other rows of the batch.
    const int64_t r0 = find_row(features, out[i][0]), r1 = find_row(features, out[i][1]);
    EXPECT_GE(r0, 0);
    EXPECT_GE(r1, 0);
    EXPECT_NE(r0, i);
    EXPECT_NE(r1, i);
    EXPECT_NE(r0, r1);
    // Nearest part: cosine similarities by a loop, sorted, own entry skipped.
    std::vector<std::pair<double, int64_t>> sims;
    for (int64_t m = 0; m < 20; ++m) {
      if (m == exclude[i].item<int64_t>()) continue;
      const double c =
          (features[i].dot(memory[m]) / (features[i].norm() * memory[m].norm())).item<double>();
      sims.emplace_back(-c, m);
    }
    std::sort(sims.begin(), sims.end());
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(find_row(memory, out[i][2 + j]), sims[j].second);
  }
}

TEST_F(MiningTest, RandomInBatchNegativesCoverEveryOtherItem) {
  torch::Tensor features =
      torch::arange(6, torch::kDouble).unsqueeze(1).expand({6, 2}).contiguous();
  std::vector<int64_t> counts(6, 0);
  for (int trial = 0; trial < 300; ++trial) {
    torch::Tensor out = get_negatives(features, features, 0, NegativeMiningOptions().num_random(1));
    const int64_t pick = static_cast<int64_t>(out[0][0][0].item<double>());
    ++counts[pick];
  }
  EXPECT_EQ(counts[0], 0);                                        // never the query itself
  for (int64_t i = 1; i < 6; ++i) EXPECT_GT(counts[i], 30) << i;  // ~60 each
}

TEST_F(MiningTest, GetNegativesRejectsBadArguments) {
  torch::Tensor f = torch::randn({4, 3}), m = torch::randn({10, 3});
  expect_throws_with<ConfigError>([&] { get_negatives(f, m, 11); }, "got 11");
  expect_throws_with<ConfigError>(
      [&] {
        get_negatives(f, m, 10, {}, torch::tensor({0, 1, 2, 3}));
      },
      "got 10");
  expect_throws_with<ConfigError>(
      [&] { get_negatives(f, m, 2, NegativeMiningOptions().num_random(4)); }, "got 4");
  expect_throws_with<c10::Error>([&] { get_negatives(f, torch::randn({10, 2}), 2); }, "[10, 2]");
  expect_throws_with<c10::Error>([&] { get_negatives(f, m, 2, {}, torch::tensor({0, 1})); }, "[2]");
}

// Negatives e_1..e_8 and a query with decreasing weights on them: the 4 hardest are e_1..e_4, and
// every synthetic point can be decomposed to check its construction.
TEST_F(MiningTest, MoCHiMixesHardestNegativesAndQuery) {
  const int64_t d = 10, k = 8;
  torch::Tensor negatives = torch::eye(d, torch::kDouble).narrow(0, 1, k);  // (8, 10), e_1..e_8
  std::vector<double> w = {0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
  const double c0 = 1.5;
  torch::Tensor q = torch::zeros({d}, torch::kDouble);
  q[0] = c0;
  for (int64_t i = 0; i < k; ++i) q[i + 1] = w[i];
  torch::Tensor query = q.unsqueeze(0).repeat({3, 1});
  const int64_t s = 40, s2 = 30;
  auto opts = MoCHiOptions().num_hard(4).num_mixed(s).num_query_mixed(s2);
  torch::Tensor h = mochi_negatives(query, negatives, opts);
  ASSERT_EQ(h.sizes(), (std::vector<int64_t>{3, s + s2, d}));
  EXPECT_TRUE(torch::allclose(h.norm(2, 2), torch::ones({3, s + s2}, torch::kDouble)));
  torch::Tensor qn = q / q.norm();
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t j = 0; j < s; ++j) {  // two distinct hard negatives, positive weights
      torch::Tensor v = h[b][j];
      int64_t support = 0;
      for (int64_t c = 0; c < d; ++c) {
        const double x = v[c].item<double>();
        if (std::abs(x) < 1e-12) continue;
        EXPECT_GT(x, 0);
        EXPECT_TRUE(c >= 1 && c <= 4) << "coordinate " << c << " is not a hard negative";
        ++support;
      }
      EXPECT_EQ(support, 2);
    }
    for (int64_t j = s; j < s + s2; ++j) {  // β q̂ + (1 − β) e_m, β < 0.5, m hard
      torch::Tensor v = h[b][j];
      const double r = v[0].item<double>() / qn[0].item<double>();  // β / Z
      int64_t m = -1;
      double u = 0;  // (1 − β) / Z
      for (int64_t c = 1; c <= k; ++c) {
        const double extra = v[c].item<double>() - r * qn[c].item<double>();
        if (extra > 1e-9) {
          EXPECT_EQ(m, -1) << "two mixed negatives";
          m = c;
          u = extra;
        }
      }
      ASSERT_GE(m, 1);
      EXPECT_LE(m, 4) << "mixed with a negative outside the 4 hardest";
      const double beta = r / (r + u);
      EXPECT_GT(beta, 0);
      EXPECT_LT(beta, 0.5);
    }
  }
  // Logits are q̂·h for the same draws; synthetic points carry no gradient.
  torch::Tensor leaf = query.clone().requires_grad_(true);
  torch::manual_seed(7);
  torch::Tensor logits = mochi_logits(leaf, negatives, opts);
  torch::manual_seed(7);
  torch::Tensor again = mochi_negatives(query, negatives, opts);
  EXPECT_FALSE(again.requires_grad());
  EXPECT_TRUE(torch::allclose(logits, torch::matmul(again, qn)));
}

TEST_F(MiningTest, MoCHiRejectsBadOptions) {
  torch::Tensor q = torch::randn({2, 4}), n = torch::randn({8, 4});
  expect_throws_with<ConfigError>([&] { mochi_negatives(q, n, MoCHiOptions().num_hard(9)); },
                                  "got 9");
  expect_throws_with<ConfigError>(
      [&] { mochi_negatives(q, n, MoCHiOptions().num_hard(1).num_mixed(4)); }, "got 1");
  expect_throws_with<ConfigError>(
      [&] { mochi_negatives(q, n, MoCHiOptions().num_hard(4).num_mixed(-1)); }, "got -1");
  expect_throws_with<c10::Error>([&] { mochi_negatives(q, torch::randn({8, 3})); }, "[8, 3]");
}

}  // namespace
}  // namespace contra::loss
