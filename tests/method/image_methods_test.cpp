// SimCLR and MoCo: the method contracts of DESIGN.md §9 (shapes, determinism, errors) and the
// paper-specific invariants (MoCo's key encoder, momentum rule, queue, shuffle-BN).
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/loss/nt_xent.h"
#include "contra/method/moco.h"
#include "contra/method/simclr.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::SeededTest;
class SimClrTest : public SeededTest {};
class MocoTest : public SeededTest {};

nn::ImageEncoderConfig tiny_encoder() {
  nn::ImageEncoderConfig e;
  e.type = "small_cnn";
  e.in_channels = 1;
  e.width = 4;  // features 16
  return e;
}

SimClrConfig tiny_simclr() {
  SimClrConfig c;
  c.encoder = tiny_encoder();
  c.projection.hidden = 16;
  c.projection.out = 8;
  c.temperature = 0.5;
  return c;
}

MocoConfig tiny_moco() {
  MocoConfig c;
  c.encoder = tiny_encoder();
  c.dim = 8;
  c.queue_size = 32;
  c.momentum = 0.9;
  c.temperature = 0.2;
  c.bn_splits = 2;
  return c;
}

Batch two_views(int64_t n, int64_t side = 12) {
  Batch b;
  torch::Tensor base = torch::randn({n, 1, side, side});
  b.views = {base + 0.1 * torch::randn_like(base), base + 0.1 * torch::randn_like(base)};
  b.input = b.views[0];
  b.labels = torch::arange(n) % 3;
  return b;
}

using contra::testing::config_error;

// ---- SimCLR -------------------------------------------------------------------------------------

TEST_F(SimClrTest, LossIsNtXentOfTheProjectedViews) {
  SimClr m(tiny_simclr());
  Batch b = two_views(6);
  StepOutput out = m.step(b);
  torch::Tensor z = m.head->forward(m.encoder.forward(torch::cat({b.views[0], b.views[1]}, 0)));
  torch::Tensor expected = loss::functional::nt_xent(z.narrow(0, 0, 6), z.narrow(0, 6, 6), {},
                                                     loss::NTXentOptions().temperature(0.5));
  EXPECT_NEAR(out.loss.item<double>(), expected.item<double>(), 1e-5);
  EXPECT_TRUE(out.metrics.count("instance_acc"));
  EXPECT_GE(out.metrics["pos_sim"], out.metrics["neg_sim"] - 1.0);
  EXPECT_FALSE(out.metrics.count("online_acc"));
}

TEST_F(SimClrTest, OverfitsOneBatch) {
  // τ = 0.1: the optimum of 16 items is ≈ 0.002 (at τ = 0.5 it would be ≈ 1.57, too close to the
  // start to tell learning apart).
  SimClrConfig c = tiny_simclr();
  c.temperature = 0.1;
  SimClr m(c);
  torch::optim::Adam opt(m.trainable_parameters(), torch::optim::AdamOptions(1e-2));
  Batch b = two_views(16);
  double first = 0, last = 0, acc = 0;
  for (int i = 0; i < 60; ++i) {
    opt.zero_grad();
    StepOutput out = m.step(b);
    out.loss.backward();
    opt.step();
    if (i == 0) first = out.loss.item<double>();
    last = out.loss.item<double>();
    acc = out.metrics["instance_acc"];
  }
  EXPECT_LT(last, 0.3 * first) << "first " << first << " last " << last;
  EXPECT_GT(acc, 0.9);
}

TEST_F(SimClrTest, OnlineProbeDoesNotReachTheEncoder) {
  auto grads = [](bool probe) {
    torch::manual_seed(3);
    SimClrConfig c = tiny_simclr();
    c.online_probe_classes = probe ? 3 : 0;
    SimClr m(c);
    torch::manual_seed(4);
    Batch b = two_views(6);
    StepOutput out = m.step(b);
    out.loss.backward();
    if (probe) {
      EXPECT_TRUE(out.metrics.count("online_acc"));
      EXPECT_TRUE(m.probe->linear->weight.grad().defined());
    }
    std::vector<torch::Tensor> g;
    for (auto& p : m.encoder.ptr()->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto with = grads(true), without = grads(false);
  ASSERT_EQ(with.size(), without.size());
  for (size_t i = 0; i < with.size(); ++i) EXPECT_TRUE(torch::allclose(with[i], without[i]));
}

TEST_F(SimClrTest, FeaturesAndErrors) {
  SimClr m(tiny_simclr());
  m.eval();
  torch::Tensor x = torch::randn({3, 1, 12, 12});
  EXPECT_EQ(m.features(x, "encoder").sizes(), (std::vector<int64_t>{3, 16}));
  torch::Tensor z = m.features(x, "projection");
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_TRUE(torch::allclose(z.norm(2, 1), torch::ones({3}), 1e-5, 1e-5));
  EXPECT_THROW(m.features(x, "context"), ConfigError);
  EXPECT_NE(config_error([&] { m.check_batch(8, 3); }).find("augment.views"), std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(1, 2); }).find("train.batch_size"), std::string::npos);
  SimClrConfig bad = tiny_simclr();
  bad.temperature = 0;
  EXPECT_NE(config_error([&] { SimClr x(bad); }).find("temperature"), std::string::npos);
}

