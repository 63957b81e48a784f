#include "contra/eval/linear_probe.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::eval {
namespace {

using contra::testing::SeededTest;
class LinearProbeTest : public SeededTest {};

/// Gaussian clusters around well separated class means, with a large offset/scale per feature
/// (standardisation must cope).
std::pair<torch::Tensor, torch::Tensor> clusters(int64_t n, int64_t classes, int64_t dim) {
  auto y = torch::randint(0, classes, {n}, torch::kLong);
  auto centres = torch::randn({classes, dim}) * 4;
  auto x = centres.index_select(0, y) + torch::randn({n, dim});
  return {x * 50 + 1000, y};
}

TEST_F(LinearProbeTest, SeparableFeaturesReachAlmostPerfectAccuracy) {
  torch::manual_seed(1);
  auto [x, y] = clusters(600, 5, 12);
  auto r = linear_probe(x.narrow(0, 0, 300), y.narrow(0, 0, 300), x.narrow(0, 300, 300),
                        y.narrow(0, 300, 300), LinearProbeOptions().epochs(200).lr(0.05));
  EXPECT_GT(r.train_accuracy, 0.99);
  EXPECT_GT(r.test_accuracy, 0.97);
  EXPECT_EQ(r.classes, 5);
  EXPECT_EQ(r.dim, 12);
  EXPECT_EQ(r.train_size, 300);
  EXPECT_LT(r.chance_accuracy, 0.5);
  EXPECT_LT(r.train_loss, 0.1);
}

TEST_F(LinearProbeTest, LbfgsAndMinibatchAdamAlsoSeparate) {
  auto [x, y] = clusters(400, 3, 8);
  auto train_x = x.narrow(0, 0, 200), train_y = y.narrow(0, 0, 200);
  auto test_x = x.narrow(0, 200, 200), test_y = y.narrow(0, 200, 200);
  auto lbfgs =
      linear_probe(train_x, train_y, test_x, test_y,
                   LinearProbeOptions().optimizer("lbfgs").lr(1).epochs(50).weight_decay(1e-3));
  EXPECT_GT(lbfgs.test_accuracy, 0.97);
  auto mini = linear_probe(train_x, train_y, test_x, test_y,
                           LinearProbeOptions().batch_size(32).epochs(30).lr(0.01).seed(3));
  EXPECT_GT(mini.test_accuracy, 0.97);
}

TEST_F(LinearProbeTest, RandomLabelsGiveChanceOnTest) {
  auto x = torch::randn({2100, 40});
  auto y = torch::randint(0, 4, {2100}, torch::kLong);
  auto r = linear_probe(x.narrow(0, 0, 100), y.narrow(0, 0, 100), x.narrow(0, 100, 2000),
                        y.narrow(0, 100, 2000), LinearProbeOptions().epochs(300).lr(0.05));
  EXPECT_GT(r.train_accuracy, 0.6);          // it fits noise on the small training set...
  EXPECT_NEAR(r.test_accuracy, 0.25, 0.05);  // ...and that does not transfer
}

TEST_F(LinearProbeTest, HiddenLayerSolvesXorWhereLinearCannot) {
  auto x = torch::rand({1200, 2}) * 2 - 1;
  auto y = ((x.select(1, 0) > 0) ^ (x.select(1, 1) > 0)).to(torch::kLong);
  auto tx = x.narrow(0, 0, 800), ty = y.narrow(0, 0, 800);
  auto vx = x.narrow(0, 800, 400), vy = y.narrow(0, 800, 400);
  auto linear = linear_probe(tx, ty, vx, vy, LinearProbeOptions().epochs(200).lr(0.05));
  auto mlp = linear_probe(tx, ty, vx, vy, LinearProbeOptions().epochs(400).lr(0.02).hidden(32));
  EXPECT_LT(linear.test_accuracy, 0.7);
  EXPECT_GT(mlp.test_accuracy, 0.9);
  // Same seed → same result.
  auto again = linear_probe(tx, ty, vx, vy, LinearProbeOptions().epochs(400).lr(0.02).hidden(32));
  EXPECT_EQ(again.test_accuracy, mlp.test_accuracy);
}

TEST_F(LinearProbeTest, BadInputsThrow) {
  auto x = torch::randn({10, 3});
  auto y = torch::randint(0, 2, {10}, torch::kLong);
  EXPECT_THROW(linear_probe(x, y, x, y, LinearProbeOptions().epochs(0)), ConfigError);
  EXPECT_THROW(linear_probe(x, y, x, y, LinearProbeOptions().lr(-1)), ConfigError);
  EXPECT_THROW(linear_probe(x, y, x, y, LinearProbeOptions().optimizer("sgd")), ConfigError);
  EXPECT_THROW(linear_probe(x, y.narrow(0, 0, 5), x, y), DataError);
  EXPECT_THROW(linear_probe(x, y, torch::randn({10, 4}), y), DataError);
  auto bad = x.clone();
  bad[0][0] = std::nan("");
  EXPECT_THROW(linear_probe(bad, y, x, y), DataError);
  EXPECT_THROW(linear_probe(x, y - 5, x, y), DataError);
}

}  // namespace
}  // namespace contra::eval
