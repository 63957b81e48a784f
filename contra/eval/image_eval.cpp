#include "contra/eval/image_eval.h"

#include <chrono>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/sentences.h"
#include "contra/transforms/image_augment.h"

namespace contra::eval {

void ImageProbeConfig::validate() const {
  check<ConfigError>(batch_size >= 1, "batch_size: must be >= 1, got {}", batch_size);
  check<ConfigError>(linear_optimizer == "lbfgs" || linear_optimizer == "adam",
                     "linear_optimizer: must be lbfgs or adam, got '{}'", linear_optimizer);
  check<ConfigError>(linear_epochs >= 1, "linear_epochs: must be >= 1, got {}", linear_epochs);
  check<ConfigError>(linear_lr > 0, "linear_lr: must be > 0, got {}", linear_lr);
  check<ConfigError>(linear_weight_decay >= 0, "linear_weight_decay: must be >= 0, got {}",
                     linear_weight_decay);
  check<ConfigError>(knn_k >= 1, "knn_k: must be >= 1, got {}", knn_k);
  check<ConfigError>(knn_temperature > 0, "knn_temperature: must be > 0, got {}", knn_temperature);
  for (const auto& b : baselines) {
    check<ConfigError>(b == "random" || b == "pixels",
                       "baselines: unknown baseline '{}' (valid: random, pixels)", b);
  }
}

void ImageFinetuneConfig::validate() const {
  check<ConfigError>(!fractions.empty(), "fractions: give at least one fraction");
  for (double f : fractions) {
    check<ConfigError>(f > 0 && f <= 1, "fractions: each must be in (0, 1], got {}", f);
  }
  check<ConfigError>(steps >= 1, "steps: must be >= 1, got {}", steps);
  check<ConfigError>(batch_size >= 2, "batch_size: must be >= 2 (BatchNorm), got {}", batch_size);
  check<ConfigError>(encoder_lr > 0, "encoder_lr: must be > 0, got {}", encoder_lr);
  check<ConfigError>(head_lr > 0, "head_lr: must be > 0, got {}", head_lr);
  check<ConfigError>(weight_decay >= 0, "weight_decay: must be >= 0, got {}", weight_decay);
  check<ConfigError>(crop_scale_min > 0 && crop_scale_min <= 1,
                     "crop_scale_min: must be in (0, 1], got {}", crop_scale_min);
}

torch::Tensor extract_image_features(const ImageFeatureFn& fn, const torch::Tensor& images,
                                     const data::ChannelStats& stats, std::int64_t batch_size,
                                     const c10::Device& device) {
  check<ConfigError>(batch_size >= 1, "batch_size: must be >= 1, got {}", batch_size);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  const int64_t n = images.size(0);
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    torch::Tensor x =
        data::normalize_images(data::to_unit_float(images.narrow(0, start, len)), stats);
    torch::Tensor f = fn(x.to(device));
    check<DataError>(f.dim() == 2 && f.size(0) == len,
                     "features: expected ({}, D) features, got {} dimensions of {} rows", len,
                     f.dim(), f.dim() > 0 ? f.size(0) : 0);
    parts.push_back(f.to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(parts, 0);
}

ImageProbeRow probe_image_features(const std::string& name, const ImageFeatureFn& fn,
                                   const data::ImageDataset& train, const data::ImageDataset& test,
                                   const data::ChannelStats& stats, const ImageProbeConfig& config,
                                   const c10::Device& device) {
  config.validate();
  check<DataError>(train.size() > 0 && test.size() > 0, "probe: empty train or test set");
  check<DataError>(
      train.labels.min().item<int64_t>() >= 0 && test.labels.min().item<int64_t>() >= 0,
      "probe: every train and test image needs a label (unlabelled images found)");
  const auto start = std::chrono::steady_clock::now();
  ImageProbeRow row;
  row.name = name;
  torch::Tensor train_x =
      extract_image_features(fn, train.images, stats, config.batch_size, device);
  torch::Tensor test_x = extract_image_features(fn, test.images, stats, config.batch_size, device);
  row.dim = train_x.size(1);
  row.linear = linear_probe(train_x, train.labels, test_x, test.labels,
                            LinearProbeOptions()
                                .optimizer(config.linear_optimizer)
                                .epochs(config.linear_epochs)
                                .lr(config.linear_lr)
                                .weight_decay(config.linear_weight_decay));
  row.knn = knn_classify(train_x, train.labels, test_x, test.labels,
                         KnnOptions().k(config.knn_k).temperature(config.knn_temperature));
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return row;
}

std::string image_probe_markdown(const std::vector<ImageProbeRow>& rows) {
  std::string md =
      "| features | dim | linear top-1 % | kNN top-1 % | kNN top-5 % | train | test | seconds |\n"
      "|---|---|---|---|---|---|---|---|\n";
  // A measure a row does not have (NaN: top-5 of < 5 classes, the linear probe of a kNN-only row).
  auto percent = [](double x) {
    return std::isnan(x) ? std::string("—") : fmt::format("{:.2f}", 100 * x);
  };
  for (const auto& r : rows) {
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.0f} |\n", r.name, r.dim,
                      percent(r.linear.test_accuracy), percent(r.knn.top1), percent(r.knn.top5),
                      r.linear.train_size, r.linear.test_size, r.seconds);
  }
  return md;
}

