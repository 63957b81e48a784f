// BYOL: the EMA rule and τ schedule exactly, the target's isolation from the optimizer, a 2-step
// smoke run, the loss falling when one batch is overfitted, and the target surviving a checkpoint.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/method/byol.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::SeededTest;
using testing::overfit;
using testing::two_views;
class ByolTest : public SeededTest {};

ByolConfig tiny_byol() {
  ByolConfig c;
  c.encoder = testing::tiny_image_encoder();  // features 16
  c.projection.hidden = 16;
  c.projection.out = 8;
  c.predictor.hidden = 16;
  c.predictor.out = 8;
  c.tau_base = 0.9;
  return c;
}

std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone());
  return out;
}

TEST_F(ByolTest, TargetStartsAsACopyOutsideTheOptimizer) {
  Byol m(tiny_byol());
  auto online = m.encoder.ptr()->parameters(), target = m.target_encoder.ptr()->parameters();
  ASSERT_EQ(online.size(), target.size());
  for (size_t i = 0; i < online.size(); ++i) {
    EXPECT_TRUE(online[i].equal(target[i]));
    EXPECT_FALSE(target[i].requires_grad());
    EXPECT_NE(online[i].data_ptr(), target[i].data_ptr());
  }
  // The optimizer sees encoder, projector and predictor only.
  int64_t expected = 0;
  for (auto* module : {m.encoder.ptr().get(), static_cast<torch::nn::Module*>(m.projector.get()),
                       static_cast<torch::nn::Module*>(m.predictor.get())}) {
    expected += static_cast<int64_t>(module->parameters().size());
  }
  EXPECT_EQ(static_cast<int64_t>(m.trainable_parameters().size()), expected);
}

TEST_F(ByolTest, TauFollowsTheCosineSchedule) {
  Byol m(tiny_byol());
  m.set_total_steps(100);
  EXPECT_DOUBLE_EQ(m.tau(0), 0.9);
  EXPECT_NEAR(m.tau(50), 1 - 0.1 * (std::cos(M_PI / 2) + 1) / 2, 1e-15);
  EXPECT_NEAR(m.tau(25), 1 - 0.1 * (std::cos(M_PI / 4) + 1) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(m.tau(100), 1.0);
  EXPECT_DOUBLE_EQ(m.tau(1000), 1.0);  // past K: the target stays
  for (int k = 1; k <= 100; ++k) EXPECT_GE(m.tau(k), m.tau(k - 1));
  // A config's total_steps wins over the recipe's.
  ByolConfig c = tiny_byol();
  c.total_steps = 10;
  Byol fixed(c);
  fixed.set_total_steps(100);
  EXPECT_DOUBLE_EQ(fixed.tau(10), 1.0);
}

TEST_F(ByolTest, EmaUpdateIsExact) {
  Byol m(tiny_byol());
  m.set_total_steps(10);
  {
    torch::NoGradGuard g;
    for (auto& p : m.encoder.ptr()->parameters()) p.add_(torch::randn_like(p));
    for (auto& p : m.projector->parameters()) p.add_(torch::randn_like(p));
  }
  auto online = snapshot(m.encoder.ptr()->parameters());
  auto before = snapshot(m.target_encoder.ptr()->parameters());
  auto head_online = snapshot(m.projector->parameters());
  auto head_before = snapshot(m.target_projector->parameters());
  m.after_optimizer_step(3);
  const double t = m.tau(3);
  auto after = m.target_encoder.ptr()->parameters();
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::allclose(after[i], t * before[i] + (1 - t) * online[i], 1e-6, 1e-7));
  }
  auto head_after = m.target_projector->parameters();
  for (size_t i = 0; i < head_after.size(); ++i) {
    EXPECT_TRUE(
        torch::allclose(head_after[i], t * head_before[i] + (1 - t) * head_online[i], 1e-6, 1e-7));
  }
  EXPECT_EQ(m.steps_done.item<int64_t>(), 4);
}

TEST_F(ByolTest, TwoStepsRunAndTheTargetGetsNoGradient) {
  ByolConfig c = tiny_byol();
  c.online_probe_classes = 10;
  Byol m(c);
  m.set_total_steps(2);
  torch::optim::Adam opt(m.trainable_parameters(), 1e-3);
  for (int64_t step = 0; step < 2; ++step) {
    Batch b = two_views(8);
    b.labels = torch::arange(8) % 10;
    StepOutput out = m.step(b);
    ASSERT_TRUE(std::isfinite(out.loss.item<double>()));
    for (const char* key : {"byol_loss", "pos_cos", "tau", "online_acc"}) {
      EXPECT_TRUE(out.metrics.count(key)) << key;
    }
    EXPECT_LE(out.metrics["byol_loss"], 8.0);  // each term 2 − 2cos ∈ [0, 4]
    opt.zero_grad();
    out.loss.backward();
    for (const auto& p : m.target_encoder.ptr()->parameters()) EXPECT_FALSE(p.grad().defined());
    opt.step();
    m.after_optimizer_step(step);
  }
  EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "encoder").sizes(),
            (std::vector<int64_t>{3, 16}));
  EXPECT_NE(config_error([&] {
              m.features(torch::rand({1, 1, 28, 28}), "nope");
            }).find("byol"),
            std::string::npos);
}

TEST_F(ByolTest, LossFallsWhenOverfittingOneBatch) {
  Byol m(tiny_byol());
  m.set_total_steps(40);
  auto [first, last] = overfit(m, two_views(16), 40, 3e-3);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST_F(ByolTest, CheckpointKeepsTargetAndStepCount) {
  Byol m(tiny_byol());
  m.set_total_steps(10);
  {
    torch::NoGradGuard g;
    for (auto& p : m.encoder.ptr()->parameters()) p.add_(1.0);
  }
  m.after_optimizer_step(5);
  Byol back(tiny_byol());
  testing::checkpoint_roundtrip(m, back);
  auto a = m.target_encoder.ptr()->parameters(), b = back.target_encoder.ptr()->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i]));
  EXPECT_EQ(back.steps_done.item<int64_t>(), 6);
}

TEST_F(ByolTest, ConfigErrorsNameTheKey) {
  ByolConfig c = tiny_byol();
  c.predictor.out = 4;
  EXPECT_NE(config_error([&] { Byol m(c); }).find("predictor.out"), std::string::npos);
  c = tiny_byol();
  c.tau_base = 1.5;
  EXPECT_NE(config_error([&] { Byol m(c); }).find("tau_base"), std::string::npos);
  Byol m(tiny_byol());
  EXPECT_NE(config_error([&] { m.check_batch(8, 3); }).find("augment.views"), std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(1, 2); }).find("train.batch_size"), std::string::npos);
}

}  // namespace
}  // namespace contra::method
