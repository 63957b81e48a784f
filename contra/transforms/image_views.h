#pragma once
/// The `augment:` section of an image recipe: how each training view is made.
///
///   augment:
///     preset: simclr      # simclr | moco_v1 | moco_v2 | none: the defaults of every key below
///     views: 2            # views per image (2 for SimCLR / MoCo)
///     size: 28            # output side; 0 = the data's image side
///     scale_min: 0.3      # ...any ImageAugmentConfig key overrides the preset
///
/// The preset supplies the defaults; keys given in the section replace them. `none` is an identity
/// view (no crop, flip, jitter, grayscale or blur), useful for debugging and as the evaluation
/// view. Every key is checked (unknown keys and bad values are ConfigErrors naming file:line and
/// key).
#include <cstdint>
#include <memory>
#include <string>

#include "contra/core/config.h"
#include "contra/transforms/image_augment.h"

namespace contra::transforms {

struct ImageViewsConfig {
  std::string preset = "simclr";
  std::int64_t views = 2;
  /// The resolved chain settings (preset defaults, then the section's overrides).
  ImageAugmentConfig view;
  /// Multi-crop (Caron et al. 2020, SwAV §3.2): `small_views` extra low-resolution views after the
  /// `views` full-size ones, each a random crop of scale [small_scale_min, small_scale_max] of the
  /// image resized to `small_size` (0 = round(size · 96/224)), otherwise the same chain. The paper:
  /// 2 × 224 (scale 0.14–1) + 6 × 96 (scale 0.05–0.14).
  std::int64_t small_views = 0;
  std::int64_t small_size = 0;
  double small_scale_min = 0.05, small_scale_max = 0.14;

  /// Names accepted by `preset`.
  static const std::vector<std::string>& preset_names();
  /// The defaults of a preset at side `size` (ConfigError for an unknown name).
  static ImageAugmentConfig preset_config(const std::string& preset, std::int64_t size);
  /// The transform of one view.
  std::shared_ptr<Compose> build() const { return view.build(); }
  /// The chain settings of a small (multi-crop) view: `view` with the small size and scale.
  ImageAugmentConfig small_view() const;
  /// The resolved section (preset, views, then every chain key), for config.yaml.
  YAML::Node to_yaml_node() const;
};

/// Reads the section at `path` (e.g. "augment") of `tree`. `default_preset` applies when the
/// section names none; `data_size` is the side used when `size` is absent or 0.
ImageViewsConfig read_image_views(const ConfigTree& tree, const std::string& path,
                                  const std::string& default_preset, std::int64_t data_size);

}  // namespace contra::transforms
