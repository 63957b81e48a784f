#include "contra/train/trainer.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/train/checkpoint.h"
#include "tests/support/support.h"

namespace contra::train {
namespace {

using contra::testing::TempDir;

// A toy method: linear regression y = x·w* + noise, where the noise comes from LibTorch's global
// RNG (so resuming must restore the RNG to reproduce the run), and an optional NaN at a chosen
// step.
class ToyMethod : public method::Method {
 public:
  explicit ToyMethod(int64_t nan_at_call = -1) : nan_at_call_(nan_at_call) {
    linear = register_module("linear", torch::nn::Linear(4, 1));
    register_buffer("calls", torch::zeros({1}, torch::kInt64));
  }
  method::StepOutput step(const method::Batch& batch) override {
    auto target = batch.input.sum(1, true) + 0.01 * torch::randn({batch.input.size(0), 1});
    auto loss = torch::mse_loss(linear->forward(batch.input), target);
    if (calls_++ == nan_at_call_) loss = loss * std::numeric_limits<double>::quiet_NaN();
    return {loss, {{"mse", loss.item<double>()}}};
  }
  void after_optimizer_step(int64_t) override { named_buffers()["calls"].add_(1); }
  torch::Tensor features(const torch::Tensor& x, const std::string&) override {
    return linear->forward(x);
  }
  std::string name() const override { return "toy"; }
  torch::nn::Linear linear{nullptr};

 private:
  int64_t nan_at_call_;
  int64_t calls_ = 0;
};

method::Batch toy_batch(int64_t i, int64_t size = 8) {
  // Deterministic data per micro-batch index, independent of any RNG state.
  auto x = torch::arange(size * 4, torch::kFloat32).view({size, 4}).add(i * 7).sin();
  method::Batch b;
  b.input = x;
  return b;
}

TrainConfig quick(int64_t steps) {
  TrainConfig c;
  c.steps = steps;
  c.batch_size = 8;
  c.threads = 1;
  c.log_every = 2;
  c.checkpoint_every = 5;
  return c;
}

TEST(LearningRate, WarmupConstantAndCosine) {
  OptimConfig c;
  c.lr = 1.0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(learning_rate(c, 0, 100), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(c, 3, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 50, 100), 1.0);
  c.schedule = "cosine";
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(c, 4, 104), 1.0);
  EXPECT_NEAR(learning_rate(c, 54, 104), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate(c, 104, 104), 0.1, 1e-12);
}

TEST(Optimizer, DecayBiasAndNormSwitchesDecayOfOneDimensionalParameters) {
  for (const std::string name : {"adam", "adamw", "sgd"}) {
    for (bool decay_all : {true, false}) {
      OptimConfig c;
      c.name = name;
      c.lr = 0.1;
      c.weight_decay = 0.5;
      c.decay_bias_and_norm = decay_all;
      auto w = torch::ones({2, 2}, torch::requires_grad());
      auto b = torch::ones({2}, torch::requires_grad());
      auto scale = torch::ones({}, torch::requires_grad());
      auto opt = make_optimizer(c, {w, b, scale});
      EXPECT_EQ(opt->param_groups().size(), decay_all ? 1u : 2u) << name;
      // Zero gradients: only weight decay moves a parameter.
      for (auto* p : {&w, &b, &scale}) p->mutable_grad() = torch::zeros_like(*p);
      opt->step();
      EXPECT_LT(w.max().item<double>(), 1.0) << name;
      EXPECT_EQ(b.max().item<double>() < 1.0, decay_all) << name;
      EXPECT_EQ(scale.item<double>() < 1.0, decay_all) << name;
      set_learning_rate(*opt, 0.01);
      for (auto& g : opt->param_groups()) {
        if (name == "adam")
          EXPECT_EQ(static_cast<torch::optim::AdamOptions&>(g.options()).lr(), 0.01);
      }
    }
  }
  OptimConfig lars;
  lars.name = "lars";
  lars.decay_bias_and_norm = false;
  EXPECT_NE(
      contra::testing::config_error([&] { lars.validate(); }).find("lars_exclude_bias_and_norm"),
      std::string::npos);
}

TEST(Trainer, LossFallsAndFilesAreWritten) {
  TempDir d;
  torch::manual_seed(0);
  auto m = std::make_shared<ToyMethod>();
  OptimConfig o;
  o.lr = 0.05;
  Trainer t(m, quick(60), o, d.file("run"), "schema_version: 1\n");
  auto s = t.fit([](int64_t i) { return toy_batch(i); }, false);
  ASSERT_EQ(s.losses.size(), 60u);
  EXPECT_LT(s.losses.back(), s.losses.front() * 0.1);
  EXPECT_EQ(s.steps, 60);
  EXPECT_TRUE(std::filesystem::exists(d.file("run/config.yaml")));
  EXPECT_EQ(latest_checkpoint(d.file("run")), d.file("run/checkpoints/step-00000060.pt"));
  // keep_checkpoints = 2: only the two newest remain.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(d.file("run/checkpoints"))) {
    n += e.path().filename().string().rfind("step-", 0) == 0;
  }
  EXPECT_EQ(n, 2);
  std::ifstream metrics(d.file("run/metrics.jsonl"));
  std::string line;
  int rows = 0;
  while (std::getline(metrics, line)) ++rows;
  EXPECT_EQ(rows, 30);
  auto meta = read_checkpoint_meta(s.checkpoint);
  EXPECT_EQ(meta.step, 60);
  EXPECT_EQ(meta.config_yaml, "schema_version: 1\n");
  // Without --resume an existing run is never overwritten.
  Trainer again(std::make_shared<ToyMethod>(), quick(60), o, d.file("run"), "x");
  EXPECT_THROW(again.fit([](int64_t i) { return toy_batch(i); }, false), IoError);
}

