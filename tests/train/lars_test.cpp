#include "contra/train/lars.h"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/train/train_config.h"
#include "contra/train/trainer.h"

namespace contra::train {
namespace {

// A leaf parameter from doubles (float64, so the hand computation below compares tightly).
torch::Tensor param(const std::vector<double>& values, std::vector<int64_t> shape) {
  return torch::tensor(values, torch::kFloat64).view(shape).clone().requires_grad_(true);
}

void set_grad(torch::Tensor& p, const std::vector<double>& values) {
  p.mutable_grad() = torch::tensor(values, torch::kFloat64).view(p.sizes()).clone();
}

std::vector<double> values(const torch::Tensor& t) {
  auto c = t.detach().contiguous().to(torch::kFloat64);
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

double l2(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

void expect_near(const torch::Tensor& actual, const std::vector<double>& expected,
                 const std::string& what) {
  auto got = values(actual);
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-12) << what << i;
}

// The reference LARS step written out on plain doubles: returns the new parameter values and
// updates `v` (the momentum buffer) in place.
std::vector<double> reference_step(const std::vector<double>& p, const std::vector<double>& g,
                                   std::vector<double>& v, double lr, double momentum, double wd,
                                   double eta, bool adapt) {
  std::vector<double> d = g;
  double ratio = 1.0;
  if (adapt) {
    for (size_t i = 0; i < d.size(); ++i) d[i] += wd * p[i];
    double pn = l2(p), gn = l2(d);
    if (pn > 0 && gn > 0) ratio = eta * pn / gn;
  }
  std::vector<double> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    v[i] = momentum * v[i] + lr * ratio * d[i];
    out[i] = p[i] - v[i];
  }
  return out;
}

TEST(Lars, TwoStepsMatchHandComputation) {
  // Weight 2×2 (adapted, decayed) and a bias (excluded): lr 0.5, μ 0.9, wd 0.1, η 0.01.
  auto w = param({1, 2, 3, 4}, {2, 2});
  auto b = param({1, -2}, {2});
  Lars opt({w, b}, LarsOptions(0.5).momentum(0.9).weight_decay(0.1).eta(0.01));
  const std::vector<double> gw = {0.5, -1, 0.25, 2}, gb = {0.5, 0.25};

  // Step 1 by hand, fully written out for the weight: g' = g + 0.1·w = (0.6, -0.8, 0.55, 2.4),
  // ‖w‖ = √30, ‖g'‖ = √7.0625, r = 0.01·√30/√7.0625, v = 0.5·r·g', w ← w − v.
  const double r1 = 0.01 * std::sqrt(30.0) / std::sqrt(7.0625);
  const std::vector<double> g1 = {0.6, -0.8, 0.55, 2.4};
  std::vector<double> w1(4), vw(4);
  const std::vector<double> w0 = {1, 2, 3, 4};
  for (int i = 0; i < 4; ++i) {
    vw[i] = 0.5 * r1 * g1[i];
    w1[i] = w0[i] - vw[i];
  }
  // The bias: plain momentum SGD, no decay: v = 0.5·g.
  const std::vector<double> b1 = {1 - 0.5 * 0.5, -2 - 0.5 * 0.25};
  std::vector<double> vb = {0.5 * 0.5, 0.5 * 0.25};

  set_grad(w, gw);
  set_grad(b, gb);
  opt.step();
  expect_near(w, w1, "w after step 1 ");
  expect_near(b, b1, "b after step 1 ");
  expect_near(opt.momentum_buffer(w), vw, "v(w) after step 1 ");

  // Step 2 (same gradients): v ← 0.9·v + 0.5·r₂·g'₂ with r₂ from the moved weight.
  auto w2 = reference_step(w1, gw, vw, 0.5, 0.9, 0.1, 0.01, /*adapt=*/true);
  auto b2 = reference_step(b1, gb, vb, 0.5, 0.9, 0.1, 0.01, /*adapt=*/false);
  set_grad(w, gw);
  set_grad(b, gb);
  opt.step();
  expect_near(w, w2, "w after step 2 ");
  expect_near(b, b2, "b after step 2 ");
  // Sanity of the reference itself: the trust ratio shrinks the weight's step far below lr·g.
  EXPECT_LT(std::abs(w1[3] - w0[3]), 0.1 * 0.5 * 2.4);
}

TEST(Lars, BiasAndNormParamsExcludedOrAdapted) {
  const std::vector<double> b0 = {3, -4}, gb = {1, 1};
  const double lr = 0.2, mu = 0.9, wd = 0.5, eta = 0.1;
  for (bool exclude : {true, false}) {
    auto b = param(b0, {2});
    auto gamma = param({1, 1, 1}, {3});  // a BatchNorm γ: also dim 1
    Lars opt({b, gamma},
             LarsOptions(lr).momentum(mu).weight_decay(wd).eta(eta).exclude_bias_and_norm(exclude));
    std::vector<double> v(2, 0.0), vg(3, 0.0);
    std::vector<double> expected = b0, expected_gamma = {1, 1, 1};
    for (int step = 0; step < 3; ++step) {
      set_grad(b, gb);
      set_grad(gamma, {0.5, -0.5, 1});
      opt.step();
      expected = reference_step(expected, gb, v, lr, mu, wd, eta, /*adapt=*/!exclude);
      expected_gamma =
          reference_step(expected_gamma, {0.5, -0.5, 1}, vg, lr, mu, wd, eta, /*adapt=*/!exclude);
      expect_near(b, expected, exclude ? "excluded bias " : "adapted bias ");
      expect_near(gamma, expected_gamma, exclude ? "excluded gamma " : "adapted gamma ");
    }
  }
  // Excluded, first step written out: b − lr·g, no decay.
  auto b = param(b0, {2});
  Lars opt({b}, LarsOptions(lr).momentum(mu).weight_decay(wd).eta(eta));
  set_grad(b, gb);
  opt.step();
  expect_near(b, {3 - 0.2, -4 - 0.2}, "plain SGD ");
  // Not excluded, first step written out: g' = (1 + 1.5, 1 − 2) = (2.5, −1), ‖b‖ = 5,
  // ‖g'‖ = √7.25, r = 0.1·5/√7.25.
  auto a = param(b0, {2});
  Lars adapted({a},
               LarsOptions(lr).momentum(mu).weight_decay(wd).eta(eta).exclude_bias_and_norm(false));
  set_grad(a, gb);
  adapted.step();
  const double r = 0.1 * 5 / std::sqrt(7.25);
  expect_near(a, {3 - lr * r * 2.5, -4 + lr * r * 1.0}, "adapted ");
}

TEST(Lars, ZeroNormGivesRatioOne) {
  // ‖p‖ = 0: r = 1, so the step is lr·(g + wd·0) = lr·g (and not NaN or 0).
  auto w = param({0, 0, 0, 0}, {2, 2});
  Lars opt({w}, LarsOptions(0.1).momentum(0.9).weight_decay(0.01).eta(0.001));
  set_grad(w, {1, -2, 3, 0});
  opt.step();
  expect_near(w, {-0.1, 0.2, -0.3, 0}, "zero param ");
  // ‖g‖ = 0 (and no decay): r = 1, the step is 0; the buffer carries the previous momentum.
  auto u = param({1, 2, 2, 0}, {2, 2});
  Lars plain({u}, LarsOptions(0.1).momentum(0.5).eta(0.001));
  set_grad(u, {0, 0, 0, 0});
  plain.step();
  expect_near(u, {1, 2, 2, 0}, "zero grad ");
  expect_near(plain.momentum_buffer(u), {0, 0, 0, 0}, "zero grad buffer ");
  for (double x : values(w)) EXPECT_TRUE(std::isfinite(x));
}

// Gradients as a deterministic function of the parameter and the step.
void fake_backward(std::vector<torch::Tensor>& params, int step) {
  for (auto& p : params) {
    torch::NoGradGuard guard;
    p.mutable_grad() = (p.detach() * (0.3 + 0.1 * step)).sin() + 0.05 * step;
  }
}

std::vector<torch::Tensor> fresh_params() {
  return {param({0.5, -1, 2, 0.25, 1.5, -0.75}, {2, 3}), param({0.1, -0.2}, {2})};
}

TEST(Lars, MomentumBufferSurvivesSaveAndLoad) {
  const auto options = LarsOptions(0.4).momentum(0.9).weight_decay(1e-3).eta(0.05);
  auto continuous = fresh_params();
  Lars a(continuous, options);
  auto saved = fresh_params();
  Lars b(saved, options);
  for (int step = 0; step < 3; ++step) {
    fake_backward(continuous, step);
    a.step();
    fake_backward(saved, step);
    b.step();
  }
  std::stringstream bytes;
  {
    torch::serialize::OutputArchive archive;
    b.save(archive);
    archive.save_to(bytes);
  }
  // New parameter tensors (new TensorImpl keys) with the saved values and a new optimizer, as on a
  // resume: load restores the buffers (the options come from the constructor, as with torch's own
  // optimizers).
  std::vector<torch::Tensor> resumed, forgetful;
  for (auto& p : saved) {
    resumed.push_back(p.detach().clone().requires_grad_(true));
    forgetful.push_back(p.detach().clone().requires_grad_(true));
  }
  Lars c(resumed, options);
  EXPECT_FALSE(c.momentum_buffer(resumed[0]).defined());
  {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    c.load(archive);
  }
  for (size_t i = 0; i < resumed.size(); ++i) {
    ASSERT_TRUE(c.momentum_buffer(resumed[i]).defined()) << i;
    EXPECT_TRUE(torch::equal(c.momentum_buffer(resumed[i]), a.momentum_buffer(continuous[i]))) << i;
  }
  Lars d(forgetful, options);  // same options, no buffers: must drift from the continuous run
  for (int step = 3; step < 6; ++step) {
    fake_backward(continuous, step);
    a.step();
    fake_backward(resumed, step);
    c.step();
    fake_backward(forgetful, step);
    d.step();
  }
  for (size_t i = 0; i < continuous.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed[i], continuous[i])) << i;
    EXPECT_FALSE(torch::allclose(forgetful[i], continuous[i])) << i;
  }
}

