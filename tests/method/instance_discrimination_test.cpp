// Instance discrimination the method (Wu et al. 2018): a 2-step smoke run, the loss falling when
// one batch is overfitted, the bank's momentum rule against a hand computation, the NCE loss
// against eq. 5 written out, the softmax against a cross-entropy over the whole bank, the seeded
// noise, checkpoints restoring the bank and Z, and the errors.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "tests/method/method_fixtures.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::config_error;
using contra::testing::expect_data_error;
using contra::testing::SeededTest;
using contra::testing::TempDir;
using testing::overfit;
class InstanceDiscriminationTest : public SeededTest {};

constexpr int64_t kBank = 40;

InstanceDiscriminationConfig tiny(const std::string& loss = "nce") {
  InstanceDiscriminationConfig c;
  c.encoder = testing::tiny_image_encoder();  // features 16
  c.embedding = 8;
  c.negatives = 16;
  c.loss = loss;
  c.bank_size = kBank;
  return c;
}

Batch items(const std::vector<int64_t>& index, int64_t side = 28) {
  Batch b;
  b.input = torch::rand({static_cast<int64_t>(index.size()), 1, side, side});
  b.index = torch::tensor(index, torch::kLong);
  b.labels = b.index % 10;
  return b;
}

torch::Tensor unit_rows(const torch::Tensor& x) { return x / x.norm(2, 1, true); }

TEST_F(InstanceDiscriminationTest, TwoStepsRunWithTheProbe) {
  for (const std::string loss : {"nce", "softmax"}) {
    InstanceDiscriminationConfig c = tiny(loss);
    c.online_probe_classes = 10;
    InstanceDiscrimination m(c);
    torch::optim::Adam opt(m.trainable_parameters(), 1e-3);
    for (int step = 0; step < 2; ++step) {
      StepOutput out = m.step(items({0, 5, 9, 13, 21, 30, 38, 39}));
      ASSERT_TRUE(std::isfinite(out.loss.item<double>())) << loss;
      EXPECT_TRUE(out.metrics.count("instance_loss"));
      EXPECT_TRUE(out.metrics.count("pos_sim"));
      EXPECT_TRUE(out.metrics.count("online_acc"));
      EXPECT_TRUE(out.metrics.count(loss == "nce" ? "log_z" : "instance_acc")) << loss;
      opt.zero_grad();
      out.loss.backward();
      opt.step();
      m.after_optimizer_step(step);
    }
    EXPECT_EQ(m.steps_done.item<int64_t>(), 2);
    m.eval();
    EXPECT_EQ(m.features(torch::rand({3, 1, 28, 28}), "encoder").sizes(),
              (std::vector<int64_t>{3, 16}));
    torch::Tensor f = m.features(torch::rand({3, 1, 28, 28}), "embedding");
    EXPECT_EQ(f.sizes(), (std::vector<int64_t>{3, 8}));
    EXPECT_TRUE(torch::allclose(f.norm(2, 1), torch::ones({3}), 1e-6, 1e-6));
    EXPECT_NE(config_error([&] {
                m.features(torch::rand({1, 1, 28, 28}), "nope");
              }).find("embedding"),
              std::string::npos);
  }
}

TEST_F(InstanceDiscriminationTest, LossFallsWhenOverfittingOneBatch) {
  for (const std::string loss : {"nce", "softmax"}) {
    torch::manual_seed(0);
    InstanceDiscrimination m(tiny(loss));
    auto [first, last] = overfit(m, items({1, 4, 7, 10, 15, 22, 28, 33, 35, 36, 37, 39}), 60, 1e-2);
    EXPECT_LT(last, 0.7 * first) << loss << ": first " << first << " last " << last;
  }
}

