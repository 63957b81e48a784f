// The trainer writes the rows of metrics.jsonl to a TensorBoard event file too (rank 0), and a
// resumed run's file drops, for TensorBoard, what the previous process logged after the checkpoint.
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "contra/train/trainer.h"
#include "contra/viz/tensorboard.h"
#include "tests/support/support.h"

namespace contra::viz {
namespace {

using contra::testing::TempDir;

// Linear regression onto the sum of the inputs, with an accuracy-like metric.
class Toy : public method::Method {
 public:
  Toy() { linear = register_module("linear", torch::nn::Linear(4, 1)); }
  method::StepOutput step(const method::Batch& batch) override {
    auto target = batch.input.sum(1, true);
    auto loss = torch::mse_loss(linear->forward(batch.input), target);
    const double close = (linear->forward(batch.input) - target)
                             .abs()
                             .lt(0.5)
                             .to(torch::kDouble)
                             .mean()
                             .item<double>();
    return {loss, {{"acc_close", close}}};
  }
  torch::Tensor features(const torch::Tensor& x, const std::string&) override {
    return linear->forward(x);
  }
  std::string name() const override { return "toy"; }
  torch::nn::Linear linear{nullptr};
};

method::Batch batch(std::int64_t i) {
  method::Batch b;
  b.input = torch::arange(32, torch::kFloat32).view({8, 4}).add(i * 7).sin();
  return b;
}

train::TrainConfig config(std::int64_t steps) {
  train::TrainConfig c;
  c.steps = steps;
  c.batch_size = 8;
  c.threads = 1;
  c.log_every = 2;
  c.checkpoint_every = 5;
  c.keep_checkpoints = 5;
  return c;
}

std::vector<nlohmann::json> metrics_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Every numeric field of every metrics.jsonl row is a scalar at the row's step (as a float).
void expect_events_match_metrics(const std::string& run) {
  auto rows = metrics_rows(run + "/metrics.jsonl");
  auto scalars = read_scalars(run + "/tensorboard");
  ASSERT_FALSE(rows.empty());
  for (const char* tag : {"loss", "lr", "items_per_s", "ms_per_batch", "acc_close"}) {
    ASSERT_EQ(scalars[tag].size(), rows.size()) << tag;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(scalars[tag][i].step, rows[i]["step"].get<std::int64_t>()) << tag;
      EXPECT_EQ(scalars[tag][i].value, static_cast<float>(rows[i][tag].get<double>()))
          << tag << " at row " << i;
    }
  }
}

TEST(TrainerEvents, LossScalarsMatchMetricsJsonl) {
  TempDir d;
  train::OptimConfig o;
  o.lr = 0.02;
  torch::manual_seed(1);
  train::Trainer(std::make_shared<Toy>(), config(10), o, d.file("run"), "c").fit(batch, false);
  auto files = event_files(d.file("run/tensorboard"));
  ASSERT_EQ(files.size(), 1u);
  auto events = read_events(files[0]);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  expect_events_match_metrics(d.file("run"));
  auto loss = read_scalars(d.file("run/tensorboard"))["loss"];
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_LT(loss.back().value, loss.front().value);  // it trained
}

TEST(TrainerEvents, ResumeStartsANewFileAndPurgesOrphanedSteps) {
  TempDir d;
  train::OptimConfig o;
  o.lr = 0.02;
  torch::manual_seed(1);
  train::Trainer(std::make_shared<Toy>(), config(8), o, d.file("run"), "c").fit(batch, false);
  // A crash after step 8 was logged but before its checkpoint: the run resumes from step 5.
  remove_all(d.file("run/checkpoints/step-00000008.pt"));
  ASSERT_TRUE(path_exists(d.file("run/checkpoints/step-00000005.pt")));
  remove_all(d.file("run/checkpoints/last"));
  std::filesystem::create_symlink("step-00000005.pt", d.file("run/checkpoints/last"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a later file name
  auto s =
      train::Trainer(std::make_shared<Toy>(), config(12), o, d.file("run"), "c").fit(batch, true);
  ASSERT_EQ(s.first_step, 5);
  EXPECT_EQ(event_files(d.file("run/tensorboard")).size(), 2u);
  std::vector<std::int64_t> steps;
  for (const auto& row : metrics_rows(d.file("run/metrics.jsonl"))) steps.push_back(row["step"]);
  EXPECT_EQ(steps, (std::vector<std::int64_t>{2, 4, 6, 8, 10, 12}));
  expect_events_match_metrics(d.file("run"));
}

}  // namespace
}  // namespace contra::viz