// ---- MoCo ---------------------------------------------------------------------------------------

TEST_F(MocoTest, KeyEncoderStartsAsAnExactFrozenCopy) {
  Moco m(tiny_moco());
  auto q = m.encoder_q.ptr()->parameters(), k = m.encoder_k.ptr()->parameters();
  ASSERT_EQ(q.size(), k.size());
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_TRUE(torch::equal(q[i], k[i]));
    EXPECT_NE(q[i].data_ptr(), k[i].data_ptr());  // a copy, not shared storage
    EXPECT_FALSE(k[i].requires_grad());
  }
  auto hq = m.head_q->parameters(), hk = m.head_k->parameters();
  for (size_t i = 0; i < hq.size(); ++i) EXPECT_TRUE(torch::equal(hq[i], hk[i]));
  // The optimizer never sees the key side.
  const auto trainable = m.trainable_parameters();
  EXPECT_EQ(trainable.size(), q.size() + hq.size());
  for (const auto& p : trainable) EXPECT_TRUE(p.requires_grad());
}

TEST_F(MocoTest, MomentumRuleExactly) {
  Moco m(tiny_moco());
  torch::optim::SGD opt(m.trainable_parameters(), torch::optim::SGDOptions(0.5));
  Batch b = two_views(8);
  opt.zero_grad();
  m.step(b).loss.backward();
  opt.step();
  std::vector<torch::Tensor> q_after, k_before;
  for (auto& p : m.encoder_q.ptr()->parameters()) q_after.push_back(p.detach().clone());
  for (auto& p : m.encoder_k.ptr()->parameters()) k_before.push_back(p.detach().clone());
  ASSERT_FALSE(torch::equal(q_after[0], k_before[0]));  // the step moved the query encoder
  m.after_optimizer_step(0);
  auto k_after = m.encoder_k.ptr()->parameters();
  for (size_t i = 0; i < k_after.size(); ++i) {
    torch::Tensor expected = 0.9 * k_before[i] + 0.1 * q_after[i];
    EXPECT_TRUE(torch::allclose(k_after[i], expected, 1e-6, 1e-7)) << "parameter " << i;
  }
}

TEST_F(MocoTest, QueuePointerAndContentsAfterEachStep) {
  MocoConfig c = tiny_moco();
  c.queue_size = 20;  // not a multiple of the batch: the write wraps around
  Moco m(c);
  torch::Tensor initial = m.queue->queue.clone();
  Batch b = two_views(8);
  m.step(b);
  EXPECT_EQ(m.queue->pointer(), 8);
  EXPECT_TRUE(torch::allclose(m.queue->queue.narrow(1, 0, 8), m.last_keys.t()));
  EXPECT_TRUE(torch::equal(m.queue->queue.narrow(1, 8, 12), initial.narrow(1, 8, 12)));
  m.step(b);
  m.step(b);  // 24 keys into 20 columns: columns 16..19 then 0..3
  EXPECT_EQ(m.queue->pointer(), 4);
  EXPECT_TRUE(torch::allclose(m.queue->queue.narrow(1, 16, 4), m.last_keys.narrow(0, 0, 4).t()));
  EXPECT_TRUE(torch::allclose(m.queue->queue.narrow(1, 0, 4), m.last_keys.narrow(0, 4, 4).t()));
  // Keys are unit vectors.
  EXPECT_TRUE(torch::allclose(m.last_keys.norm(2, 1), torch::ones({8}), 1e-5, 1e-5));
}

// The keys of one step on a fixed batch, from a fixed initialisation.
torch::Tensor step_keys(bool shuffle, int64_t splits) {
  torch::manual_seed(5);
  MocoConfig c = tiny_moco();
  c.bn_splits = splits;
  c.shuffle_bn = shuffle;
  Moco m(c);
  torch::manual_seed(6);
  m.step(two_views(8));
  return m.last_keys.clone();
}

TEST_F(MocoTest, ShuffleUnshuffleIsTheIdentity) {
  // With one BN group the statistics do not depend on the order, so shuffled-then-unshuffled keys
  // must equal the keys of the batch in its own order, row for row.
  EXPECT_TRUE(torch::allclose(step_keys(true, 1), step_keys(false, 1), 1e-5, 1e-6));
}

TEST_F(MocoTest, ShuffleChangesKeysWhenBnIsSplit) {
  // With 2 BN groups a shuffled batch puts items in other groups: the keys differ (this is what
  // stops a query and its key from sharing batch statistics).
  EXPECT_FALSE(torch::allclose(step_keys(true, 2), step_keys(false, 2), 1e-4, 1e-5));
}