// The invariant: after a step, exactly the batch's entries move, by v ← normalize(m·v + (1 − m)·f)
// with the step's f, and stay unit vectors; an index seen twice moves twice, in batch order.
TEST_F(InstanceDiscriminationTest, BankEntriesMoveByExactlyTheMomentumRule) {
  for (double momentum : {0.5, 0.0, 0.9}) {
    InstanceDiscriminationConfig c = tiny();
    c.momentum = momentum;
    InstanceDiscrimination m(c);
    m.to(torch::kDouble);
    Batch b = items({3, 17, 3, 25, 8});
    b.input = b.input.to(torch::kDouble);
    torch::Tensor before = m.bank_entries().clone();
    m.step(b);
    // The step's f: train-mode BatchNorm on the same batch gives the same features again.
    torch::Tensor f = m.features(b.input, "embedding").detach();
    m.after_optimizer_step(0);
    torch::Tensor after = m.bank_entries();

    torch::Tensor expected = before.clone();
    auto move = [&](int64_t row, int64_t item) {
      torch::Tensor mixed = momentum * expected[row] + (1 - momentum) * f[item];
      expected[row] = mixed / mixed.norm();
    };
    move(3, 0);
    move(17, 1);
    move(3, 2);  // the second occurrence moves the already-moved entry
    move(25, 3);
    move(8, 4);
    EXPECT_LT((after - expected).abs().max().item<double>(), 1e-12) << "momentum " << momentum;
    for (int64_t row : {3, 8, 17, 25}) EXPECT_NEAR(after[row].norm().item<double>(), 1.0, 1e-12);
    for (int64_t row = 0; row < kBank; ++row) {
      if (row == 3 || row == 8 || row == 17 || row == 25) continue;
      EXPECT_TRUE(after[row].equal(before[row])) << "entry " << row << " moved";
    }
  }
}

// The paper's eq. 4–6 written out: P(i|v) = exp(vᵀf/τ)/Z, h = P / (P + m/n),
// J = −log h(i, v_i) − Σ_k log(1 − h(j_k, v_{j_k})), with Z = n · mean exp(s/τ) over the first
// batch's positive and noise scores (lemniscate's NCEAverage), fixed afterwards.
TEST_F(InstanceDiscriminationTest, NceIsEquation5WithZFromTheFirstBatch) {
  InstanceDiscriminationConfig c = tiny();
  InstanceDiscrimination m(c);
  m.to(torch::kDouble);
  const double n = kBank, K = c.negatives, tau = c.temperature;
  double z_first = 0;
  for (int64_t step = 0; step < 2; ++step) {
    Batch b = items({2, 11, 19, 27, 33, 39});
    b.input = b.input.to(torch::kDouble);
    torch::Tensor bank = m.bank_entries().clone();
    StepOutput out = m.step(b);
    torch::Tensor f = m.features(b.input, "embedding").detach();
    torch::Tensor noise = m.noise_indices(step, 0, 6);
    auto dot = [&](int64_t i, int64_t entry) {
      return (f[i] * bank[entry]).sum().item<double>() / tau;
    };
    if (step == 0) {
      double sum = 0;
      for (int64_t i = 0; i < 6; ++i) {
        sum += std::exp(dot(i, b.index[i].item<int64_t>()));
        for (int64_t k = 0; k < K; ++k) sum += std::exp(dot(i, noise[i][k].item<int64_t>()));
      }
      z_first = n * sum / (6 * (K + 1));
    }
    EXPECT_NEAR(m.z.item<double>() / z_first, 1.0, 1e-12) << "step " << step;
    double loss = 0;
    for (int64_t i = 0; i < 6; ++i) {
      auto h = [&](int64_t entry) {
        const double p = std::exp(dot(i, entry)) / z_first;
        return p / (p + K / n);
      };
      loss -= std::log(h(b.index[i].item<int64_t>()));
      for (int64_t k = 0; k < K; ++k) loss -= std::log(1 - h(noise[i][k].item<int64_t>()));
    }
    loss /= 6;
    EXPECT_NEAR(out.loss.item<double>(), loss, 1e-10 * std::abs(loss)) << "step " << step;
    EXPECT_NEAR(out.metrics.at("log_z"), std::log(z_first), 1e-12);
    m.after_optimizer_step(step);
  }
}

