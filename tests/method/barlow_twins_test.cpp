// Barlow Twins the method: the λ rule, a 2-step smoke run, the loss falling when one batch is
// overfitted, the global loss being the plain one in one process, and config errors.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/barlow_twins.h"
#include "contra/method/barlow_twins.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::SeededTest;
using testing::overfit;
using testing::two_views;
class BarlowTwinsMethodTest : public SeededTest {};

BarlowTwinsConfig tiny() {
  BarlowTwinsConfig c;
  c.encoder = testing::tiny_image_encoder();  // features 16
  c.projection.hidden = 32;
  c.projection.out = 32;
  c.projection.layers = 3;
  return c;
}

TEST_F(BarlowTwinsMethodTest, LambdaZeroScalesThePapersValueToTheWidth) {
  BarlowTwinsConfig c = tiny();
  EXPECT_DOUBLE_EQ(c.resolved_lambda(), 0.0051 * 8192 / 32);
  c.projection.out = 8192;
  EXPECT_DOUBLE_EQ(c.resolved_lambda(), 0.0051);
  c.lambd = 0.01;
  EXPECT_DOUBLE_EQ(c.resolved_lambda(), 0.01);
}

TEST_F(BarlowTwinsMethodTest, TwoStepsRunWithTheProbe) {
  BarlowTwinsConfig c = tiny();
  c.online_probe_classes = 10;
  BarlowTwins m(c);
  torch::optim::Adam opt(m.parameters(), 1e-3);
  for (int step = 0; step < 2; ++step) {
    Batch b = two_views(8);
    b.labels = torch::arange(8) % 10;
    StepOutput out = m.step(b);
    ASSERT_TRUE(std::isfinite(out.loss.item<double>()));
    EXPECT_TRUE(out.metrics.count("barlow_loss"));
    EXPECT_TRUE(out.metrics.count("online_acc"));
    opt.zero_grad();
    out.loss.backward();
    opt.step();
  }
  EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "encoder").sizes(),
            (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "projection").sizes(),
            (std::vector<int64_t>{3, 32}));
  EXPECT_NE(config_error([&] {
              m.features(torch::rand({1, 1, 28, 28}), "nope");
            }).find("barlow"),
            std::string::npos);
}

TEST_F(BarlowTwinsMethodTest, LossFallsWhenOverfittingOneBatch) {
  BarlowTwins m(tiny());
  auto [first, last] = overfit(m, two_views(32), 40, 3e-3);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST_F(BarlowTwinsMethodTest, GlobalLossIsThePlainOneInOneProcess) {
  torch::Tensor z1 = torch::randn({16, 8}), z2 = torch::randn({16, 8});
  auto o = loss::BarlowTwinsOptions().lambd(0.02);
  EXPECT_TRUE(torch::allclose(loss::functional::barlow_twins_global(z1, z2, o),
                              loss::functional::barlow_twins(z1, z2, o)));
}

TEST_F(BarlowTwinsMethodTest, ConfigErrorsNameTheKey) {
  BarlowTwinsConfig c = tiny();
  c.lambd = -1;
  EXPECT_NE(config_error([&] { BarlowTwins m(c); }).find("lambd"), std::string::npos);
  BarlowTwins m(tiny());
  EXPECT_NE(config_error([&] { m.check_batch(8, 3); }).find("augment.views"), std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(1, 2); }).find("train.batch_size"), std::string::npos);
}

}  // namespace
}  // namespace contra::method
