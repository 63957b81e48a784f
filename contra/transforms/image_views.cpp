#include "contra/transforms/image_views.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "contra/core/error.h"

namespace contra::transforms {

const std::vector<std::string>& ImageViewsConfig::preset_names() {
  static const std::vector<std::string> names = {"simclr", "moco_v1", "moco_v2", "none"};
  return names;
}

ImageAugmentConfig ImageViewsConfig::preset_config(const std::string& preset, std::int64_t size) {
  if (preset == "simclr") return ImageAugmentConfig::simclr(size);
  if (preset == "moco_v1") return ImageAugmentConfig::moco_v1(size);
  if (preset == "moco_v2") return ImageAugmentConfig::moco_v2(size);
  if (preset == "none") {
    ImageAugmentConfig c;
    c.size = size;
    c.scale_min = c.scale_max = 1.0;
    c.ratio_min = c.ratio_max = 1.0;
    c.flip_p = c.jitter_p = c.grayscale_p = c.blur_p = c.solarize_p = 0.0;
    return c;
  }
  throw ConfigError(fmt::format("preset: unknown augmentation preset '{}' (valid: {})", preset,
                                fmt::join(preset_names(), ", ")));
}

ImageAugmentConfig ImageViewsConfig::small_view() const {
  ImageAugmentConfig c = view;
  c.size = small_size > 0
               ? small_size
               : std::max<std::int64_t>(
                     1, static_cast<std::int64_t>(std::lround(view.size * 96.0 / 224.0)));
  c.scale_min = small_scale_min;
  c.scale_max = small_scale_max;
  return c;
}

YAML::Node ImageViewsConfig::to_yaml_node() const {
  YAML::Node node(YAML::NodeType::Map);
  node["preset"] = preset;
  node["views"] = views;
  node["small_views"] = small_views;
  node["small_size"] = small_size;
  node["small_scale_min"] = small_scale_min;
  node["small_scale_max"] = small_scale_max;
  YAML::Node chain = to_yaml(view);
  for (const auto& kv : chain) node[kv.first] = kv.second;
  return node;
}

namespace {
// Reads `views`/`preset`/`size` (already handled) and then the chain keys into `view`.
struct ViewsSection {
  ImageViewsConfig* out;
  template <class V>
  void visit(V& v) {
    v("preset", out->preset, "simclr | moco_v1 | moco_v2 | none");
    v("views", out->views, "views per image (>= 1)");
    v("small_views", out->small_views, "multi-crop: extra low-resolution views (>= 0)");
    v("small_size", out->small_size, "multi-crop: side of the small views (0 = size x 96/224)");
    v("small_scale_min", out->small_scale_min, "multi-crop: smallest crop area fraction (0, 1]");
    v("small_scale_max", out->small_scale_max, "multi-crop: largest crop area fraction (0, 1]");
    out->view.visit(v);
  }
};
}  // namespace

ImageViewsConfig read_image_views(const ConfigTree& tree, const std::string& path,
                                  const std::string& default_preset, std::int64_t data_size) {
  check<ConfigError>(data_size > 0, "{}: the data's image side must be > 0 (got {})", path,
                     data_size);
  ImageViewsConfig config;
  YAML::Node section = tree.node(path);
  const bool present = section.IsDefined() && !section.IsNull();
  if (present && !section.IsMap()) {
    throw ConfigError(fmt::format("{}: {}: expected a mapping", tree.where(path, section), path));
  }
  // The preset and the size decide the defaults, so they are read first.
  config.preset = tree.get_string(path + ".preset", default_preset);
  std::int64_t size = data_size;
  if (present && section["size"].IsDefined() && !section["size"].IsNull()) {
    ConfigReader reader(tree, section, path);
    reader.read(section["size"], path + ".size", size);
    if (size == 0) size = data_size;
  }
  try {
    config.view = ImageViewsConfig::preset_config(config.preset, size);
  } catch (const ConfigError& e) {
    const std::string key = path + ".preset";
    throw ConfigError(fmt::format("{}: {}.{}", tree.where(key, tree.node(key)), path, e.what()));
  }
  if (present) {
    ViewsSection wrapper{&config};
    ConfigReader reader(tree, section, path);
    wrapper.visit(reader);
    reader.finish();
    if (config.view.size == 0) config.view.size = data_size;
  }
  const std::string where = tree.where(path, section);
  if (config.views < 1) {
    throw ConfigError(
        fmt::format("{}: {}.views: must be >= 1 (got {})", where, path, config.views));
  }
  if (config.small_views < 0) {
    throw ConfigError(
        fmt::format("{}: {}.small_views: must be >= 0 (got {})", where, path, config.small_views));
  }
  if (config.small_size < 0) {
    throw ConfigError(fmt::format("{}: {}.small_size: must be >= 0 (0 = size x 96/224), got {}",
                                  where, path, config.small_size));
  }
  try {
    config.view.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}.{}", where, path, e.what()));
  }
  if (config.small_views > 0) {
    try {
      config.small_view().validate();
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("{}: {}.small_{}", where, path, e.what()));
    }
  }
  return config;
}

}  // namespace contra::transforms
