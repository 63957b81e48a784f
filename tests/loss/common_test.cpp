#include "contra/loss/common.h"

#include <cmath>
#include <limits>

#include "tests/loss/loss_testing.h"

namespace contra::loss {
namespace {

using namespace contra::testing;

class LossCommonTest : public SeededTest {};

TEST_F(LossCommonTest, LogSumExpMatchesTorchAndFiniteDifferences) {
  torch::Tensor x = randn_double({4, 6}) * 10;
  for (int64_t dim : {0, 1, -1}) {
    EXPECT_TRUE(torch::allclose(logsumexp(x, dim), torch::logsumexp(x, dim), 1e-12, 1e-12));
    expect_gradcheck(
        [&](const std::vector<torch::Tensor>& in) { return logsumexp(in[0], dim).sum(); },
        {randn_double({3, 5})});
  }
  // −inf entries contribute nothing; a row of −inf gives −inf without NaN in the others.
  const double inf = std::numeric_limits<double>::infinity();
  torch::Tensor masked = torch::tensor({{0.0, -inf, 0.0}, {-inf, -inf, -inf}}, torch::kDouble);
  torch::Tensor out = logsumexp(masked, 1);
  EXPECT_NEAR(out[0].item<double>(), std::log(2.0), 1e-15);
  EXPECT_EQ(out[1].item<double>(), -inf);
  torch::Tensor leaf = masked.narrow(0, 0, 1).clone().requires_grad_(true);
  logsumexp(leaf, 1).sum().backward();
  EXPECT_TRUE(torch::allclose(leaf.grad(), torch::tensor({{0.5, 0.0, 0.5}}, torch::kDouble)));
  // Large values do not overflow.
  EXPECT_NEAR(logsumexp(torch::tensor({{1e4, 1e4}}, torch::kFloat), 1).item<double>(),
              1e4 + std::log(2.0), 1e-2);
}

TEST_F(LossCommonTest, DistancesMatchLoops) {
  torch::Tensor a = randn_double({5, 3}), b = randn_double({4, 3});
  for (auto d : {Distance::kEuclidean, Distance::kSquaredEuclidean, Distance::kCosine}) {
    torch::Tensor m = pairwise_distance(a, b, d);
    ASSERT_EQ(m.sizes(), (std::vector<int64_t>{5, 4}));
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t j = 0; j < 4; ++j) {
        const double sq = (a[i] - b[j]).pow(2).sum().item<double>();
        const double cos = (a[i].dot(b[j]) / (a[i].norm() * b[j].norm())).item<double>();
        const double expected = d == Distance::kEuclidean          ? std::sqrt(sq)
                                : d == Distance::kSquaredEuclidean ? sq
                                                                   : 1 - cos;
        EXPECT_NEAR(m[i][j].item<double>(), expected, 1e-12) << to_string(d);
      }
    }
    torch::Tensor p = paired_distance(a.narrow(0, 0, 4), b, d);
    for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(p[i].item<double>(), m[i][i].item<double>(), 1e-12);
  }
}

TEST_F(LossCommonTest, ZeroVectorsAndIdenticalRowsStayFinite) {
  torch::Tensor z = torch::zeros({3, 4}, torch::requires_grad());
  torch::Tensor n = l2_normalize(z);
  EXPECT_TRUE(torch::equal(n, torch::zeros({3, 4})));
  n.sum().backward();
  EXPECT_TRUE(torch::isfinite(z.grad()).all().item<bool>());
  for (auto d : {Distance::kEuclidean, Distance::kSquaredEuclidean, Distance::kCosine}) {
    torch::Tensor x = torch::ones({3, 4}, torch::requires_grad());
    (pairwise_distance(x, x, d).sum() + paired_distance(x, x, d).sum()).backward();
    EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>()) << to_string(d);
  }
}

TEST_F(LossCommonTest, ParsesDistanceNames) {
  for (auto d : {Distance::kEuclidean, Distance::kSquaredEuclidean, Distance::kCosine}) {
    EXPECT_EQ(parse_distance(to_string(d)), d);
  }
  expect_throws_with<ConfigError>([] { parse_distance("l3", "method.loss.distance"); },
                                  "method.loss.distance: unknown distance (got 'l3'");
}

TEST_F(LossCommonTest, LabelMasks) {
  torch::Tensor labels = torch::tensor({1, 2, 1});
  EXPECT_TRUE(torch::equal(
      same_label_mask(labels),
      torch::tensor({{true, false, true}, {false, true, false}, {true, false, true}})));
  EXPECT_TRUE(torch::equal(
      positive_mask(labels),
      torch::tensor({{false, false, true}, {false, false, false}, {true, false, false}})));
  EXPECT_TRUE(torch::equal(negative_mask(labels), same_label_mask(labels).logical_not()));
  EXPECT_EQ(num_classes(labels), 2);
}

}  // namespace
}  // namespace contra::loss
