// Integration: tiny SimCLR and MoCo image recipes end to end (train → resume → probe → finetune)
// through the library, and through the `contra` binary.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/eval/image_eval.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/image_recipe.h"
#include "tests/support/support.h"
#include "tests/train/fake_digits.h"

namespace contra::train {
namespace {

using contra::testing::TempDir;
using contra::testing::write_digits;
namespace fs = std::filesystem;

std::string recipe(const std::string& method, const std::string& root, const std::string& runs) {
  std::string m =
      method == "moco"
          ? "method:\n  name: moco\n  encoder: {width: 4}\n  dim: 8\n  queue_size: 64\n"
            "  momentum: 0.9\n  bn_splits: 4\n  mlp: true\n  online_probe_classes: 10\n"
      : method == "barlow_twins"
          ? "method:\n  name: barlow_twins\n  encoder: {width: 4}\n"
            "  projection: {hidden: 16, out: 16, layers: 3}\n  online_probe_classes: 10\n"
      : method == "instance_discrimination"
          ? "method:\n  name: instance_discrimination\n  encoder: {width: 4}\n  embedding: 8\n"
            "  negatives: 32\n  online_probe_classes: 10\n"
      : method == "swav"
          ? "method:\n  name: swav\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
            "  prototypes: 10\n  freeze_prototypes_steps: 1\n  queue_length: 32\n"
            "  queue_start_step: 1\n  online_probe_classes: 10\n"
      : method == "deepcluster"
          ? "method:\n  name: deepcluster\n  encoder: {width: 4}\n"
            "  projection: {hidden: 16, out: 8}\n  clusters: 8\n  pca_dim: 4\n"
            "  online_probe_classes: 10\n"
      : method == "cpc_image"
          ? "method:\n  name: cpc_image\n  encoder: {width: 4}\n  patch_size: 8\n"
            "  patch_stride: 4\n  patch_jitter: 1\n  context: {channels: 8, blocks: 2}\n"
            "  target_dim: 8\n  skip_steps: 1\n  online_probe_classes: 10\n"
      : method == "byol"
          ? "method:\n  name: byol\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
            "  predictor: {hidden: 16, out: 8}\n  online_probe_classes: 10\n"
          : "method:\n  name: simclr\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
            "  online_probe_classes: 10\n";
  return "schema_version: 1\n"
         "run: {name: " +
         method + ", dir: " + runs +
         "}\n"
         "data: {format: mnist, root: " +
         root + ", generate: false}\n" + m + "augment: {preset: simclr, flip_p: 0, scale_min: 0.6" +
         std::string(method == "swav" ? ", small_views: 2, small_size: 12"
                     : method == "deepcluster" || method == "cpc_image" ? ", views: 1"
                                                                        : "") +
         "}\n"
         "train: {steps: 4, batch_size: 16, threads: 1, log_every: 2, checkpoint_every: 2}\n"
         "optim: {lr: 1.0e-3, schedule: cosine, warmup_steps: 1}\n"
         "probe: {knn_k: 5, linear_epochs: 20}\n"
         "finetune: {fractions: [0.2], steps: 3, batch_size: 8}\n";
}

class ImageRecipeIntegration : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageRecipeIntegration, TrainResumeProbeFinetune) {
  TempDir d;
  write_digits(d.file("mnist"), 100, 40);
  auto tree =
      ConfigTree::from_string(recipe(GetParam(), d.file("mnist"), d.file("runs")), "tiny.yaml");
  ImageRecipe r = load_image_recipe(tree);
  auto s = train_image_recipe(r, false);
  EXPECT_EQ(s.steps, 4);
  for (double l : s.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_TRUE(s.metrics.count(GetParam() == "byol"                      ? "byol_loss"
                              : GetParam() == "barlow_twins"            ? "barlow_loss"
                              : GetParam() == "instance_discrimination" ? "instance_loss"
                              : GetParam() == "swav"                    ? "swav_loss"
                              : GetParam() == "cpc_image"               ? "cpc_loss"
                              : GetParam() == "deepcluster"             ? "dc_loss"
                                                                        : "instance_acc"));
  EXPECT_TRUE(s.metrics.count("online_acc"));
  auto meta = read_checkpoint_meta(latest_checkpoint(r.run_dir()));
  EXPECT_EQ(meta.step, 4);
  ImageRecipe back = load_image_recipe(ConfigTree::from_string(meta.config_yaml, "ckpt"));
  EXPECT_EQ(back.resolved_yaml(), r.resolved_yaml());
  EXPECT_NE(meta.config_yaml.find("preset: simclr"), std::string::npos);

  tree.set("train.steps=6");
  auto s2 = train_image_recipe(load_image_recipe(tree), true);
  EXPECT_EQ(s2.first_step, 4);
  EXPECT_EQ(s2.steps, 6);

  const std::string ckpt = latest_checkpoint(r.run_dir());
  auto rows = probe_image_recipe(r, ckpt, r.run_dir());
  // Instance discrimination adds the kNN on its memory bank after the model's row.
  const size_t bank_row = GetParam() == "instance_discrimination" ? 1 : 0;
  ASSERT_EQ(rows.size(), 3u + bank_row);
  if (bank_row) {
    EXPECT_EQ(rows[1].name, "memory bank kNN");
    EXPECT_EQ(rows[1].dim, 8);
    EXPECT_EQ(rows[1].knn.train_size, 100);  // one bank entry per training image
    EXPECT_EQ(rows[1].knn.test_size, 40);
    EXPECT_TRUE(std::isnan(rows[1].linear.test_accuracy));
    EXPECT_NE(read_file(r.run_dir() + "/results.md").find("| memory bank kNN | 8 | — |"),
              std::string::npos);
  }
  EXPECT_EQ(rows[1 + bank_row].name, "random init");
  EXPECT_EQ(rows[2 + bank_row].name, "raw pixels");
  EXPECT_EQ(rows[2 + bank_row].dim, 784);
  EXPECT_EQ(rows[0].dim, 16);
  EXPECT_GT(rows[2 + bank_row].linear.test_accuracy, 0.9);  // linearly separable pixels
  EXPECT_GT(rows[2 + bank_row].knn.top1, 0.9);
  EXPECT_EQ(rows[0].linear.test_size, 40);
  auto json = nlohmann::json::parse(read_file(r.run_dir() + "/results.json"));
  EXPECT_EQ(json["rows"].size(), 3u + bank_row);
  EXPECT_TRUE(fs::exists(r.run_dir() + "/results.md"));

  auto ft = finetune_image_recipe(r, ckpt, r.run_dir());
  ASSERT_EQ(ft.size(), 1u);
  EXPECT_EQ(ft[0].pretrained.labelled, 20);  // 20% of 100, stratified
  EXPECT_TRUE(ft[0].has_scratch);
  EXPECT_EQ(ft[0].scratch.test_size, 40);
  EXPECT_TRUE(fs::exists(r.run_dir() + "/results_finetune.json"));
}

INSTANTIATE_TEST_SUITE_P(Methods, ImageRecipeIntegration,
                         ::testing::Values("simclr", "moco", "byol", "barlow_twins", "cpc_image",
                                           "instance_discrimination", "swav", "deepcluster"));

// The memory-bank kNN row reads bank entry i as training image i: with the bank replaced by every
// training image's embedding (lemniscate's recompute_memory), it must give exactly the kNN of the
// model's own "embedding" row.
TEST(ImageRecipeInstanceDiscrimination, BankKnnWithRecomputedEntriesIsTheEmbeddingKnn) {
  TempDir d;
  write_digits(d.file("mnist"), 100, 40);
  auto tree = ConfigTree::from_string(
      recipe("instance_discrimination", d.file("mnist"), d.file("runs")), "tiny.yaml");
  tree.set("probe.features=embedding");
  tree.set("probe.baselines=[]");
  ImageRecipe r = load_image_recipe(tree);
  train_image_recipe(r, false);
  const std::string ckpt = latest_checkpoint(r.run_dir());
  auto m = std::dynamic_pointer_cast<method::InstanceDiscrimination>(method::make_method(tree));
  ASSERT_TRUE(m);
  load_checkpoint(ckpt, *m);
  m->eval();
  ImageData data = open_image_data(r);
  torch::Tensor train_f = eval::extract_image_features(
      [&](const torch::Tensor& x) { return m->features(x, "embedding"); }, data.train.images,
      data.stats, r.probe.batch_size, torch::kCPU);
  {
    torch::NoGradGuard no_grad;
    m->bank_entries().copy_(train_f);
  }
  torch::optim::SGD sgd(m->trainable_parameters(), 0.1);
  const std::string recomputed =
      save_checkpoint(d.file("recomputed"), *m, sgd, 6, read_checkpoint_meta(ckpt).config_yaml, 1);
  auto rows = probe_image_recipe(r, recomputed, d.file("recomputed"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].name, "memory bank kNN");
  EXPECT_EQ(rows[1].knn.top1, rows[0].knn.top1);
  EXPECT_EQ(rows[1].knn.top5, rows[0].knn.top5);
}

std::string load_error(const std::string& text) {
  try {
    load_image_recipe(ConfigTree::from_string(text, "bad.yaml"));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

TEST(ImageRecipeErrors, NameTheKey) {
  const std::string base = recipe("moco", "/nonexistent", "/tmp/runs");
  std::string e = load_error(base + "data2: {}\n");
  EXPECT_NE(e.find("data2"), std::string::npos) << e;
  auto with = [&](const std::string& assignment) {
    auto t = ConfigTree::from_string(base, "bad.yaml");
    t.set(assignment);
    try {
      load_image_recipe(t);
    } catch (const ConfigError& err) {
      return std::string(err.what());
    }
    return std::string("<no ConfigError>");
  };
  EXPECT_NE(with("train.batch_size=18").find("method.bn_splits"), std::string::npos);
  EXPECT_NE(with("train.batch_size=128").find("method.queue_size"), std::string::npos);
  EXPECT_NE(with("data.format=png").find("data.format"), std::string::npos);
  EXPECT_NE(with("augment.views=3").find("augment.views"), std::string::npos);
  EXPECT_NE(with("method.momentum=1.5").find("momentum"), std::string::npos);
  EXPECT_NE(with("data.format=folder").find("augment.size"), std::string::npos);
}

TEST(ImageRecipeErrors, MissingDataNamesTheFolder) {
  auto r = load_image_recipe(
      ConfigTree::from_string(recipe("simclr", "/nonexistent/mnist", "/tmp"), "x.yaml"));
  try {
    open_image_data(r);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mnist"), std::string::npos) << e.what();
  }
}

TEST(ImageRecipeCli, TrainsAndRejectsBadKeysWithExit2) {
  TempDir d;
  write_digits(d.file("mnist"), 64, 20);
  write_file_atomic(d.file("simclr.yaml"), recipe("simclr", d.file("mnist"), d.file("runs")));
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto ok = contra::testing::run_command(contra + " train --config " + d.file("simclr.yaml") +
                                         " --set train.steps=2 --json");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["steps"], 2);
  EXPECT_TRUE(j["metrics"].contains("instance_acc"));
  auto bad = contra::testing::run_command(contra + " train --config " + d.file("simclr.yaml") +
                                          " --set method.colour=1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("method.colour"), std::string::npos) << bad.err;
  auto probe =
      contra::testing::run_command(contra + " probe --checkpoint " + d.file("runs/simclr") +
                                   " --set probe.knn_k=3 --set probe.linear_epochs=5");
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_NE(probe.out.find("raw pixels"), std::string::npos) << probe.out;
}

}  // namespace
}  // namespace contra::train
