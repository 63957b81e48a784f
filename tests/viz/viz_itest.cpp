// Integration: `contra train` → `contra probe` → `contra plot` through the binary, for a tiny
// speech (CPC) and a tiny image (SimCLR) recipe: event files with the training and probe scalars
// (also read by the independent Python reader), the projector sample, and the figures.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "contra/viz/projector.h"
#include "contra/viz/tensorboard.h"
#include "tests/support/support.h"
#include "tests/train/fake_digits.h"
#include "tests/train/tiny_cpc_recipe.h"

namespace contra::viz {
namespace {

using contra::testing::run_command;
using contra::testing::TempDir;

std::vector<nlohmann::json> jsonl(const std::string& text) {
  std::vector<nlohmann::json> rows;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

// Training scalars = metrics.jsonl; probe scalars = results.json at the checkpoint's step.
void check_events(const std::string& run, const std::string& probe_tag, const std::string& key) {
  auto rows = jsonl(read_file(run + "/metrics.jsonl"));
  auto scalars = read_scalars(run + "/tensorboard");
  ASSERT_EQ(scalars["loss"].size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(scalars["loss"][i].step, rows[i]["step"].get<std::int64_t>());
    EXPECT_EQ(scalars["loss"][i].value, static_cast<float>(rows[i]["loss"].get<double>()));
  }
  auto results = nlohmann::json::parse(read_file(run + "/results.json"));
  ASSERT_EQ(scalars[probe_tag].size(), 1u) << probe_tag;
  EXPECT_EQ(scalars[probe_tag][0].step, results["step"].get<std::int64_t>());
  EXPECT_EQ(scalars[probe_tag][0].value, static_cast<float>(results["rows"][0][key].get<double>()));
  // The training event file through the independent Python reader.
  if (!std::filesystem::exists("/usr/bin/python3")) return;
  auto files = event_files(run + "/tensorboard");
  ASSERT_EQ(files.size(), 2u);  // contra train's, contra probe's
  auto py = run_command("/usr/bin/python3 " + contra::testing::source_dir() +
                        "/tests/viz/read_events.py '" + files[0] + "'");
  ASSERT_EQ(py.exit_code, 0) << py.err;
  std::vector<double> losses;
  for (const auto& e : jsonl(py.out)) {
    if (e["scalars"].contains("loss")) losses.push_back(e["scalars"]["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(losses[i], static_cast<double>(static_cast<float>(rows[i]["loss"].get<double>())));
}

void check_plot(const std::string& contra, const std::string& run,
                const std::vector<std::string>& maps) {
  auto plot = run_command(contra + " plot " + run + " --tsne-iterations 250");
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  std::set<std::string> printed;
  for (std::stringstream in(plot.out); !in.eof();) {
    std::string line;
    std::getline(in, line);
    if (!line.empty()) printed.insert(line);
  }
  for (const auto& name : maps) {
    const std::string png = run + "/plots/" + name;
    EXPECT_TRUE(printed.count(png)) << png << " not in:\n" << plot.out;
    ASSERT_TRUE(path_exists(png)) << png;
    const std::string bytes = read_file(png);
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    EXPECT_GT(bytes.size(), 5000u) << png;
  }
}

TEST(VizIntegration, SpeechTrainProbePlot) {
  TempDir d;
  contra::testing::write_bytes(
      d.file("tiny.yaml"),
      contra::testing::tiny_cpc_recipe(
          d.file("speech"), d.file("runs"),
          "train: {steps: 4, batch_size: 4, threads: 1, log_every: 2, checkpoint_every: 2}\n"
          "probe: {train_utterances_per_speaker: 2, epochs: 3, max_train_frames: 1000}\n"));
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto train = run_command(contra + " train --config " + d.file("tiny.yaml"));
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto probe = run_command(contra + " probe --checkpoint " + d.file("runs/tiny") +
                           " --set probe.baselines=[mfcc]");
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  const std::string run = d.file("runs/tiny");
  check_events(run, "probe/model/phone_accuracy", "phone_accuracy");
  EXPECT_EQ(read_scalars(run + "/tensorboard").count("probe/mfcc_13_deltas/speaker_accuracy"), 1u);
  // Projector: test-split frames with phone, speaker and utterance columns.
  EmbeddingSample s = read_projector(run + "/tensorboard/projector");
  EXPECT_EQ(s.columns, (std::vector<std::string>{"phone", "speaker", "utterance"}));
  EXPECT_GT(s.points.size(0), 100);
  EXPECT_LE(s.points.size(0), kProjectorPoints);
  std::set<std::string> speakers;
  for (const auto& row : s.rows) speakers.insert(row[1]);
  EXPECT_EQ(speakers.size(), 3u);
  check_plot(contra, run,
             {"loss.png", "accuracy.png", "lr.png", "embedding_pca_phone.png",
              "embedding_tsne_speaker.png"});
}

TEST(VizIntegration, ImageTrainProbePlot) {
  TempDir d;
  contra::testing::write_digits(d.file("mnist"), 64, 40);
  write_file_atomic(
      d.file("simclr.yaml"),
      "schema_version: 1\nrun: {name: simclr, dir: " + d.file("runs") +
          "}\ndata: {format: mnist, root: " + d.file("mnist") +
          ", generate: false}\nmethod:\n  name: simclr\n  encoder: {width: 4}\n"
          "  projection: {hidden: 16, out: 8}\n  online_probe_classes: 10\n"
          "augment: {preset: simclr, flip_p: 0, scale_min: 0.6}\n"
          "train: {steps: 4, batch_size: 16, threads: 1, log_every: 2, checkpoint_every: 2}\n"
          "optim: {lr: 1.0e-3}\nprobe: {knn_k: 5, linear_epochs: 5, baselines: [pixels]}\n");
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto train = run_command(contra + " train --config " + d.file("simclr.yaml"));
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto probe = run_command(contra + " probe --checkpoint " + d.file("runs/simclr"));
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  const std::string run = d.file("runs/simclr");
  check_events(run, "probe/model/linear_accuracy", "linear_accuracy");
  EXPECT_EQ(read_scalars(run + "/tensorboard").count("probe/raw_pixels/knn_top1"), 1u);
  EmbeddingSample s = read_projector(run + "/tensorboard/projector");
  EXPECT_EQ(s.columns, (std::vector<std::string>{"label", "index"}));
  EXPECT_EQ(s.points.size(0), 40);  // the whole (small) test set
  std::set<std::string> labels;
  for (const auto& row : s.rows) labels.insert(row[0]);
  EXPECT_EQ(labels.size(), 10u);
  check_plot(contra, run,
             {"loss.png", "accuracy.png", "embedding_pca_label.png", "embedding_tsne_label.png"});
}

}  // namespace
}  // namespace contra::viz
