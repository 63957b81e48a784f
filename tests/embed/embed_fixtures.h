#pragma once
// Tiny untrained checkpoints and datasets for the embed / index / search tests: a 10-class
// MNIST-format image set with a SimCLR checkpoint, and a 2-speaker LibriSpeech-layout corpus (noise
// utterances + phone alignments) with a CPC checkpoint.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/fs.h"
#include "contra/data/audio.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"
#include "tests/train/fake_digits.h"

namespace contra::testing {

inline std::string tiny_image_recipe(const std::string& mnist, const std::string& runs) {
  return "schema_version: 1\n"
         "run: {name: simclr, dir: " +
         runs + "}\ndata: {format: mnist, root: " + mnist +
         ", generate: false}\n"
         "method:\n  name: simclr\n  encoder: {width: 4}\n  projection: {hidden: 16, out: 8}\n"
         "augment: {preset: simclr}\n"
         "train: {steps: 1, batch_size: 16, threads: 1}\n";
}

/// Writes MNIST-format digits (train 40, test 30) under dir/mnist and a step-0 SimCLR checkpoint
/// of the recipe under dir/runs/simclr; returns the run directory.
inline std::string make_image_checkpoint(const std::string& dir, std::int64_t test = 30) {
  write_digits(dir + "/mnist", 40, test);
  ConfigTree tree =
      ConfigTree::from_string(tiny_image_recipe(dir + "/mnist", dir + "/runs"), "tiny.yaml");
  train::ImageRecipe r = train::load_image_recipe(tree);
  torch::manual_seed(3);
  auto m = method::make_method(tree);
  torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(0.1));
  train::save_checkpoint(r.run_dir(), *m, sgd, 0, r.resolved_yaml(), 1);
  return r.run_dir();
}

/// A LibriSpeech-layout corpus: speakers 11 and 22, two utterances each (noise of different
/// lengths), train/test splits and converted_aligned_phones.txt with `frames(samples)` labels.
struct TinySpeech {
  std::string root;
  std::vector<std::string> ids;
  std::vector<std::int64_t> samples;
};

inline TinySpeech make_speech_corpus(const std::string& root) {
  TinySpeech t;
  t.root = root;
  torch::manual_seed(5);
  int k = 0;
  for (const char* spk : {"11", "22"}) {
    for (int u = 0; u < 2; ++u, ++k) {
      const std::string id = fmt::format("{}-100-{:04d}", spk, u);
      const std::string dir = fmt::format("{}/{}/100", root, spk);
      make_dirs(dir);
      const std::int64_t n = 4000 + 1600 * k;
      data::write_audio(dir + "/" + id + ".flac", 0.3 * torch::randn({n}).clamp(-3, 3), 16000);
      t.ids.push_back(id);
      t.samples.push_back(n);
    }
  }
  write_file_atomic(root + "/train_split.txt", t.ids[0] + "\n" + t.ids[2] + "\n");
  write_file_atomic(root + "/test_split.txt", t.ids[1] + "\n" + t.ids[3] + "\n");
  return t;
}

/// Writes alignments for the corpus: utterance i gets frames[i] labels (t * 7 + i) % 5.
inline void write_alignments(const TinySpeech& t, const std::vector<std::int64_t>& frames) {
  std::string text;
  for (std::size_t i = 0; i < t.ids.size(); ++i) {
    text += t.ids[i];
    for (std::int64_t f = 0; f < frames[i]; ++f)
      text += " " + std::to_string((f * 7 + static_cast<std::int64_t>(i)) % 5);
    text += "\n";
  }
  write_file_atomic(t.root + "/converted_aligned_phones.txt", text);
}

inline std::string tiny_speech_recipe(const std::string& root, const std::string& runs) {
  return "schema_version: 1\n"
         "run: {name: cpc, dir: " +
         runs + "}\ndata: {root: " + root +
         ", window: 4000, generate: false}\n"
         "method:\n  name: cpc_audio\n  encoder: {channels: 16}\n  context: {hidden: 16}\n"
         "  predictor: {steps: 3}\n  negatives: {count: 8}\n"
         "train: {steps: 1, batch_size: 2, threads: 1}\n";
}

/// A step-0 CPC checkpoint; returns the run directory.
inline std::string make_speech_checkpoint(const std::string& root, const std::string& runs) {
  ConfigTree tree = ConfigTree::from_string(tiny_speech_recipe(root, runs), "tiny_cpc.yaml");
  train::Recipe r = train::load_recipe(tree);
  torch::manual_seed(4);
  auto m = method::make_method(tree);
  torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(0.1));
  train::save_checkpoint(r.run_dir(), *m, sgd, 0, r.resolved_yaml(), 1);
  return r.run_dir();
}

}  // namespace contra::testing
