#include "contra/method/cpc_audio.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::method {
namespace {

using contra::testing::SeededTest;
class CpcAudioTest : public SeededTest {};

/// A tiny model: 16 channels, GRU 16, 3 steps, 8 negatives; window 4000 → 25 frames.
CpcAudioConfig tiny(const std::string& mode = "batch") {
  CpcAudioConfig cfg;
  cfg.encoder.channels = 16;
  cfg.context.hidden = 16;
  cfg.context.heads = 2;
  cfg.predictor.steps = 3;
  cfg.negatives.mode = mode;
  cfg.negatives.count = 8;
  cfg.negatives.hard = 3;
  cfg.negatives.bank_size = 64;
  return cfg;
}

using contra::testing::config_error;

// ---- sampler ------------------------------------------------------------------------------------

TEST_F(CpcAudioTest, SamplerNeverReturnsThePositiveAndRespectsPools) {
  const int64_t B = 6, T = 5, n = 29;
  auto labels = torch::tensor({7, 3, 7, 3, 3, 9}, torch::kLong);  // 9 has one window only
  auto positive = torch::arange(B * T, torch::kLong);             // every frame as a positive
  for (auto mode : {NegativeMode::kBatch, NegativeMode::kSameSpeaker, NegativeMode::kSameSequence,
                    NegativeMode::kHard}) {
    const int64_t count = mode == NegativeMode::kBatch || mode == NegativeMode::kHard ? n : 4;
    auto neg = sample_negatives(mode, positive, B, T, count, labels);
    ASSERT_EQ(neg.sizes(), (std::vector<int64_t>{B * T, count})) << negative_mode_name(mode);
    EXPECT_FALSE((neg == positive.unsqueeze(1)).any().item<bool>()) << negative_mode_name(mode);
    EXPECT_GE(neg.min().item<int64_t>(), 0);
    EXPECT_LT(neg.max().item<int64_t>(), B * T);
    auto window = torch::div(neg, T, "floor");
    auto anchor_window = torch::div(positive, T, "floor").unsqueeze(1);
    if (mode == NegativeMode::kSameSequence) {
      EXPECT_TRUE((window == anchor_window).all().item<bool>());
    }
    if (mode == NegativeMode::kSameSpeaker) {
      auto same = labels.index({window}) == labels.index({anchor_window});
      EXPECT_TRUE(same.all().item<bool>());
    }
  }
}

TEST_F(CpcAudioTest, SamplerCoversThePoolUniformly) {
  // batch mode: 3 windows × 4 frames, positive frame 5 → the other 11 frames, each ≈ 1/11.
  auto neg = sample_negatives(NegativeMode::kBatch, torch::full({2000}, 5, torch::kLong), 3, 4, 11);
  auto counts = torch::bincount(neg.flatten(), {}, 12).to(torch::kDouble) / neg.numel();
  EXPECT_EQ(counts[5].item<double>(), 0.0);
  for (int i = 0; i < 12; ++i) {
    if (i != 5) EXPECT_NEAR(counts[i].item<double>(), 1.0 / 11, 0.01) << i;
  }
  // same_speaker, labels {1, 2, 1, 2}: pool of frame 1 (window 0) = windows 0 and 2 minus frame 1.
  auto labels = torch::tensor({1, 2, 1, 2}, torch::kLong);
  auto s = sample_negatives(NegativeMode::kSameSpeaker, torch::full({3000}, 1, torch::kLong), 4, 4,
                            7, labels);
  auto sc = torch::bincount(s.flatten(), {}, 16).to(torch::kDouble) / s.numel();
  for (int i = 0; i < 16; ++i) {
    const bool in_pool = (i < 4 || (i >= 8 && i < 12)) && i != 1;
    EXPECT_NEAR(sc[i].item<double>(), in_pool ? 1.0 / 7 : 0.0, 0.01) << i;
  }
}

TEST_F(CpcAudioTest, SamplerRejectsMoreNegativesThanAvailable) {
  auto pos = torch::arange(10, torch::kLong);
  auto msg = config_error([&] { sample_negatives(NegativeMode::kSameSequence, pos, 2, 5, 5); });
  EXPECT_NE(msg.find("negatives.count = 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("only 4"), std::string::npos) << msg;
  msg = config_error([&] { sample_negatives(NegativeMode::kBatch, pos, 2, 5, 10); });
  EXPECT_NE(msg.find("only 9"), std::string::npos) << msg;
  auto labels = torch::tensor({0, 1}, torch::kLong);
  msg = config_error([&] { sample_negatives(NegativeMode::kSameSpeaker, pos, 2, 5, 5, labels); });
  EXPECT_NE(msg.find("only 4"), std::string::npos) << msg;
  msg = config_error([&] { sample_negatives(NegativeMode::kSameSpeaker, pos, 2, 5, 2); });
  EXPECT_NE(msg.find("labels"), std::string::npos) << msg;
  EXPECT_EQ(available_negatives(NegativeMode::kSameSpeaker, 2, 5, torch::tensor({4, 4})), 9);
}

TEST_F(CpcAudioTest, SampledScoresMatchNaiveLoop) {
  auto p = torch::randn({5, 4}, torch::requires_grad());
  auto f = torch::randn({9, 4}, torch::requires_grad());
  auto idx = torch::randint(0, 9, {5, 3}, torch::kLong);
  auto s = sampled_scores(p, f, idx);
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(s[i][j].item<double>(),
                  torch::dot(p[i], f[idx[i][j].item<int64_t>()]).item<double>(), 1e-5);
    }
  }
  // Gradients equal those of the materialised formulation.
  auto w = torch::randn({5, 3});
  auto g = torch::autograd::grad({(s * w).sum()}, {p, f});
  auto gathered = f.index({idx});  // (5, 3, 4)
  auto ref = (torch::einsum("mc,mjc->mj", {p, gathered}) * w).sum();
  auto gr = torch::autograd::grad({ref}, {p, f});
  EXPECT_TRUE(torch::allclose(g[0], gr[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(g[1], gr[1], 1e-5, 1e-5));
}

TEST_F(CpcAudioTest, SampledScoresKernelsCoverVectorTailsAndRepeatedRows) {
  // C = 37: two 16-lane blocks and a 5-wide tail; many anchors sample the same frames, so the
  // scatter backward accumulates into shared rows.
  for (int64_t C : {16, 37}) {
    auto p = torch::randn({300, C}, torch::requires_grad());
    auto f = torch::randn({7, C}, torch::requires_grad());
    auto idx = torch::randint(0, 7, {300, 11}, torch::kLong);
    auto s = sampled_scores(p, f, idx);
    auto ref = torch::einsum("mc,mjc->mj", {p, f.index({idx})});
    EXPECT_TRUE(torch::allclose(s, ref, 1e-4, 1e-4)) << C;
    auto w = torch::randn({300, 11});
    auto g = torch::autograd::grad({(s * w).sum()}, {p, f});
    auto gr = torch::autograd::grad({(ref * w).sum()}, {p, f});
    EXPECT_TRUE(torch::allclose(g[0], gr[0], 1e-4, 1e-4)) << C;
    EXPECT_TRUE(torch::allclose(g[1], gr[1], 1e-3, 1e-3)) << C;
  }
  // Out-of-range rows are rejected, not read.
  auto p = torch::randn({2, 4}), f = torch::randn({3, 4});
  EXPECT_THROW(sampled_scores(p, f, torch::tensor({{0, 3}, {1, 2}})), c10::Error);
  EXPECT_THROW(sampled_scores(p, f, torch::tensor({{0, -1}, {1, 2}})), c10::Error);
}

TEST_F(CpcAudioTest, SampledScoresFiniteDifferenceGradientInDouble) {
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto p = torch::randn({4, 3}, opts).requires_grad_();
  auto f = torch::randn({6, 3}, opts).requires_grad_();
  auto idx = torch::randint(0, 6, {4, 5}, torch::kLong);
  auto w = torch::randn({4, 5}, opts);
  auto objective = [&] { return (sampled_scores(p, f, idx) * w).sum(); };
  auto grads = torch::autograd::grad({objective()}, {p, f});
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (int which = 0; which < 2; ++which) {
    auto& t = which == 0 ? p : f;
    auto flat = t.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double old = flat[i].item<double>();
      flat[i] = old + h;
      const double up = objective().item<double>();
      flat[i] = old - h;
      const double down = objective().item<double>();
      flat[i] = old;
      EXPECT_NEAR(grads[which].view({-1})[i].item<double>(), (up - down) / (2 * h), 1e-6)
          << which << " " << i;
    }
  }
}

// ---- the loss against a naive per-row loop ------------------------------------------------------

/// Recomputes step()'s loss with loops: same seed → same sampled negatives (the sampler is the only
/// random draw in step()).
double naive_loss(CpcAudio& cpc, const Batch& batch, uint64_t seed, std::vector<double>* acc) {
  torch::NoGradGuard no_grad;
  const auto& cfg = cpc.config();
  auto z = cpc.encoder->forward(batch.input);
  auto c = cpc.context->forward(z);
  auto pred = cpc.predictor->forward(c);
  const int64_t B = z.size(0), T = z.size(1), K = cfg.predictor.steps;
  auto zf = z.reshape({B * T, -1});
  auto mode = cpc.negative_mode();
  // Hard negatives: nearest bank entries (Euclidean) of every frame, by sorting.
  auto buffers = cpc.named_buffers();
  int64_t n_hard = 0;
  torch::Tensor bank;
  if (mode == NegativeMode::kHard && buffers["bank_filled"].item<int64_t>() >= cfg.negatives.hard) {
    n_hard = cfg.negatives.hard;
    bank = buffers["bank"].narrow(0, 0, buffers["bank_filled"].item<int64_t>());
  }
  torch::manual_seed(seed);
  auto cand =
      cpc.sample_candidates(B, T, cfg.negatives.count - n_hard, batch.labels).to(torch::kLong);
  EXPECT_EQ(cand.size(0), cpc_rows(B, T, K));
  int64_t row = 0;
  double total = 0;
  for (int64_t k = 1; k <= K; ++k) {
    std::vector<int64_t> pos_ids;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t + k < T; ++t) pos_ids.push_back(b * T + t + k);
    auto positive = torch::tensor(pos_ids, torch::kLong);
    auto neg = cand.narrow(0, row, positive.size(0)).narrow(1, 1, cand.size(1) - 1);
    EXPECT_TRUE(cand.narrow(0, row, positive.size(0)).select(1, 0).equal(positive)) << k;
    row += positive.size(0);
    double sum = 0, correct = 0;
    for (int64_t i = 0; i < positive.size(0); ++i) {
      const int64_t p = pos_ids[i], b = p / T, t = p % T - k;
      auto q = pred[b][t][k - 1];
      std::vector<double> logits{torch::dot(q, zf[p]).item<double>()};
      for (int64_t j = 0; j < neg.size(1); ++j)
        logits.push_back(torch::dot(q, zf[neg[i][j].item<int64_t>()]).item<double>());
      if (n_hard > 0) {
        auto d = (bank - zf[p]).pow(2).sum(1);
        auto order = std::get<1>(d.sort());
        for (int64_t j = 0; j < n_hard; ++j)
          logits.push_back(torch::dot(q, bank[order[j].item<int64_t>()]).item<double>());
      }
      double mx = *std::max_element(logits.begin(), logits.end()), se = 0;
      for (double l : logits) se += std::exp((l - mx) / cfg.loss.temperature);
      sum += mx / cfg.loss.temperature + std::log(se) - logits[0] / cfg.loss.temperature;
      bool best = true;
      for (std::size_t j = 1; j < logits.size(); ++j) best = best && logits[0] > logits[j];
      correct += best;
    }
    total += sum / positive.size(0);
    acc->push_back(correct / positive.size(0));
  }
  return total / K;
}

TEST_F(CpcAudioTest, LossEqualsNaiveLoopForEveryMode) {
  for (const char* mode : {"batch", "same_speaker", "same_sequence", "hard"}) {
    auto cfg = tiny(mode);
    cfg.loss.temperature = 0.5;
    CpcAudio cpc(cfg);
    Batch batch;
    batch.input = torch::randn({4, 1, 4000});
    batch.labels = torch::tensor({1, 2, 1, 2}, torch::kLong);
    if (std::string(mode) == "hard") {
      // Fill the bank with one training step first, so hard negatives take part.
      cpc.step(batch);
      ASSERT_EQ(cpc.named_buffers()["bank_filled"].item<int64_t>(), 64);
      cpc.eval();  // no bank push in the checked step
    }
    torch::manual_seed(123);
    auto out = cpc.step(batch);
    std::vector<double> acc;
    double ref = naive_loss(cpc, batch, 123, &acc);
    EXPECT_NEAR(out.loss.item<double>(), ref, 1e-4 * std::abs(ref)) << mode;
    for (int k = 1; k <= 3; ++k) {
      EXPECT_NEAR(out.metrics.at("acc_" + std::to_string(k)), acc[k - 1], 1e-9) << mode << k;
    }
  }
}

TEST_F(CpcAudioTest, AnalyticCaseAllScoresEqualGivesLogOfOnePlusN) {
  // Zero predictor weights → every logit 0 → loss = log(1 + count), accuracy 0 (no strict winner).
  auto cpc = CpcAudio(tiny());
  torch::NoGradGuard no_grad;
  cpc.predictor->named_parameters()["linear.weight"].zero_();
  Batch batch;
  batch.input = torch::randn({2, 1, 4000});
  auto out = cpc.step(batch);
  EXPECT_NEAR(out.loss.item<double>(), std::log(9.0), 1e-5);
  EXPECT_EQ(out.metrics.at("acc_1"), 0.0);
}

TEST_F(CpcAudioTest, Bfloat16ScoresStayCloseToFloat32) {
  for (const char* mode : {"batch", "same_sequence"}) {
    auto cfg = tiny(mode);
    CpcAudio cpc(cfg);
    cfg.loss.precision = "bfloat16";
    CpcAudio cpc16(cfg);
    torch::NoGradGuard no_grad;
    for (auto& item : cpc16.named_parameters())
      item.value().copy_(cpc.named_parameters()[item.key()]);
    Batch batch;
    batch.input = torch::randn({4, 1, 4000});
    torch::manual_seed(5);
    double l32 = cpc.step(batch).loss.item<double>();
    torch::manual_seed(5);
    double l16 = cpc16.step(batch).loss.item<double>();
    EXPECT_NEAR(l16, l32, 1e-2 * l32) << mode;
    EXPECT_NE(l16, l32) << mode;  // it did run in bf16
  }
  auto bad = tiny();
  bad.loss.precision = "float16";
  EXPECT_THROW(CpcAudio{bad}, ConfigError);
}

// ---- training -----------------------------------------------------------------------------------

TEST_F(CpcAudioTest, TwoStepSmokeForEveryModeAndContext) {
  for (const char* mode : {"batch", "same_speaker", "same_sequence", "hard"}) {
    for (const char* context : {"gru", "lstm", "transformer"}) {
      auto cfg = tiny(mode);
      cfg.context.type = context;
      CpcAudio cpc(cfg);
      torch::optim::Adam opt(cpc.parameters(), torch::optim::AdamOptions(1e-3));
      Batch batch;
      batch.input = torch::randn({4, 1, 4000});
      batch.labels = torch::tensor({5, 5, 6, 6}, torch::kLong);
      for (int step = 0; step < 2; ++step) {
        auto out = cpc.step(batch);
        ASSERT_TRUE(std::isfinite(out.loss.item<double>())) << mode << context;
        opt.zero_grad();
        out.loss.backward();
        opt.step();
        cpc.after_optimizer_step(step);
        for (const char* key : {"loss", "acc_1", "acc_2", "acc_3", "loss_3"}) {
          EXPECT_EQ(out.metrics.count(key), 1u) << key;
        }
      }
    }
  }
}

TEST_F(CpcAudioTest, LossFallsWhenOverfittingOneBatch) {
  auto cfg = tiny();
  cfg.encoder.channels = 32;
  cfg.context.hidden = 32;
  CpcAudio cpc(cfg);
  torch::optim::Adam opt(cpc.parameters(), torch::optim::AdamOptions(2e-3));
  Batch batch;
  batch.input = torch::randn({4, 1, 4000});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    torch::manual_seed(7);  // the same negatives every step: a fixed objective to overfit
    auto out = cpc.step(batch);
    if (step == 0) first = out.loss.item<double>();
    last = out.loss.item<double>();
    opt.zero_grad();
    out.loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST_F(CpcAudioTest, HardModeBankIsAFifoBuffer) {
  auto cfg = tiny("hard");
  cfg.negatives.bank_size = 80;
  CpcAudio cpc(cfg);
  auto buffers = cpc.named_buffers();
  ASSERT_EQ(cpc.named_buffers(/*recurse=*/false).size(), 3u);  // bank, bank_next, bank_filled
  EXPECT_EQ(buffers["bank"].sizes(), (std::vector<int64_t>{80, 16}));
  Batch batch;
  batch.input = torch::randn({2, 1, 4000});  // 50 frames a step
  cpc.step(batch);
  EXPECT_EQ(cpc.named_buffers()["bank_filled"].item<int64_t>(), 50);
  cpc.step(batch);
  EXPECT_EQ(cpc.named_buffers()["bank_filled"].item<int64_t>(), 80);
  EXPECT_EQ(cpc.named_buffers()["bank_next"].item<int64_t>(), 20);
  auto z = cpc.features(batch.input, "encoder").reshape({50, 16});
  EXPECT_TRUE(torch::allclose(cpc.named_buffers()["bank"].narrow(0, 0, 20), z.narrow(0, 30, 20)));
  cpc.eval();
  cpc.step(batch);
  EXPECT_EQ(cpc.named_buffers()["bank_next"].item<int64_t>(), 20);  // no push outside training
}

TEST_F(CpcAudioTest, CheckpointKeepsTheMemoryBank) {
  contra::testing::TempDir dir;
  auto cfg = tiny("hard");
  CpcAudio cpc(cfg);
  Batch batch;
  batch.input = torch::randn({2, 1, 4000});
  cpc.step(batch);
  torch::serialize::OutputArchive out;
  cpc.save(out);
  out.save_to(dir.file("cpc.pt"));
  CpcAudio restored(cfg);
  torch::serialize::InputArchive in;
  in.load_from(dir.file("cpc.pt"));
  restored.load(in);
  auto a = cpc.named_buffers(), b = restored.named_buffers();
  EXPECT_TRUE(torch::equal(a["bank"], b["bank"]));
  EXPECT_EQ(b["bank_filled"].item<int64_t>(), 50);
  EXPECT_EQ(b["bank_next"].item<int64_t>(), 50);
  // Same state → same next loss.
  torch::manual_seed(9);
  auto l1 = cpc.step(batch).loss.item<double>();
  torch::manual_seed(9);
  auto l2 = restored.step(batch).loss.item<double>();
  EXPECT_DOUBLE_EQ(l1, l2);
}

// ---- features and errors ------------------------------------------------------------------------

TEST_F(CpcAudioTest, FeaturesAndFrames) {
  CpcAudio cpc(tiny());
  auto x = torch::randn({2, 1, 20480});
  EXPECT_EQ(cpc.frames_for(20480), 128);
  EXPECT_EQ(cpc.features(x, "context").sizes(), (std::vector<int64_t>{2, 128, 16}));
  EXPECT_EQ(cpc.features(x, "encoder").sizes(), (std::vector<int64_t>{2, 128, 16}));
  auto msg = config_error([&] { cpc.features(x, "logits"); });
  EXPECT_NE(msg.find("'logits'"), std::string::npos) << msg;
  EXPECT_EQ(cpc.name(), "cpc_audio");
}

TEST_F(CpcAudioTest, BadBatchesGiveConfigErrorsWithNumbers) {
  Batch batch;
  batch.input = torch::randn({2, 1, 4000});  // 25 frames
  {
    auto cfg = tiny("same_sequence");
    cfg.negatives.count = 30;
    CpcAudio cpc(cfg);
    auto msg = config_error([&] { cpc.step(batch); });
    EXPECT_NE(msg.find("negatives.count = 30"), std::string::npos) << msg;
    EXPECT_NE(msg.find("only 24"), std::string::npos) << msg;
  }
  {
    CpcAudio cpc(tiny());
    Batch short_batch;
    short_batch.input = torch::randn({2, 1, 900});
    auto msg = config_error([&] { cpc.step(short_batch); });
    EXPECT_NE(msg.find("900"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(465 + 3 * 160)), std::string::npos) << msg;
  }
  {
    CpcAudio cpc(tiny("same_speaker"));
    auto msg = config_error([&] { cpc.step(batch); });  // no labels
    EXPECT_NE(msg.find("labels"), std::string::npos) << msg;
  }
}

TEST_F(CpcAudioTest, ReadsYamlAndRejectsUnknownKeysAndModes) {
  auto tree = ConfigTree::from_string(
      "method:\n  encoder:\n    channels: 32\n    norm: batch\n  context:\n    type: lstm\n"
      "  negatives:\n    mode: same_speaker\n    count: 64\n",
      "cpc.yaml");
  auto cfg = tree.get<CpcAudioConfig>("method");
  EXPECT_EQ(cfg.encoder.channels, 32);
  EXPECT_EQ(cfg.encoder.norm, "batch");
  EXPECT_EQ(cfg.context.type, "lstm");
  EXPECT_EQ(cfg.negatives.count, 64);
  EXPECT_EQ(cfg.predictor.steps, 12);
  auto msg = config_error([] {
    ConfigTree::from_string("method:\n  negatives:\n    mode: nearest\n", "c.yaml")
        .get<CpcAudioConfig>("method");
  });
  EXPECT_NE(msg.find("'nearest'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("same_speaker"), std::string::npos) << msg;
  msg = config_error([] {
    ConfigTree::from_string("method:\n  predictor:\n    stepz: 3\n", "c.yaml")
        .get<CpcAudioConfig>("method");
  });
  EXPECT_NE(msg.find("method.predictor.stepz"), std::string::npos) << msg;
  msg = config_error([] {
    ConfigTree::from_string("method:\n  loss:\n    temperature: -2\n", "c.yaml")
        .get<CpcAudioConfig>("method");
  });
  EXPECT_NE(msg.find("-2"), std::string::npos) << msg;
  auto bad = tiny();
  bad.negatives.mode = "nearest";
  EXPECT_THROW(CpcAudio{bad}, ConfigError);
}

}  // namespace
}  // namespace contra::method