TEST(Trainer, ResumeEqualsUninterrupted) {
  TempDir d;
  OptimConfig o;
  o.lr = 0.02;
  torch::manual_seed(1);
  auto full = std::make_shared<ToyMethod>();
  auto s_full = Trainer(full, quick(12), o, d.file("full"), "c")
                    .fit([](int64_t i) { return toy_batch(i); }, false);

  torch::manual_seed(1);
  auto first = std::make_shared<ToyMethod>();
  auto s1 = Trainer(first, quick(5), o, d.file("split"), "c")
                .fit([](int64_t i) { return toy_batch(i); }, false);
  torch::manual_seed(123);  // a different RNG state: resume must restore the saved one
  auto second = std::make_shared<ToyMethod>();
  auto s2 = Trainer(second, quick(12), o, d.file("split"), "c")
                .fit([](int64_t i) { return toy_batch(i); }, true);
  EXPECT_EQ(s2.first_step, 5);
  ASSERT_EQ(s1.losses.size() + s2.losses.size(), s_full.losses.size());
  for (size_t i = 0; i < s1.losses.size(); ++i) EXPECT_DOUBLE_EQ(s1.losses[i], s_full.losses[i]);
  for (size_t i = 0; i < s2.losses.size(); ++i)
    EXPECT_DOUBLE_EQ(s2.losses[i], s_full.losses[i + 5]) << i;
  EXPECT_TRUE(torch::equal(second->linear->weight, full->linear->weight));
  EXPECT_EQ(second->named_buffers()["calls"].item<int64_t>(), 12);
  // metrics.jsonl of the resumed run: rows at 2, 4, 5 (end of the first run), then 6..12; no
  // duplicates.
  std::ifstream metrics(d.file("split/metrics.jsonl"));
  std::string line;
  std::vector<int64_t> steps;
  while (std::getline(metrics, line)) steps.push_back(nlohmann::json::parse(line)["step"]);
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 5, 6, 8, 10, 12}));
}

// The phase hook (DeepCluster's per-epoch clustering): called at every phase start before any
// batch of the phase is built, again for the phase a resumed run starts in, and the optimizer
// state of the parameters it returns is cleared.
TEST(Trainer, PhaseHookRunsBeforeEachPhasesBatchesAndClearsOptimizerState) {
  TempDir d;
  OptimConfig o;
  o.name = "sgd";
  o.lr = 0.01;
  o.momentum = 0.9;
  auto m = std::make_shared<ToyMethod>();
  std::mutex mutex;
  std::vector<std::string> events;  // "begin <phase> <step>" and "batch <i>", in order
  PhaseHook phases;
  phases.steps = 3;
  phases.begin = [&](int64_t phase, int64_t step) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(fmt::format("begin {} {}", phase, step));
    // With momentum, a cleared state makes the first step of the phase a plain gradient step.
    return std::vector<torch::Tensor>{m->linear->weight};
  };
  TrainConfig c = quick(7);
  c.prefetch = 8;  // the loader would run ahead into the next phase if it could
  c.loader_threads = 2;
  auto batch = [&](int64_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(fmt::format("batch {}", i));
    return toy_batch(i);
  };
  Trainer(m, c, o, d.file("run"), "c").fit(batch, false, phases);
  // Every batch of phase p comes after "begin p" and before "begin p+1".
  int64_t phase = -1;
  std::vector<int64_t> begins;
  for (const auto& e : events) {
    int64_t a = 0, b = 0;
    if (std::sscanf(e.c_str(), "begin %" SCNd64 " %" SCNd64, &a, &b) == 2) {
      EXPECT_EQ(a, phase + 1);
      EXPECT_EQ(b, 3 * a);
      phase = a;
      begins.push_back(a);
    } else {
      ASSERT_EQ(std::sscanf(e.c_str(), "batch %" SCNd64, &a), 1);
      EXPECT_EQ(a / 3, phase) << "batch " << a << " built in phase " << phase;
    }
  }
  EXPECT_EQ(begins, (std::vector<int64_t>{0, 1, 2}));
  // A resumed run (from the last checkpoint, step 7, inside phase 2) starts with "begin 2 7".
  events.clear();
  TrainConfig c9 = quick(9);
  Trainer(m, c9, o, d.file("run"), "c").fit(batch, true, phases);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front(), "begin 2 7");
  // The cleared state: the returned parameter's momentum buffer restarts at each phase. With a
  // hook that clears nothing the weights end elsewhere.
  auto train_with = [&](bool clear) {
    torch::manual_seed(3);
    auto toy = std::make_shared<ToyMethod>();
    PhaseHook h;
    h.steps = 3;
    h.begin = [toy, clear](int64_t, int64_t) {
      return clear ? std::vector<torch::Tensor>{toy->linear->weight} : std::vector<torch::Tensor>{};
    };
    TempDir run;
    Trainer(toy, quick(7), o, run.file("r"), "c")
        .fit([](int64_t i) { return toy_batch(i); }, false, h);
    return toy->linear->weight.detach().clone();
  };
  EXPECT_FALSE(train_with(true).equal(train_with(false)));
}

