#pragma once
/// Evaluation of image representations (the protocol of SimCLR / MoCo / Wu et al. 2018): frozen
/// features → a linear probe and a weighted kNN classifier; and fine-tuning with a fraction of the
/// labels against the same network trained from scratch on them.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

#include "contra/data/image_batches.h"
#include "contra/data/images.h"
#include "contra/eval/knn.h"
#include "contra/eval/linear_probe.h"
#include "contra/method/method.h"

namespace contra::eval {

/// The `probe:` section of image recipes.
struct ImageProbeConfig {
  std::string features = "encoder";  // the method's representation (features kind)
  std::int64_t batch_size = 500;     // images per forward pass when extracting features
  std::string linear_optimizer = "lbfgs";
  std::int64_t linear_epochs = 100;  // L-BFGS iterations or Adam epochs
  double linear_lr = 1.0;
  double linear_weight_decay = 1e-4;
  std::int64_t knn_k = 200;
  double knn_temperature = 0.07;
  std::vector<std::string> baselines = {"random", "pixels"};
  template <class V>
  void visit(V& v) {
    v("features", features, "representation to probe (encoder | projection | ...)");
    v("batch_size", batch_size, "images per forward pass when extracting features");
    v("linear_optimizer", linear_optimizer, "lbfgs (full batch) | adam");
    v("linear_epochs", linear_epochs, "L-BFGS iterations or Adam epochs");
    v("linear_lr", linear_lr, "learning rate of the linear probe");
    v("linear_weight_decay", linear_weight_decay, "L2 penalty λ of the linear probe");
    v("knn_k", knn_k, "neighbours of the kNN classifier (Wu et al.: 200)");
    v("knn_temperature", knn_temperature, "vote weight exp(s/T) of the kNN classifier");
    v("baselines", baselines, "extra rows: random (the untrained network) | pixels (raw pixels)");
  }
  void validate() const;
};

/// The `finetune:` section of image recipes.
struct ImageFinetuneConfig {
  std::vector<double> fractions = {0.01, 0.1};  // of the training images that keep their labels
  std::string features = "encoder";
  std::int64_t steps = 300;
  std::int64_t batch_size = 64;
  double encoder_lr = 1e-3;  // Adam, the network
  double head_lr = 1e-2;     // Adam, the linear classifier
  double weight_decay = 5e-4;
  double crop_scale_min = 0.6;  // random resized crop [min, 1] of the labelled images (1 = none)
  bool scratch = true;
  std::int64_t seed = 1;
  template <class V>
  void visit(V& v) {
    v("fractions", fractions, "fractions of the training images that keep their labels (0, 1]");
    v("features", features, "representation the classifier reads (encoder)");
    v("steps", steps, "optimizer steps per model");
    v("batch_size", batch_size, "labelled images per step");
    v("encoder_lr", encoder_lr, "Adam learning rate of the network");
    v("head_lr", head_lr, "Adam learning rate of the linear classifier");
    v("weight_decay", weight_decay, "L2 penalty (Adam weight_decay) of network and classifier");
    v("crop_scale_min", crop_scale_min, "random resized crop of [min, 1] of the area (1 = off)");
    v("scratch", scratch, "also train the same network from its initial weights");
    v("seed", seed, "seeds the labelled subset, batch order and crops");
  }
  void validate() const;
};

/// Maps a float batch (B, C, H, W), already normalised, to features (B, D).
using ImageFeatureFn = std::function<torch::Tensor(const torch::Tensor&)>;

/// Features of every image of uint8 (N, C, H, W), normalised with `stats`, in batches, no gradient,
/// on `device`; returned on the CPU as float (N, D).
torch::Tensor extract_image_features(const ImageFeatureFn& fn, const torch::Tensor& images,
                                     const data::ChannelStats& stats, std::int64_t batch_size,
                                     const c10::Device& device);

struct ImageProbeRow {
  std::string name;
  std::int64_t dim = 0;
  ProbeResult linear;
  KnnResult knn;
  double seconds = 0;
};

/// Linear probe + kNN of one feature map on train/test, as one row.
ImageProbeRow probe_image_features(const std::string& name, const ImageFeatureFn& fn,
                                   const data::ImageDataset& train, const data::ImageDataset& test,
                                   const data::ChannelStats& stats, const ImageProbeConfig& config,
                                   const c10::Device& device);

/// Markdown table: features, dim, linear top-1, kNN top-1 (and top-5), train/test sizes.
std::string image_probe_markdown(const std::vector<ImageProbeRow>& rows);

struct ImageFinetuneResult {
  double test_accuracy = 0;
  double first_loss = 0, last_loss = 0;
  std::int64_t labelled = 0, test_size = 0, classes = 0;
  double seconds = 0;
};
struct ImageFinetuneRow {
  double fraction = 0;
  ImageFinetuneResult pretrained, scratch;
  bool has_scratch = false;
};

/// Fine-tunes `model` (its `features` representation + a new linear classifier, all trained) on
/// the labelled images `subset` (indices into train) for config.steps Adam steps of
/// config.batch_size seeded random crops, then tests on all of `test`. The classifier's initial
/// weights are seeded by config.seed alone. BatchNorm runs in training
/// mode while training and in eval mode for the test.
ImageFinetuneResult finetune_images(method::Method& model, const data::ImageDataset& train,
                                    const torch::Tensor& subset, const data::ImageDataset& test,
                                    const data::ChannelStats& stats,
                                    const ImageFinetuneConfig& config, const c10::Device& device);

/// Markdown table: fraction, labelled images, pretrained %, scratch %.
std::string image_finetune_markdown(const std::vector<ImageFinetuneRow>& rows);

}  // namespace contra::eval