TEST_F(InstanceDiscriminationTest, SoftmaxIsCrossEntropyOverTheWholeBank) {
  InstanceDiscriminationConfig c = tiny("softmax");
  InstanceDiscrimination m(c);
  m.to(torch::kDouble);
  Batch b = items({0, 6, 12, 39});
  b.input = b.input.to(torch::kDouble);
  torch::Tensor bank = m.bank_entries().clone();
  StepOutput out = m.step(b);
  torch::Tensor f = m.features(b.input, "embedding").detach();
  double loss = 0;
  int correct = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t own = b.index[i].item<int64_t>();
    double denom = 0, best = -1e300;
    int64_t arg = -1;
    for (int64_t j = 0; j < kBank; ++j) {
      const double s = (f[i] * bank[j]).sum().item<double>() / c.temperature;
      denom += std::exp(s);
      if (s > best) best = s, arg = j;
    }
    loss -= (f[i] * bank[own]).sum().item<double>() / c.temperature - std::log(denom);
    correct += arg == own;
  }
  EXPECT_NEAR(out.loss.item<double>(), loss / 4, 1e-10 * std::abs(loss / 4));
  EXPECT_DOUBLE_EQ(out.metrics.at("instance_acc"), correct / 4.0);
  EXPECT_LT(m.z.item<double>(), 0);  // no Z for the softmax
}

TEST_F(InstanceDiscriminationTest, NoiseIsUniformOverTheBankAndSeededByStepAndMicroBatch) {
  InstanceDiscrimination m(tiny());
  torch::Tensor a = m.noise_indices(5, 1, 300);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{300, 16}));
  EXPECT_TRUE(a.equal(m.noise_indices(5, 1, 300)));
  EXPECT_FALSE(a.equal(m.noise_indices(6, 1, 300)));
  EXPECT_FALSE(a.equal(m.noise_indices(5, 0, 300)));
  EXPECT_GE(a.min().item<int64_t>(), 0);
  EXPECT_LT(a.max().item<int64_t>(), kBank);
  // 4,800 draws over 40 entries: every entry drawn, counts near 120 each.
  torch::Tensor counts = torch::bincount(a.reshape({-1}), {}, kBank);
  EXPECT_GT(counts.min().item<int64_t>(), 70);
  EXPECT_LT(counts.max().item<int64_t>(), 170);
}

// Probes and fine-tuning build the method from the config (bank size 0, a placeholder bank) and
// load the checkpoint: the archive replaces the bank, Z, the noise seed and the step count.
TEST_F(InstanceDiscriminationTest, CheckpointsRestoreTheBankAndZ) {
  TempDir dir;
  InstanceDiscriminationConfig c = tiny();
  c.bank_size = 0;
  InstanceDiscrimination m(c);
  m.set_bank_size(kBank);
  torch::optim::Adam opt(m.trainable_parameters(), 1e-3);
  for (int step = 0; step < 2; ++step) {
    StepOutput out = m.step(items({1, 2, 3, 4, 5, 6}));
    opt.zero_grad();
    out.loss.backward();
    opt.step();
    m.after_optimizer_step(step);
  }
  ASSERT_GT(m.z.item<double>(), 0);
  const std::string path = train::save_checkpoint(dir.path(), m, opt, 2, "test: id\n", 1);

  torch::manual_seed(123);              // another initial bank and noise seed
  InstanceDiscrimination for_probe(c);  // bank size unknown, as `contra probe` builds it
  EXPECT_EQ(for_probe.bank_entries().size(0), 1);
  EXPECT_LT(for_probe.z.item<double>(), 0);
  train::load_checkpoint(path, for_probe);
  EXPECT_TRUE(for_probe.bank_entries().equal(m.bank_entries()));
  EXPECT_EQ(for_probe.z.item<double>(), m.z.item<double>());

  InstanceDiscrimination resumed(c);  // as `contra train --resume` builds it
  resumed.set_bank_size(kBank);
  EXPECT_FALSE(resumed.bank_entries().equal(m.bank_entries()));
  train::load_checkpoint(path, resumed);
  EXPECT_TRUE(resumed.bank_entries().equal(m.bank_entries()));
  EXPECT_EQ(resumed.z.item<double>(), m.z.item<double>());
  EXPECT_EQ(resumed.noise_seed.item<int64_t>(), m.noise_seed.item<int64_t>());
  EXPECT_EQ(resumed.steps_done.item<int64_t>(), 2);
  EXPECT_TRUE(resumed.noise_indices(2, 0, 6).equal(m.noise_indices(2, 0, 6)));
  // It trains on: the same loss as the original on the next batch.
  m.eval();
  resumed.eval();
  Batch next = items({7, 8, 9, 10});
  EXPECT_NEAR(resumed.step(next).loss.item<double>(), m.step(next).loss.item<double>(), 1e-6);
}