TEST(Trainer, LarsResumeEqualsUninterrupted) {
  // LARS with momentum 0.9 and a warmup longer than the first run: a resume that lost the momentum
  // buffers (or a set_learning_rate that ignored LarsOptions) would end elsewhere.
  TempDir d;
  OptimConfig o;
  o.name = "lars";
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.lars_eta = 0.5;
  o.warmup_steps = 8;
  torch::manual_seed(4);
  auto full = std::make_shared<ToyMethod>();
  auto initial = full->linear->weight.detach().clone();
  auto s_full = Trainer(full, quick(12), o, d.file("full"), "c")
                    .fit([](int64_t i) { return toy_batch(i); }, false);
  torch::manual_seed(4);
  auto first = std::make_shared<ToyMethod>();
  Trainer(first, quick(5), o, d.file("split"), "c")
      .fit([](int64_t i) { return toy_batch(i); }, false);
  auto second = std::make_shared<ToyMethod>();
  auto s2 = Trainer(second, quick(12), o, d.file("split"), "c")
                .fit([](int64_t i) { return toy_batch(i); }, true);
  EXPECT_EQ(s2.first_step, 5);
  EXPECT_FALSE(torch::allclose(full->linear->weight, initial));
  EXPECT_TRUE(torch::equal(second->linear->weight, full->linear->weight));
  EXPECT_TRUE(torch::equal(second->linear->bias, full->linear->bias));
  EXPECT_LT(s_full.losses.back(), s_full.losses.front());
}

TEST(Trainer, AccumulationEqualsLargerBatch) {
  TempDir d;
  OptimConfig o;
  o.name = "sgd";
  o.momentum = 0;
  o.lr = 0.05;
  // Deterministic targets: no noise, so compare a plain regression.
  struct Plain : ToyMethod {
    method::StepOutput step(const method::Batch& b) override {
      auto loss = torch::mse_loss(linear->forward(b.input), b.input.sum(1, true));
      return {loss, {}};
    }
  };
  torch::manual_seed(3);
  auto a = std::make_shared<Plain>();
  torch::manual_seed(3);
  auto b = std::make_shared<Plain>();
  auto ca = quick(6);
  ca.batch_size = 4;
  ca.accumulation = 2;
  Trainer(a, ca, o, d.file("a"), "c").fit([](int64_t i) { return toy_batch(i, 4); }, false);
  auto cb = quick(6);
  cb.batch_size = 8;
  Trainer(b, cb, o, d.file("b"), "c")
      .fit(
          [](int64_t s) {
            method::Batch out;
            out.input = torch::cat({toy_batch(2 * s, 4).input, toy_batch(2 * s + 1, 4).input});
            return out;
          },
          false);
  EXPECT_TRUE(torch::allclose(a->linear->weight, b->linear->weight, 1e-5, 1e-6));
}

TEST(Trainer, NanLossStopsWithStepAndKeepsLastCheckpoint) {
  TempDir d;
  torch::manual_seed(0);
  auto m = std::make_shared<ToyMethod>(/*nan_at_call=*/7);
  Trainer t(m, quick(20), OptimConfig{}, d.file("run"), "c");
  try {
    t.fit([](int64_t i) { return toy_batch(i); }, false);
    FAIL();
  } catch (const NumericalError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("at step 8"), std::string::npos) << what;
    EXPECT_NE(what.find("step-00000005.pt"), std::string::npos) << what;
  }
  auto last = latest_checkpoint(d.file("run"));
  EXPECT_EQ(read_checkpoint_meta(last).step, 5);
  auto fresh = std::make_shared<ToyMethod>();
  EXPECT_NO_THROW(load_checkpoint(last, *fresh));
}

TEST(Trainer, BadConfigsAndCheckpoints) {
  TrainConfig c;
  c.speakers_per_batch = 3;
  EXPECT_THROW(c.validate(), ConfigError);
  OptimConfig o;
  o.name = "rmsprop";
  EXPECT_THROW(o.validate(), ConfigError);
  TempDir d;
  contra::testing::write_bytes(d.file("bad.pt"), "not a checkpoint");
  EXPECT_THROW(read_checkpoint_meta(d.file("bad.pt")), DataError);
  EXPECT_THROW(resolve_checkpoint(d.file("nothing")), DataError);
  EXPECT_THROW(resolve_checkpoint(d.path()), DataError);
}

}  // namespace
}  // namespace contra::train
