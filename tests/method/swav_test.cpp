// SwAV: the codes' row and column sums, the loss against a direct computation, prototypes kept on
// the unit sphere and frozen at first, the queue's filling and use, multi-crop smoke, the loss
// falling when one batch is overfitted, and prototypes + queue surviving a checkpoint.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/swav.h"
#include "contra/method/swav.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::SeededTest;
using testing::overfit;
using testing::two_views;
class SwavTest : public SeededTest {};

SwavConfig tiny_swav() {
  SwavConfig c;
  c.encoder = testing::tiny_image_encoder();  // features 16
  c.projection.hidden = 16;
  c.projection.out = 8;
  c.prototypes = 6;
  c.freeze_prototypes_steps = 0;
  return c;
}

// Two 28×28 views and two 12×12 small views.
Batch multi_crop(int64_t n) {
  Batch b = two_views(n);
  b.views.push_back(torch::rand({n, 1, 12, 12}));
  b.views.push_back(torch::rand({n, 1, 12, 12}));
  return b;
}

TEST_F(SwavTest, CodesHaveTheRightRowAndColumnSums) {
  // Each item's code is a distribution (rows sum to 1); the batch is split equally over the
  // prototypes (columns sum to B/K) — exactly after the last column step, to Sinkhorn's tolerance
  // for the rows after enough iterations.
  torch::Tensor scores = torch::randn({12, 4}, torch::kDouble);
  torch::Tensor q = loss::functional::sinkhorn_knopp_global(scores, 0.5, 3);
  EXPECT_TRUE(torch::allclose(q.sum(1), torch::ones({12}, torch::kDouble), 0, 1e-12));
  torch::Tensor cols = loss::functional::sinkhorn_knopp_global(scores, 0.5, 200).sum(0);
  EXPECT_TRUE(torch::allclose(cols, torch::full({4}, 3.0, torch::kDouble), 0, 1e-9)) << cols;
  EXPECT_GE(q.min().item<double>(), 0.0);
}

TEST_F(SwavTest, LossIsTheSwappedPredictionOfTheCodes) {
  Swav m(tiny_swav());
  m.to(torch::kDouble);
  Batch b = multi_crop(8);
  for (auto& v : b.views) v = v.to(torch::kDouble);
  StepOutput out = m.step(b);
  // Direct: codes of views 0 and 1 from their scores, −mean Σ q log softmax(s/τ) over the others.
  torch::NoGradGuard g;  // train mode as in step(): the same batch statistics
  torch::Tensor big = m.encoder.forward(torch::cat({b.views[0], b.views[1]}));
  torch::Tensor small = m.encoder.forward(torch::cat({b.views[2], b.views[3]}));
  torch::Tensor z =
      torch::nn::functional::normalize(m.projector->forward(torch::cat({big, small})),
                                       torch::nn::functional::NormalizeFuncOptions().dim(1));
  torch::Tensor scores = z.mm(m.prototypes->weight.t()).view({4, 8, 6});
  double expected = 0;
  for (int64_t a : {0, 1}) {
    torch::Tensor q = loss::functional::sinkhorn_knopp(scores[a], 0.05, 3);
    for (int64_t v = 0; v < 4; ++v) {
      if (v == a) continue;
      expected -= (q * torch::log_softmax(scores[v] / 0.1, 1)).sum(1).mean().item<double>() / 3;
    }
  }
  expected /= 2;
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-10);
  EXPECT_GT(out.metrics.at("prototypes_used"), 0);
}

TEST_F(SwavTest, PrototypesStayUnitAndFrozenAtFirst) {
  SwavConfig c = tiny_swav();
  c.freeze_prototypes_steps = 1;
  Swav m(c);
  EXPECT_TRUE(torch::allclose(m.prototypes->weight.norm(2, 1), torch::ones({6}), 0, 1e-6));
  torch::optim::SGD opt(m.trainable_parameters(), torch::optim::SGDOptions(0.5).weight_decay(0.1));
  Batch b = two_views(8);
  // Step 0: frozen — no gradient at all, so SGD (weight decay included) leaves them alone.
  torch::Tensor before = m.prototypes->weight.detach().clone();
  opt.zero_grad();
  m.step(b).loss.backward();
  EXPECT_FALSE(m.prototypes->weight.grad().defined());
  opt.step();
  m.after_optimizer_step(0);
  EXPECT_TRUE(m.prototypes->weight.equal(before));
  // Step 1: trained, then renormalised.
  opt.zero_grad();
  m.step(b).loss.backward();
  ASSERT_TRUE(m.prototypes->weight.grad().defined());
  EXPECT_GT(m.prototypes->weight.grad().abs().sum().item<double>(), 0);
  opt.step();
  EXPECT_FALSE(m.prototypes->weight.equal(before));
  m.after_optimizer_step(1);
  EXPECT_TRUE(torch::allclose(m.prototypes->weight.norm(2, 1), torch::ones({6}), 0, 1e-6));
  EXPECT_EQ(m.steps_done.item<int64_t>(), 2);
}

