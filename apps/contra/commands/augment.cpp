// contra augment preview: a PNG grid of augmented views (rows = images, columns = the original and
// then each view), so that a user sees what the model sees before training.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "commands/commands.h"
#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/data/images.h"
#include "contra/transforms/image_views.h"

namespace contra::cli {

namespace {
struct AugmentPreviewOptions {
  std::string data;
  std::string split = "train";
  ConfigOptions config;
  std::optional<std::string> preset;
  std::int64_t images = 8;
  std::int64_t views = 6;
  std::int64_t seed = 1;
  std::int64_t scale = 4;
  std::int64_t pad = 2;
  std::string out;
};

// A resolved value as the user would write it (0.08, not yaml-cpp's 0.080000000000000002).
std::string value_text(const YAML::Node& node) {
  if (!node.IsScalar()) {
    YAML::Emitter e;
    e << YAML::Flow << node;
    return e.c_str();
  }
  try {
    return fmt::format("{}", node.as<double>());
  } catch (const YAML::Exception&) {
    return node.Scalar();
  }
}

int run_augment_preview(const AugmentPreviewOptions& o) {
  if (o.images < 1) throw UsageError(fmt::format("--images must be >= 1 (got {})", o.images));
  if (o.views < 1) throw UsageError(fmt::format("--views must be >= 1 (got {})", o.views));
  if (o.scale < 1) throw UsageError(fmt::format("--scale must be >= 1 (got {})", o.scale));
  if (o.pad < 0) throw UsageError(fmt::format("--pad must be >= 0 (got {})", o.pad));

  ConfigTree tree = o.config.config.empty() ? ConfigTree() : ConfigTree::load_file(o.config.config);
  for (const auto& s : o.config.sets) tree.set(s);
  if (o.preset) tree.set("augment.preset=" + *o.preset);

  const data::ImageDataset ds = data::read_image_dataset(o.data, o.split);
  check<DataError>(ds.size() > 0, "augment preview: '{}' (split {}) holds no images", o.data,
                   o.split);
  const std::int64_t side = std::min(ds.images.size(2), ds.images.size(3));
  const auto config = transforms::read_image_views(tree, "augment", "simclr", side);

  // Image i of the preview is dataset image i·stride: spread over the whole set, deterministic.
  const std::int64_t rows = std::min(o.images, ds.size());
  const std::int64_t stride = std::max<std::int64_t>(1, ds.size() / rows);
  auto index = torch::arange(rows, torch::kInt64) * stride;
  auto originals = ds.images.index_select(0, index).to(torch::kFloat32).div(255.0);

  std::vector<torch::Tensor> columns{originals};
  transforms::MultiView views(config.build(), o.views);
  for (auto& v : views(originals, static_cast<std::uint64_t>(o.seed))) columns.push_back(v);
  const auto grid = data::make_image_grid(columns, o.pad, o.scale);
  data::write_png(o.out, grid);

  auto line = [](const std::string& label, const std::string& text) {
    std::printf("%-29s %s\n", label.c_str(), text.c_str());
  };
  line("preview", o.out);
  line("grid", fmt::format("{}x{} pixels (WxH): {} images x (original + {} views), {}x upscaled",
                           grid.size(2), grid.size(1), rows, o.views, o.scale));
  line("data",
       fmt::format("{} (split {}, {} images of {}x{}x{}; rows: image i*{})", o.data, o.split,
                   ds.size(), ds.images.size(1), ds.images.size(2), ds.images.size(3), stride));
  line("seed", std::to_string(o.seed));
  const YAML::Node resolved = config.to_yaml_node();
  for (const auto& kv : resolved) {
    const auto name = kv.first.as<std::string>();
    std::string text = value_text(kv.second);
    if (name == "views") text += " (per image in training; the grid shows --views)";
    if (name == "blur_kernel" && config.view.blur_kernel == 0)
      text += fmt::format(" (= {} at size {})", config.view.kernel_size(), config.view.size);
    line("augment." + name, text);
  }
  return 0;
}
}  // namespace

void register_augment(CLI::App& app) {
  auto* augment = app.add_subcommand("augment", "inspect image augmentations");
  augment->require_subcommand(1);

  auto p = std::make_shared<AugmentPreviewOptions>();
  auto* preview = augment->add_subcommand(
      "preview",
      "a PNG grid of augmented views: one row per image, the original then each view (the "
      "augment: section of a recipe)");
  preview->add_option("--data,-d", p->data, "dataset folder (MNIST IDX, CIFAR-10 binary, images)")
      ->required();
  preview->add_option("--split", p->split, "split to read (default train)");
  add_config_options(preview, p->config);
  preview->add_option("--preset", p->preset,
                      "augmentation preset: simclr | moco_v1 | moco_v2 | none (overrides "
                      "augment.preset; default simclr)");
  preview->add_option("--images", p->images, "rows: images spread over the set (default 8)");
  preview->add_option("--views", p->views, "augmented views per image (default 6)");
  preview->add_option("--seed", p->seed, "seed of the views (default 1)");
  preview->add_option("--scale", p->scale, "nearest-neighbour upscaling factor (default 4)");
  preview->add_option("--pad", p->pad, "grey pixels between cells (default 2)");
  preview->add_option("--out,-o", p->out, "output PNG file")->required();
  preview->callback([p] { set_runner([p] { return run_augment_preview(*p); }); });
}

}  // namespace contra::cli