TEST_F(InstanceDiscriminationTest, ConfigErrorsNameTheKey) {
  auto bad = [](auto change) {
    InstanceDiscriminationConfig c = tiny();
    change(c);
    return config_error([&] { InstanceDiscrimination m(c); });
  };
  EXPECT_NE(bad([](auto& c) { c.temperature = 0; }).find("temperature"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.loss = "nse"; }).find("loss: must be nce or softmax"),
            std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.negatives = 0; }).find("negatives"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.momentum = 1; }).find("momentum"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.bank_size = -1; }).find("bank_size"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.embedding = 0; }).find("embedding"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.online_probe_classes = 1; }).find("online_probe_classes"),
            std::string::npos);

  // Through the registry: the method's section, unknown keys by their path.
  auto tree = [](const std::string& method) {
    return ConfigTree::from_string("method:\n  name: instance_discrimination\n" + method, "t.yaml");
  };
  auto m = make_method(tree("  encoder: {width: 4}\n  negatives: 8\n"));
  EXPECT_EQ(m->name(), "instance_discrimination");
  EXPECT_EQ(method_modality(tree("")), "image");
  EXPECT_NE(
      config_error([&] { make_method(tree("  temperatur: 0.1\n")); }).find("method.temperatur"),
      std::string::npos);
  EXPECT_NE(config_error([&] { make_method(tree("  loss: full\n")); }).find("method"),
            std::string::npos);

  InstanceDiscrimination fixed(tiny());
  EXPECT_NE(config_error([&] { fixed.set_bank_size(kBank + 1); }).find("bank_size"),
            std::string::npos);
  EXPECT_NE(config_error([&] { fixed.check_batch(8, 0); }).find("augment.views"),
            std::string::npos);
  EXPECT_NE(config_error([&] { fixed.check_batch(1, 1); }).find("train.batch_size"),
            std::string::npos);
  EXPECT_NE(config_error([&] { fixed.check_batch(kBank + 1, 1); }).find("memory bank"),
            std::string::npos);
  fixed.check_batch(kBank, 2);  // more views are allowed: the first is used

  InstanceDiscriminationConfig unsized = tiny();
  unsized.bank_size = 0;
  InstanceDiscrimination no_size(unsized);
  EXPECT_NE(config_error([&] {
              no_size.step(items({0, 1}));
            }).find("bank_size"),
            std::string::npos);
}

TEST_F(InstanceDiscriminationTest, BatchErrors) {
  InstanceDiscrimination m(tiny());
  expect_data_error([&] { m.step(items({0, kBank})); }, "out of range");
  expect_data_error([&] { m.step(items({-1, 3})); }, "out of range");
  Batch no_index = items({0, 1});
  no_index.index = torch::Tensor();
  expect_data_error([&] { m.step(no_index); }, "index");
  Batch short_index = items({0, 1, 2});
  short_index.index = torch::tensor({0, 1}, torch::kLong);
  expect_data_error([&] { m.step(short_index); }, "index");
  expect_data_error([&] { m.step(Batch{}); }, "input");
}

}  // namespace
}  // namespace contra::method