TEST_F(SwavTest, QueueFillsNewestFirstAndJoinsTheCodesWhenFull) {
  SwavConfig c = tiny_swav();
  c.queue_length = 8;
  c.queue_start_step = 1;
  Swav m(c);
  m.to(torch::kDouble);
  m.eval();  // fixed BatchNorm statistics: the same images give the same z in every call
  auto batch = [](int64_t seed) {
    torch::manual_seed(seed);
    Batch b = two_views(4);
    for (auto& v : b.views) v = v.to(torch::kDouble);
    return b;
  };
  auto z_of = [&](const torch::Tensor& x) { return m.features(x, "projection"); };
  // Step 0 is before queue_start_step: nothing is kept.
  m.step(batch(1));
  m.after_optimizer_step(0);
  EXPECT_EQ(m.queue_filled.item<int64_t>(), 0);
  EXPECT_EQ(m.queue.abs().sum().item<double>(), 0);
  Batch b2 = batch(2), b3 = batch(3), b4 = batch(4);
  EXPECT_EQ(m.step(b2).metrics.at("queue_used"), 0);
  EXPECT_EQ(m.queue_filled.item<int64_t>(), 4);
  EXPECT_EQ(m.step(b3).metrics.at("queue_used"), 0);
  EXPECT_EQ(m.queue_filled.item<int64_t>(), 8);
  torch::NoGradGuard g;
  // Newest first: rows 0–3 are b3's view-0 features, rows 4–7 b2's; queue 1 holds the views 1.
  EXPECT_TRUE(torch::allclose(m.queue[0].narrow(0, 0, 4), z_of(b3.views[0]), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(m.queue[0].narrow(0, 4, 4), z_of(b2.views[0]), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(m.queue[1].narrow(0, 0, 4), z_of(b3.views[1]), 0, 1e-12));
  // Full: the next step's codes are Sinkhorn over [queue; batch], its last rows.
  torch::Tensor queue0 = m.queue[0].clone(), queue1 = m.queue[1].clone();
  StepOutput out = m.step(b4);
  EXPECT_EQ(out.metrics.at("queue_used"), 1);
  torch::Tensor w = m.prototypes->weight;
  torch::Tensor s0 = z_of(b4.views[0]).mm(w.t()), s1 = z_of(b4.views[1]).mm(w.t());
  torch::Tensor q0 =
      loss::functional::sinkhorn_knopp(torch::cat({queue0.mm(w.t()), s0}), 0.05, 3).narrow(0, 8, 4);
  torch::Tensor q1 =
      loss::functional::sinkhorn_knopp(torch::cat({queue1.mm(w.t()), s1}), 0.05, 3).narrow(0, 8, 4);
  double expected = -((q0 * torch::log_softmax(s1 / 0.1, 1)).sum(1).mean() +
                      (q1 * torch::log_softmax(s0 / 0.1, 1)).sum(1).mean())
                         .item<double>() /
                    2;
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-10);
  // Without the queue the codes, and so the loss, would differ.
  torch::Tensor p0 = loss::functional::sinkhorn_knopp(s0, 0.05, 3);
  torch::Tensor p1 = loss::functional::sinkhorn_knopp(s1, 0.05, 3);
  double without = -((p0 * torch::log_softmax(s1 / 0.1, 1)).sum(1).mean() +
                     (p1 * torch::log_softmax(s0 / 0.1, 1)).sum(1).mean())
                        .item<double>() /
                   2;
  EXPECT_GT(std::abs(without - expected), 1e-6);
}

TEST_F(SwavTest, MultiCropTwoStepsRun) {
  Swav m(tiny_swav());
  torch::optim::SGD opt(m.trainable_parameters(), 0.1);
  for (int step = 0; step < 2; ++step) {
    StepOutput out = m.step(multi_crop(6));
    EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
    opt.zero_grad();
    out.loss.backward();
    opt.step();
    m.after_optimizer_step(step);
  }
  EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "encoder").sizes(),
            torch::IntArrayRef({3, 16}));
  EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "projection").sizes(),
            torch::IntArrayRef({3, 8}));
}

TEST_F(SwavTest, LossFallsWhenOverfittingOneBatch) {
  Swav m(tiny_swav());
  auto [first, last] = overfit(m, two_views(16), 60, 3e-3);
  EXPECT_LT(last, first - 0.1) << "first " << first << " last " << last;
}

TEST_F(SwavTest, CheckpointKeepsPrototypesQueueAndStepCount) {
  SwavConfig c = tiny_swav();
  c.queue_length = 8;
  Swav m(c);
  m.step(two_views(4));
  m.after_optimizer_step(0);
  Swav back(c);
  testing::checkpoint_roundtrip(m, back);
  EXPECT_TRUE(back.prototypes->weight.equal(m.prototypes->weight));
  EXPECT_TRUE(back.queue.equal(m.queue));
  EXPECT_GT(back.queue.abs().sum().item<double>(), 0);
  EXPECT_EQ(back.queue_filled.item<int64_t>(), 4);
  EXPECT_EQ(back.steps_done.item<int64_t>(), 1);
}

TEST_F(SwavTest, ConfigErrorsNameTheKey) {
  SwavConfig c = tiny_swav();
  c.prototypes = 1;
  EXPECT_NE(config_error([&] { Swav m(c); }).find("prototypes"), std::string::npos);
  c = tiny_swav();
  c.epsilon = 0;
  EXPECT_NE(config_error([&] { Swav m(c); }).find("epsilon"), std::string::npos);
  c = tiny_swav();
  c.crops_for_assign = {0, 0};
  EXPECT_NE(config_error([&] { Swav m(c); }).find("crops_for_assign"), std::string::npos);
  c = tiny_swav();
  c.queue_length = 100;
  Swav q(c);
  std::string e = config_error([&] { q.check_batch(16, 2, 0, 2); });
  EXPECT_NE(e.find("method.queue_length"), std::string::npos) << e;
  EXPECT_NE(e.find("global batch 32"), std::string::npos) << e;
  Swav m(tiny_swav());
  EXPECT_NE(config_error([&] { m.check_batch(8, 1, 0, 1); }).find("augment.views"),
            std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(8, 1, 4, 1); }).find("crops_for_assign"),
            std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(1, 2, 0, 1); }).find("train.batch_size"),
            std::string::npos);
  m.check_batch(8, 2, 6, 1);  // the paper's 2 + 6 crops
}

}  // namespace
}  // namespace contra::method