TEST_F(MocoTest, LossIsCrossEntropyAgainstQueue) {
  MocoConfig c = tiny_moco();
  c.shuffle_bn = false;
  Moco m(c);
  Batch b = two_views(8);
  torch::Tensor queue_before = m.queue->queue.clone();
  StepOutput out = m.step(b);
  // Recompute from the definition (same BN groups: no shuffle, 2 splits, train mode).
  torch::Tensor q = torch::nn::functional::normalize(
      m.head_q->forward(encode_in_splits(m.encoder_q, b.views[0], 2)),
      torch::nn::functional::NormalizeFuncOptions().dim(1));
  torch::Tensor k = m.last_keys;
  torch::Tensor logits = torch::cat({(q * k).sum(1, true), q.mm(queue_before)}, 1) / 0.2;
  double expected =
      torch::nn::functional::cross_entropy(logits, torch::zeros({8}, torch::kLong)).item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4);
  EXPECT_GE(out.metrics["instance_acc"], 0.0);
  EXPECT_LE(out.metrics["instance_acc"], 1.0);
}

TEST_F(MocoTest, LearnsInstanceDiscrimination) {
  // "Overfit one batch" for a queue method: 128 fixed images in 8 batches of 16, and a queue of two
  // batches, so the queue holds keys of other images (as in real MoCo, where K is much smaller
  // than the data set). Views are fresh noise around each fixed image.
  MocoConfig c = tiny_moco();
  c.temperature = 0.1;
  Moco m(c);
  torch::optim::Adam opt(m.trainable_parameters(), torch::optim::AdamOptions(1e-2));
  torch::Tensor pool = torch::randn({128, 1, 12, 12});
  auto batch = [&](int64_t i) {
    torch::Tensor base = pool.narrow(0, (i % 8) * 16, 16);
    Batch b;
    b.views = {base + 0.1 * torch::randn_like(base), base + 0.1 * torch::randn_like(base)};
    return b;
  };
  double first = 0, last = 0, acc = 0;
  for (int i = 0; i < 80; ++i) {
    opt.zero_grad();
    StepOutput out = m.step(batch(i));
    out.loss.backward();
    opt.step();
    m.after_optimizer_step(i);
    if (i == 8) first = out.loss.item<double>();  // once the queue holds real keys
    if (i >= 72) {
      last += out.loss.item<double>() / 8;
      acc += out.metrics["instance_acc"] / 8;
    }
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  EXPECT_GT(acc, 0.8);
}

TEST_F(MocoTest, QueueAndKeyEncoderAreCheckpointed) {
  Moco a(tiny_moco());
  Batch b = two_views(8);
  a.step(b);
  a.after_optimizer_step(0);
  std::ostringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    a.save(archive);
    archive.save_to(buffer);
  }
  torch::manual_seed(99);
  Moco c(tiny_moco());
  std::istringstream in(buffer.str());
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  c.load(archive);
  EXPECT_TRUE(torch::equal(a.queue->queue, c.queue->queue));
  EXPECT_EQ(c.queue->pointer(), 8);
  auto ka = a.encoder_k.ptr()->parameters(), kc = c.encoder_k.ptr()->parameters();
  for (size_t i = 0; i < ka.size(); ++i) EXPECT_TRUE(torch::equal(ka[i], kc[i]));
}

TEST_F(MocoTest, BatchErrorsNameTheKeys) {
  Moco m(tiny_moco());
  EXPECT_NE(config_error([&] { m.check_batch(7, 2); }).find("method.bn_splits"), std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(64, 2); }).find("method.queue_size"),
            std::string::npos);
  EXPECT_NE(config_error([&] { m.check_batch(8, 3); }).find("augment.views"), std::string::npos);
  MocoConfig bad = tiny_moco();
  bad.momentum = 1.0;
  EXPECT_NE(config_error([&] { Moco x(bad); }).find("momentum"), std::string::npos);
  EXPECT_THROW(m.features(torch::randn({2, 1, 12, 12}), "nope"), ConfigError);
}

TEST_F(MocoTest, OfficialDefaults) {
  MocoConfig c;
  EXPECT_EQ(c.dim, 128);
  EXPECT_EQ(c.queue_size, 65536);
  EXPECT_DOUBLE_EQ(c.momentum, 0.999);
  EXPECT_DOUBLE_EQ(c.temperature, 0.07);
  EXPECT_FALSE(c.mlp);
  c.encoder = tiny_encoder();
  Moco v1(c);
  EXPECT_EQ(v1.head_q->options.layers(), 1);  // fc only
  c.mlp = true;
  Moco v2(c);
  EXPECT_EQ(v2.head_q->options.layers(), 2);  // Linear–ReLU–fc
  EXPECT_FALSE(v2.head_q->options.batch_norm());
}

}  // namespace
}  // namespace contra::method
