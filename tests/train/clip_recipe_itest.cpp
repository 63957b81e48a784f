// Integration: the CLIP recipes end to end — captioned MNIST, a users' caption TSV and spoken
// digits ↔ MNIST — through the library and the `contra` binary (train, probe, clip zeroshot,
// clip classify), with their bad-input errors.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/method/clip.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/clip_recipe.h"
#include "tests/support/support.h"
#include "tests/train/fake_digits.h"

namespace contra::train {
namespace {

using contra::testing::TempDir;
using contra::testing::write_digits;

const char* kTinyModel =
    "  embed_dim: 8\n"
    "  image: {type: vit, image_size: 28, patch_size: 7, width: 16, layers: 1, heads: 2}\n";

std::string clip_recipe(const std::string& data, const std::string& runs,
                        const std::string& image = kTinyModel) {
  return "schema_version: 1\n"
         "run: {name: clip, dir: " +
         runs +
         "}\n"
         "data: " +
         data +
         "\n"
         "method:\n  name: clip\n" +
         image +
         "  text: {context_length: 16, width: 16, layers: 1, heads: 2, tokenizer: {vocab_size: "
         "96}}\n"
         "train: {steps: 3, batch_size: 16, threads: 1, log_every: 1, checkpoint_every: 2}\n"
         "optim: {name: adamw, lr: 1.0e-3, warmup_steps: 1}\n"
         "eval: {retrieval_pairs: 20, batch_size: 8}\n"
         "probe: {knn_k: 3, linear_epochs: 5, baselines: [pixels]}\n";
}

ClipRecipe load(const std::string& yaml) {
  return load_clip_recipe(ConfigTree::from_string(yaml, "clip.yaml"));
}

TEST(ClipRecipeIntegration, CaptionedMnistTrainsResumesAndEvaluates) {
  TempDir d;
  write_digits(d.file("mnist"), 60, 30);
  const std::string data = "{format: mnist_captions, root: " + d.file("mnist") +
                           ", generate: false, tokenizer_captions: 300}";
  ClipRecipe r = load(clip_recipe(data, d.file("runs")));
  EXPECT_FALSE(r.audio);
  EXPECT_EQ(r.probe.features, "image");
  auto s = train_clip_recipe(r, false);
  EXPECT_EQ(s.steps, 3);
  for (double l : s.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_TRUE(s.metrics.count("i2t_acc"));
  // The checkpoint carries the tokeniser and the normalisation.
  const std::string ckpt = latest_checkpoint(r.run_dir());
  auto meta = read_checkpoint_meta(ckpt);
  auto tree = ConfigTree::from_string(meta.config_yaml, "ckpt");
  EXPECT_EQ(load_clip_recipe(tree).resolved_yaml(), r.resolved_yaml());
  auto m = std::dynamic_pointer_cast<method::Clip>(method::make_method(tree));
  load_checkpoint(ckpt, *m);
  EXPECT_TRUE(m->has_tokenizer());
  EXPECT_EQ(m->image_stats().first.size(), 1u);
  // Resume to 5 steps, with captions that would train another tokeniser: the run keeps its own.
  r.tree.set("train.steps=5");
  r.train.steps = 5;
  r.data.attribute_p = 1.0;
  auto s2 = train_clip_recipe(r, true);
  EXPECT_EQ(s2.first_step, 3);
  EXPECT_EQ(s2.steps, 5);
  auto resumed = std::dynamic_pointer_cast<method::Clip>(method::make_method(tree));
  load_checkpoint(latest_checkpoint(r.run_dir()), *resumed);
  EXPECT_EQ(resumed->tokenizer().serialized(), m->tokenizer().serialized());
  auto e = evaluate_clip_recipe(r, latest_checkpoint(r.run_dir()), d.file("out"));
  EXPECT_EQ(e.step, 5);
  EXPECT_GE(e.zero_shot, 0.0);
  EXPECT_LE(e.zero_shot, 1.0);
  EXPECT_EQ(e.zero_shot_per_template.size(), 5u);
  ASSERT_EQ(e.retrieval.size(), 4u);
  EXPECT_EQ(e.retrieval_queries, 20);
  for (const auto& rt : e.retrieval) {
    EXPECT_LE(rt.recall.at(1), rt.recall.at(5)) << rt.name;
    EXPECT_LE(rt.recall.at(5), rt.recall.at(10)) << rt.name;
    EXPECT_GT(rt.chance, 0.0) << rt.name;
    EXPECT_LE(rt.chance, 1.0) << rt.name;
  }
  EXPECT_NEAR(e.retrieval[2].chance, 0.1, 1e-9);  // same digit: 2 of each digit among 20 pairs
  ASSERT_EQ(e.attributes.size(), 2u);
  for (const auto& a : e.attributes) {
    EXPECT_GT(a.images, 0) << a.name;
    EXPECT_GE(a.accuracy, 0.0);
    EXPECT_LE(a.accuracy, 1.0);
  }
  ASSERT_EQ(e.probe.size(), 2u);
  EXPECT_EQ(e.probe[0].dim, 16);
  auto j = nlohmann::json::parse(read_file(d.file("out/results.json")));
  EXPECT_TRUE(j.contains("zero_shot"));
  EXPECT_TRUE(j["retrieval"].contains("image→text"));
  EXPECT_NE(read_file(d.file("out/results.md")).find("zero-shot accuracy"), std::string::npos);
}

TEST(ClipRecipeIntegration, CaptionFilesTrainAndRetrieve) {
  TempDir d;
  make_dirs(d.file("pairs"));
  std::string train_tsv, test_tsv;
  const std::vector<std::string> colours = {"red", "green", "blue"};
  for (int i = 0; i < 12; ++i) {
    auto img = torch::zeros({3, 20, 20}, torch::kUInt8);
    img[i % 3].fill_(static_cast<uint8_t>(150 + 8 * i));
    const std::string name = "img" + std::to_string(i) + ".png";
    data::write_png(d.file("pairs/" + name), img);
    (i < 9 ? train_tsv : test_tsv) += name + "\ta " + colours[i % 3] + " square\n";
  }
  write_file_atomic(d.file("pairs/train.tsv"), train_tsv);
  write_file_atomic(d.file("pairs/test.tsv"), test_tsv);
  const std::string data = "{format: tsv, captions: " + d.file("pairs/train.tsv") +
                           ", test_captions: " + d.file("pairs/test.tsv") + "}";
  const std::string image =
      "  embed_dim: 8\n  image: {type: small_cnn, in_channels: 3, image_size: 16, width: 4}\n";
  ClipRecipe r = load(clip_recipe(data, d.file("runs"), image));
  r.train.batch_size = 4;
  auto s = train_clip_recipe(r, false);
  EXPECT_EQ(s.steps, 3);
  auto e = evaluate_clip_recipe(r, latest_checkpoint(r.run_dir()), d.file("out"));
  EXPECT_LT(e.zero_shot, 0);  // no classes: retrieval only
  ASSERT_EQ(e.retrieval.size(), 2u);
  EXPECT_EQ(e.retrieval_queries, 3);
  EXPECT_DOUBLE_EQ(e.retrieval[0].recall.at(10), 1.0);  // 3 items: everything is in the top 10
  EXPECT_TRUE(e.probe.empty());                         // unlabelled
  // A bad line names the file and line.
  write_file_atomic(d.file("pairs/train.tsv"), train_tsv + "missing.png\ta ghost\n");
  contra::testing::expect_data_error(
      [&] { train_clip_recipe(load(clip_recipe(data, d.file("runs2"), image)), false); },
      "train.tsv:10: image 'missing.png' not found");
}

TEST(ClipRecipeIntegration, SpokenDigitsPairWithImagesOfUnseenSpeakers) {
  TempDir d;
  write_digits(d.file("mnist"), 60, 30);
  const std::string yaml =
      "schema_version: 1\n"
      "run: {name: clip_audio, dir: " +
      d.file("runs") +
      "}\n"
      "data: {format: spoken_mnist, root: " +
      d.file("mnist") + ", generate: true, speech_root: " + d.file("spoken") +
      ", speakers: 3, utterances: 10, test_speakers: 1, jobs: 2, clip_seconds: 0.8}\n"
      "method:\n  name: clip_audio\n  embed_dim: 8\n"
      "  image: {type: small_cnn, width: 4}\n"
      "  audio: {encoder: {channels: 8}, context: {hidden: 8}}\n"
      "train: {steps: 2, batch_size: 8, threads: 1, log_every: 1}\n"
      "eval: {retrieval_pairs: 20}\n"
      "probe: {knn_k: 3, linear_epochs: 5, baselines: []}\n";
  ClipRecipe r = load(yaml);
  EXPECT_TRUE(r.audio);
  auto s = train_clip_recipe(r, false);
  EXPECT_EQ(s.steps, 2);
  for (double l : s.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_TRUE(path_exists(d.file("spoken/corpus.json")));
  auto e = evaluate_clip_recipe(r, latest_checkpoint(r.run_dir()), d.file("out"));
  ASSERT_EQ(e.retrieval.size(), 2u);
  EXPECT_EQ(e.retrieval[0].name, "audio→image (same digit)");
  EXPECT_NEAR(e.retrieval[0].chance, 0.1, 0.05);
  EXPECT_EQ(e.retrieval_queries, 10);  // the held-out speaker's 10 words
  EXPECT_EQ(e.retrieval_gallery, 20);
  EXPECT_GE(e.zero_shot, 0.0);
  EXPECT_EQ(e.probe.size(), 1u);
}

TEST(ClipRecipeErrors, MismatchedSectionsNameTheKey) {
  const std::string mnist = "{format: mnist_captions, root: /tmp/none, generate: false}";
  auto error = [&](const std::string& yaml) {
    return contra::testing::config_error([&] { load(yaml); });
  };
  EXPECT_NE(error(clip_recipe("{format: spoken_mnist}", "/tmp")).find("data.format"),
            std::string::npos);
  EXPECT_NE(error(clip_recipe("{format: tsv}", "/tmp")).find("captions: required"),
            std::string::npos);
  EXPECT_NE(
      error(clip_recipe("{format: pictures}", "/tmp")).find("mnist_captions, tsv or spoken_mnist"),
      std::string::npos);
  EXPECT_NE(error(clip_recipe(
                      mnist, "/tmp",
                      "  image: {type: vit, image_size: 32, patch_size: 8, width: 16, heads: 2}\n"))
                .find("1×28×28"),
            std::string::npos);
  EXPECT_NE(error(clip_recipe(mnist, "/tmp") + "augment: {preset: simclr}\n").find("augment"),
            std::string::npos);
  auto r = load(clip_recipe(mnist, "/tmp/clip-none"));
  contra::testing::expect_data_error([&] { train_clip_recipe(r, false); }, "/tmp/none");
}

TEST(ClipCli, TrainZeroShotClassifyAndErrors) {
  TempDir d;
  write_digits(d.file("mnist"), 60, 30);
  const std::string data = "{format: mnist_captions, root: " + d.file("mnist") +
                           ", generate: false, tokenizer_captions: 300}";
  write_file_atomic(d.file("clip.yaml"), clip_recipe(data, d.file("runs")));
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto train = contra::testing::run_command(contra + " train --config " + d.file("clip.yaml") +
                                            " --set train.steps=2 --json");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  EXPECT_TRUE(nlohmann::json::parse(train.out)["metrics"].contains("t2i_acc"));
  const std::string run = d.file("runs/clip");
  auto zs = contra::testing::run_command(contra + " clip zeroshot --checkpoint " + run +
                                         " --limit 20 --template 'a photo of {a}' --json");
  ASSERT_EQ(zs.exit_code, 0) << zs.err;
  auto j = nlohmann::json::parse(zs.out);
  EXPECT_EQ(j["images"], 20);
  EXPECT_EQ(j["classes"].size(), 10u);
  data::write_png(d.file("x.png"), torch::full({1, 28, 28}, 30, torch::kUInt8));
  auto cls = contra::testing::run_command(contra + " clip classify --checkpoint " + run +
                                          " --image " + d.file("x.png") +
                                          " --caption 'a seven' --caption 'a thick two' --json");
  ASSERT_EQ(cls.exit_code, 0) << cls.err;
  auto c = nlohmann::json::parse(cls.out)["captions"];
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0]["probability"].get<double>() + c[1]["probability"].get<double>(), 1.0, 1e-5);
  EXPECT_GE(c[0]["probability"].get<double>(), c[1]["probability"].get<double>());
  auto missing = contra::testing::run_command(contra + " clip classify --checkpoint " + run +
                                              " --image " + d.file("none.png") + " --caption a");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.png"), std::string::npos) << missing.err;
  auto classes = contra::testing::run_command(contra + " clip zeroshot --checkpoint " + run +
                                              " --classes zero,one");
  EXPECT_EQ(classes.exit_code, 2);
  EXPECT_NE(classes.err.find("--classes"), std::string::npos) << classes.err;
  auto finetune = contra::testing::run_command(contra + " finetune --checkpoint " + run);
  EXPECT_EQ(finetune.exit_code, 2);
  auto probe = contra::testing::run_command(contra + " probe --checkpoint " + run +
                                            " --set eval.retrieval_pairs=20");
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_NE(probe.out.find("image→text"), std::string::npos) << probe.out;
}

}  // namespace
}  // namespace contra::train