ImageFinetuneResult finetune_images(method::Method& model, const data::ImageDataset& train,
                                    const torch::Tensor& subset, const data::ImageDataset& test,
                                    const data::ChannelStats& stats,
                                    const ImageFinetuneConfig& config, const c10::Device& device) {
  config.validate();
  check<DataError>(subset.numel() > 0, "finetune: no labelled images");
  const auto start = std::chrono::steady_clock::now();
  ImageFinetuneResult result;
  result.labelled = subset.numel();
  result.test_size = test.size();
  result.classes =
      std::max(train.labels.max().item<int64_t>(), test.labels.max().item<int64_t>()) + 1;
  model.to(device);
  int64_t dim = 0;
  {
    torch::NoGradGuard no_grad;
    model.eval();
    torch::Tensor probe_in = data::normalize_images(
        data::to_unit_float(train.images.index_select(0, subset.narrow(0, 0, 1))), stats);
    dim = model.features(probe_in.to(device), config.features).size(1);
  }
  // The classifier's initial weights depend only on finetune.seed, so that pre-trained and
  // from-scratch runs (and different methods) start from the same head.
  torch::manual_seed(data::mix_seed(static_cast<uint64_t>(config.seed), 0x4ead));
  torch::nn::Linear head(dim, result.classes);
  head->to(device);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      model.trainable_parameters(),
      std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(config.encoder_lr).weight_decay(config.weight_decay)));
  groups.emplace_back(
      head->parameters(),
      std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(config.head_lr).weight_decay(config.weight_decay)));
  torch::optim::Adam optimizer(std::move(groups));
  const int64_t side = train.images.size(2);
  transforms::RandomResizedCrop crop(
      transforms::RandomResizedCropOptions(side).scale_min(config.crop_scale_min).scale_max(1.0));
  const auto seed = static_cast<uint64_t>(config.seed);
  const int64_t n = subset.numel();
  torch::Tensor order;
  int64_t epoch = -1;
  for (int64_t step = 0; step < config.steps; ++step) {
    // Batches cycle through seeded permutations of the labelled subset.
    std::vector<int64_t> pick;
    for (int64_t j = 0; j < config.batch_size; ++j) {
      const int64_t pos = step * config.batch_size + j;
      if (pos / n != epoch) {
        epoch = pos / n;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(
            data::mix_seed(seed, static_cast<uint64_t>(epoch), 0xf1e));
        order = subset.index_select(0, torch::randperm(n, gen, torch::kLong));
      }
      pick.push_back(order[pos % n].item<int64_t>());
    }
    torch::Tensor idx = torch::tensor(pick, torch::kLong);
    torch::Tensor x = data::to_unit_float(train.images.index_select(0, idx));
    if (config.crop_scale_min < 1)
      x = crop.apply(x, data::mix_seed(seed, static_cast<uint64_t>(step), 0xc0));
    x = data::normalize_images(x, stats).to(device);
    torch::Tensor y = train.labels.index_select(0, idx).to(device);
    model.train();
    head->train();
    optimizer.zero_grad();
    torch::Tensor loss =
        torch::nn::functional::cross_entropy(head->forward(model.features(x, config.features)), y);
    const double value = loss.item<double>();
    check<NumericalError>(std::isfinite(value), "finetune: loss is {} at step {} (lower the lr)",
                          value, step + 1);
    loss.backward();
    optimizer.step();
    if (step == 0) result.first_loss = value;
    result.last_loss = value;
  }
  model.eval();
  head->eval();
  torch::Tensor logits = extract_image_features(
      [&](const torch::Tensor& x) { return head->forward(model.features(x, config.features)); },
      test.images, stats, 500, device);
  result.test_accuracy = logits.argmax(1).eq(test.labels).to(torch::kDouble).mean().item<double>();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string image_finetune_markdown(const std::vector<ImageFinetuneRow>& rows) {
  std::string md =
      "| labels | labelled images | pretrained % | from scratch % | test images | seconds |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    md += fmt::format("| {:g}% | {} | {:.2f} | {} | {} | {:.0f} |\n", 100 * r.fraction,
                      r.pretrained.labelled, 100 * r.pretrained.test_accuracy,
                      r.has_scratch ? fmt::format("{:.2f}", 100 * r.scratch.test_accuracy) : "—",
                      r.pretrained.test_size,
                      r.pretrained.seconds + (r.has_scratch ? r.scratch.seconds : 0.0));
  }
  return md;
}

}  // namespace contra::eval
