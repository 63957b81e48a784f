// Integration: `finetune` on a tiny CPC recipe (built-in corpus, 2 training steps) through the
// library and through the `contra` binary.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/train/checkpoint.h"
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
      "train: {steps: 2, batch_size: 4, threads: 1, log_every: 1, checkpoint_every: 2}\n"
      "finetune: {fractions: [0.1, 1.0], steps: 3, batch_size: 2, window: 4000,\n"
      "           test_utterances_per_speaker: 1}\n");
}

void expect_config_error(const std::string& yaml, const std::string& needle) {
  try {
    load_recipe(ConfigTree::from_string(yaml, "r.yaml"));
    FAIL() << yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(FinetuneIntegration, BadSectionsNameTheKey) {
  expect_config_error("finetune: {fractions: [0.1, 0]}\n", "finetune.fractions");
  expect_config_error("finetune: {fractions: [1.5]}\n", "finetune.fractions");
  expect_config_error("finetune: {window: 1000}\n", "finetune.window");
  expect_config_error("finetune: {stpes: 3}\n", "finetune.stpes");
}

TEST(FinetuneIntegration, LibraryAndCli) {
  TempDir d;
  auto tree = ConfigTree::from_string(tiny_recipe(d.file("speech"), d.file("runs")), "tiny.yaml");
  Recipe r = load_recipe(tree);
  train_recipe(r, false);  // generates the corpus, 2 steps
  const std::string checkpoint = latest_checkpoint(r.run_dir());

  auto rows = finetune_recipe(r, checkpoint, d.file("out"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].fraction, 0.1);
  EXPECT_EQ(rows[0].pretrained.train_utterances, 1);  // round(0.1 · 9 train utterances)
  EXPECT_GT(rows[1].pretrained.train_utterances, rows[0].pretrained.train_utterances);
  for (const auto& row : rows) {
    ASSERT_TRUE(row.has_scratch);
    EXPECT_EQ(row.pretrained.losses.size(), 3u);
    EXPECT_EQ(row.scratch.train_frames, row.pretrained.train_frames);
    EXPECT_EQ(row.pretrained.test_utterances, 3);  // one per speaker
    for (double acc : {row.pretrained.test_accuracy, row.scratch.test_accuracy}) {
      EXPECT_GE(acc, 0.0);
      EXPECT_LE(acc, 1.0);
    }
  }
  auto results = nlohmann::json::parse(read_file(d.file("out/results_finetune.json")));
  EXPECT_EQ(results["step"], 2);
  ASSERT_EQ(results["rows"].size(), 2u);
  EXPECT_TRUE(results["rows"][0].contains("pretrained_accuracy"));
  EXPECT_TRUE(results["rows"][0].contains("scratch_accuracy"));
  EXPECT_EQ(results["finetune"]["steps"], 3);
  std::string md = read_file(d.file("out/results_finetune.md"));
  EXPECT_NE(md.find("| 10% | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 100% |"), std::string::npos) << md;

  // A corpus without alignments is a DataError naming the file.
  auto no_alignments = tree;
  no_alignments.set("data.alignments=missing.txt");
  try {
    finetune_recipe(load_recipe(no_alignments), checkpoint, d.file("out2"));
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }

  // The binary: defaults to the run directory, --json prints results_finetune.json.
  std::string contra = contra::testing::bin_dir() + "/contra";
  auto run = contra::testing::run_command(contra + " finetune --json --checkpoint " + r.run_dir() +
                                          " --set finetune.fractions=[0.5]" +
                                          " --set finetune.scratch=false");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_FALSE(j["rows"][0].contains("scratch_accuracy"));
  EXPECT_TRUE(fs::exists(r.run_dir() + "/results_finetune.md"));
  auto table =
      contra::testing::run_command(contra + " finetune --checkpoint " + checkpoint + " --out " +
                                   d.file("out3") + " --set finetune.fractions=[0.5]");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("| 50% |"), std::string::npos) << table.out;
  EXPECT_TRUE(fs::exists(d.file("out3/results_finetune.json")));

  auto bad = contra::testing::run_command(contra + " finetune --checkpoint " + r.run_dir() +
                                          " --set finetune.fractions=[2]");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("finetune.fractions"), std::string::npos) << bad.err;
  auto missing = contra::testing::run_command(contra + " finetune --checkpoint " + d.file("nope"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace contra::train
