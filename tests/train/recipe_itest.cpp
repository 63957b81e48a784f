// Integration: a tiny CPC recipe end to end (corpus → train → resume → probe) through the library
// and through the `contra` binary.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"
#include "tests/support/support.h"
#include "tests/train/tiny_cpc_recipe.h"

namespace contra::train {
namespace {

using contra::testing::TempDir;
namespace fs = std::filesystem;

std::string tiny_recipe(const std::string& root, const std::string& runs) {
  return contra::testing::tiny_cpc_recipe(
      root, runs,
      "train: {steps: 4, batch_size: 4, threads: 1, log_every: 2, checkpoint_every: 2}\n"
      "probe: {train_utterances_per_speaker: 2, epochs: 3, max_train_frames: 1000}\n");
}

TEST(RecipeIntegration, TrainResumeAndProbe) {
  TempDir d;
  auto tree = ConfigTree::from_string(tiny_recipe(d.file("speech"), d.file("runs")), "tiny.yaml");
  Recipe r = load_recipe(tree);
  auto s = train_recipe(r, false);  // generates the corpus first
  EXPECT_TRUE(fs::exists(d.file("speech/corpus.json")));
  EXPECT_EQ(s.steps, 4);
  for (double l : s.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_TRUE(s.metrics.count("acc_1"));
  EXPECT_TRUE(s.metrics.count("acc_3"));
  auto meta = read_checkpoint_meta(latest_checkpoint(r.run_dir()));
  EXPECT_EQ(meta.step, 4);
  // The checkpoint carries the resolved config, which loads back to the same recipe.
  Recipe back = load_recipe(ConfigTree::from_string(meta.config_yaml, "ckpt"));
  EXPECT_EQ(back.resolved_yaml(), r.resolved_yaml());
  // More steps with --resume continue from 4.
  tree.set("train.steps=6");
  auto s2 = train_recipe(load_recipe(tree), true);
  EXPECT_EQ(s2.first_step, 4);
  EXPECT_EQ(s2.steps, 6);

  auto rows = probe_recipe(load_recipe(tree), latest_checkpoint(r.run_dir()), r.run_dir());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].name, "random init");
  EXPECT_EQ(rows[2].dim, 39);
  for (const auto& row : rows) {
    EXPECT_GE(row.phone.test_accuracy, 0.0);
    EXPECT_LE(row.phone.test_accuracy, 1.0);
    EXPECT_EQ(row.speaker.classes, 3);
  }
  auto results = nlohmann::json::parse(read_file(r.run_dir() + "/results.json"));
  EXPECT_EQ(results["rows"].size(), 3u);
  EXPECT_EQ(results["step"], 6);
  EXPECT_TRUE(fs::exists(r.run_dir() + "/results.md"));
}

TEST(RecipeIntegration, BadRecipesNameTheKey) {
  auto expect_config_error = [](const std::string& yaml, const std::string& needle) {
    try {
      load_recipe(ConfigTree::from_string(yaml, "r.yaml"));
      FAIL() << yaml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_config_error("trian: {}\n", "unknown section 'trian'");
  expect_config_error("method: {name: simclr_typo}\n", "unknown method 'simclr_typo'");
  expect_config_error("method: {encoder: {chanels: 3}}\n", "method.encoder.chanels");
  expect_config_error("train: {batch_size: 0}\n", "train.batch_size");
  expect_config_error("optim: {lr: -1}\n", "optim.lr");
  expect_config_error("probe: {baselines: [pixels]}\n", "probe.baselines");
  expect_config_error("run: {name: a/b}\n", "run.name");
}

TEST(RecipeIntegration, WindowAndNegativesCheckedBeforeTraining) {
  TempDir d;
  auto base = tiny_recipe(d.file("speech"), d.file("runs"));
  auto tree = ConfigTree::from_string(base, "tiny.yaml");
  tree.set("data.window=800");  // shorter than receptive field + K steps
  EXPECT_THROW(train_recipe(load_recipe(tree), false), ConfigError);
  auto tree2 = ConfigTree::from_string(base, "tiny.yaml");
  tree2.set("method.negatives.count=100000");
  try {
    train_recipe(load_recipe(tree2), false);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("100000"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d.file("runs/tiny/checkpoints")));
}

TEST(RecipeIntegration, EveryShippedConfigLoads) {
  int n = 0;
  for (auto& e : fs::directory_iterator(contra::testing::source_dir() + "/configs")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    ConfigTree tree = ConfigTree::load_file(e.path().string());
    const std::string modality = method::method_modality(tree);
    if (modality == "image") {
      EXPECT_NO_THROW(load_image_recipe(tree));
    } else if (modality == "image_text" || modality == "audio_image") {
      EXPECT_NO_THROW(load_clip_recipe(tree));
    } else {
      EXPECT_NO_THROW(load_recipe(tree));
    }
    ++n;
  }
  EXPECT_GE(n, 9);
}

TEST(RecipeIntegration, CliTrainAndProbe) {
  TempDir d;
  contra::testing::write_bytes(d.file("tiny.yaml"), tiny_recipe(d.file("speech"), d.file("runs")));
  std::string contra = contra::testing::bin_dir() + "/contra";
  auto train =
      contra::testing::run_command(contra + " train --json --config " + d.file("tiny.yaml"));
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_EQ(nlohmann::json::parse(train.out)["steps"], 4);
  auto again = contra::testing::run_command(contra + " train --config " + d.file("tiny.yaml"));
  EXPECT_EQ(again.exit_code, 2);  // refuses to overwrite the run
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  auto resumed = contra::testing::run_command(contra + " train --resume --run " +
                                              d.file("runs/tiny") + " --set train.steps=5");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto probe = contra::testing::run_command(contra + " probe --json --checkpoint " +
                                            d.file("runs/tiny") + " --set probe.baselines=[mfcc]");
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_EQ(nlohmann::json::parse(probe.out)["rows"].size(), 2u);
  auto missing = contra::testing::run_command(contra + " probe --checkpoint " + d.file("nope"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope"), std::string::npos);
}

}  // namespace
}  // namespace contra::train