TEST(Lars, SetLearningRateAndMakeOptimizer) {
  OptimConfig config;
  config.name = "lars";
  config.lr = 0.3;
  config.momentum = 0.8;
  config.weight_decay = 1e-6;
  config.lars_eta = 0.002;
  config.lars_exclude_bias_and_norm = false;
  auto b = param({1, 2}, {2});
  auto opt = make_optimizer(config, {b});
  auto* lars = dynamic_cast<Lars*>(opt.get());
  ASSERT_NE(lars, nullptr);
  auto& o = static_cast<LarsOptions&>(opt->param_groups()[0].options());
  EXPECT_DOUBLE_EQ(o.lr(), 0.3);
  EXPECT_DOUBLE_EQ(o.momentum(), 0.8);
  EXPECT_DOUBLE_EQ(o.weight_decay(), 1e-6);
  EXPECT_DOUBLE_EQ(o.eta(), 0.002);
  EXPECT_FALSE(o.exclude_bias_and_norm());
  set_learning_rate(*opt, 0.05);
  EXPECT_DOUBLE_EQ(o.lr(), 0.05);
  // The step uses the new lr: an excluded bias moves by exactly lr·g.
  auto c = param({1, 2}, {2});
  Lars plain({c}, LarsOptions(1.0));
  set_learning_rate(plain, 0.25);
  set_grad(c, {1, -1});
  plain.step();
  expect_near(c, {0.75, 2.25}, "after set_learning_rate ");
}

TEST(Lars, ConfigValidation) {
  OptimConfig ok;
  ok.name = "lars";
  EXPECT_NO_THROW(ok.validate());
  EXPECT_DOUBLE_EQ(ok.lars_eta, 0.001);
  EXPECT_TRUE(ok.lars_exclude_bias_and_norm);
  for (double eta : {0.0, -0.01, std::nan("")}) {
    OptimConfig bad = ok;
    bad.lars_eta = eta;
    try {
      bad.validate();
      ADD_FAILURE() << "lars_eta " << eta << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("lars_eta"), std::string::npos) << e.what();
    }
  }
  OptimConfig unknown;
  unknown.name = "lamb";
  try {
    unknown.validate();
    ADD_FAILURE() << "unknown optimizer accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lars"), std::string::npos) << e.what();
  }
  auto p = param({1}, {1});
  EXPECT_THROW(Lars({p}, LarsOptions(0.1).eta(0)), ConfigError);
  EXPECT_THROW(Lars({p}, LarsOptions(-0.1)), ConfigError);
  EXPECT_THROW(Lars({p}, LarsOptions(0.1).weight_decay(-1)), ConfigError);
}

}  // namespace
}  // namespace contra::train
