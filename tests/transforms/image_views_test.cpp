#include "contra/transforms/image_views.h"

#include <gtest/gtest.h>

#include "contra/core/config.h"
#include "contra/core/error.h"

namespace contra::transforms {
namespace {

ConfigTree yaml(const std::string& text) { return ConfigTree::from_string(text, "recipe.yaml"); }

std::string config_error(const ConfigTree& t) {
  try {
    read_image_views(t, "augment", "simclr", 28);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

TEST(ImageViewsTest, PresetSuppliesDefaultsAndKeysOverride) {
  auto v = read_image_views(yaml("augment:\n  preset: moco_v1\n  blur_p: 0.3\n"), "augment",
                            "simclr", 32);
  EXPECT_EQ(v.preset, "moco_v1");
  EXPECT_EQ(v.views, 2);
  EXPECT_EQ(v.view.size, 32);               // the data's side
  EXPECT_DOUBLE_EQ(v.view.scale_min, 0.2);  // MoCo v1's crop
  EXPECT_DOUBLE_EQ(v.view.jitter_p, 1.0);   // MoCo v1 jitters always
  EXPECT_DOUBLE_EQ(v.view.blur_p, 0.3);     // overridden
}

TEST(ImageViewsTest, DefaultPresetAndSize) {
  auto v = read_image_views(ConfigTree(), "augment", "simclr", 28);
  ImageAugmentConfig simclr = ImageAugmentConfig::simclr(28);
  EXPECT_EQ(v.preset, "simclr");
  EXPECT_DOUBLE_EQ(v.view.brightness, simclr.brightness);
  EXPECT_EQ(v.view.size, 28);
  auto sized = read_image_views(yaml("augment:\n  size: 24\n"), "augment", "simclr", 28);
  EXPECT_EQ(sized.view.size, 24);
  EXPECT_EQ(sized.build()->apply(torch::rand({2, 1, 28, 28}), 1).size(2), 24);
}

TEST(ImageViewsTest, NoneIsAnIdentityView) {
  auto v = read_image_views(yaml("augment:\n  preset: none\n"), "augment", "simclr", 16);
  torch::Tensor x = torch::rand({3, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(v.build()->apply(x, 5), x, 1e-5, 1e-5));
}

TEST(ImageViewsTest, AffineStepIsOffInPresetsAndOnWhenAsked) {
  auto plain = read_image_views(yaml("augment:\n  preset: none\n"), "augment", "simclr", 16);
  EXPECT_DOUBLE_EQ(plain.view.affine_p, 0.0);
  auto turned = read_image_views(
      yaml("augment:\n  preset: none\n  affine_p: 1\n  degrees: 30\n  translate: 0.1\n"), "augment",
      "simclr", 16);
  EXPECT_EQ(turned.build()->steps().size(), plain.build()->steps().size() + 1);
  torch::Tensor x = torch::rand({4, 1, 16, 16});
  torch::Tensor y = turned.build()->apply(x, 3);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_FALSE(torch::allclose(y, x, 1e-3, 1e-3));
  EXPECT_TRUE(torch::equal(y, turned.build()->apply(x, 3)));  // seeded
  std::string e = config_error(yaml("augment:\n  translate: 2\n"));
  EXPECT_NE(e.find("translate"), std::string::npos) << e;
}

TEST(ImageViewsTest, ResolvedSectionRoundTrips) {
  auto v = read_image_views(yaml("augment:\n  preset: moco_v2\n  views: 2\n  solarize_p: 0.1\n"),
                            "augment", "simclr", 32);
  YAML::Node root(YAML::NodeType::Map);
  root["augment"] = v.to_yaml_node();
  auto again = read_image_views(ConfigTree::from_string(yaml_text(root)), "augment", "simclr", 32);
  EXPECT_EQ(again.preset, "moco_v2");
  EXPECT_DOUBLE_EQ(again.view.solarize_p, 0.1);
  EXPECT_DOUBLE_EQ(again.view.scale_min, v.view.scale_min);
}

TEST(ImageViewsTest, ErrorsNameFileLineAndKey) {
  std::string e = config_error(yaml("augment:\n  preset: simclr\n  colour: 1\n"));
  EXPECT_NE(e.find("recipe.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("augment.colour"), std::string::npos) << e;
  e = config_error(yaml("augment:\n  preset: fancy\n"));
  EXPECT_NE(e.find("augment.preset"), std::string::npos) << e;
  EXPECT_NE(e.find("moco_v2"), std::string::npos) << e;  // lists the valid ones
  e = config_error(yaml("augment:\n  views: 0\n"));
  EXPECT_NE(e.find("augment.views"), std::string::npos) << e;
  e = config_error(yaml("augment:\n  flip_p: 1.5\n"));
  EXPECT_NE(e.find("flip_p"), std::string::npos) << e;
  e = config_error(yaml("augment: [1, 2]\n"));
  EXPECT_NE(e.find("mapping"), std::string::npos) << e;
}

}  // namespace
}  // namespace contra::transforms
