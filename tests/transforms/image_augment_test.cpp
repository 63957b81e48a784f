#include "contra/transforms/image_augment.h"

#include <memory>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/data/sentences.h"
#include "tests/support/support.h"

namespace contra::transforms {
namespace {

using contra::testing::SeededTest;
class ImageAugmentTest : public SeededTest {};

torch::Tensor images(int64_t n = 8, int64_t c = 3, int64_t h = 16, int64_t w = 16) {
  return torch::rand({n, c, h, w});
}

/// Every transform, with all probabilities 1 so that each does something.
std::vector<std::pair<std::string, ImageTransformPtr>> all_transforms() {
  return {
      {"crop", std::make_shared<RandomResizedCrop>(RandomResizedCropOptions(12))},
      {"flip", std::make_shared<RandomHorizontalFlip>(1.0)},
      {"affine",
       std::make_shared<RandomAffine>(
           RandomAffineOptions().degrees(30).translate(0.2).scale_min(0.8).scale_max(1.2))},
      {"jitter", std::make_shared<ColorJitter>(
                     ColorJitterOptions().brightness(0.8).contrast(0.8).saturation(0.8).hue(0.2))},
      {"gray", std::make_shared<RandomGrayscale>(1.0)},
      {"blur", std::make_shared<GaussianBlur>(GaussianBlurOptions(5).p(1.0))},
      {"solarize", std::make_shared<Solarize>(0.5, 1.0)},
      {"randaugment", std::make_shared<RandAugment>(RandAugmentOptions().n(3).m(15))},
      {"autoaugment", std::make_shared<AutoAugmentCifar10>()},
      {"simclr", ImageAugmentConfig::simclr(12).build()},
      {"moco_v1", ImageAugmentConfig::moco_v1(12).build()},
      {"moco_v2", ImageAugmentConfig::moco_v2(12).build()},
  };
}

TEST_F(ImageAugmentTest, ShapeDtypeRangeAndSeeding) {
  for (int64_t c : {1, 3}) {
    auto x = images(8, c);
    for (const auto& [name, t] : all_transforms()) {
      SCOPED_TRACE(name + " C=" + std::to_string(c));
      auto y = t->apply(x, 5);
      const bool crops =
          name == "crop" || name.rfind("simclr", 0) == 0 || name.rfind("moco", 0) == 0;
      const int64_t side = crops ? 12 : 16;
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{8, c, side, side}));
      EXPECT_EQ(y.dtype(), torch::kFloat);
      EXPECT_GE(y.min().item<float>(), 0.0f);
      EXPECT_LE(y.max().item<float>(), 1.0f);
      EXPECT_TRUE(torch::equal(y, t->apply(x, 5)));  // same seed → same output
      // With p = 1 and no parameters, flip, grayscale and solarize do not depend on the seed.
      const bool seeded = name != "flip" && name != "gray" && name != "solarize";
      if (seeded) EXPECT_FALSE(torch::equal(y, t->apply(x, 6)));
    }
  }
}

TEST_F(ImageAugmentTest, IndependentOfThreadCount) {
  auto x = images(16);
  auto chain = ImageAugmentConfig::simclr(12).build();
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto one = chain->apply(x, 9);
  torch::set_num_threads(std::max(2, threads));
  auto many = chain->apply(x, 9);
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, many));
}

TEST_F(ImageAugmentTest, ProbabilityZeroIsTheIdentity) {
  auto x = images();
  std::vector<ImageTransformPtr> off{
      std::make_shared<RandomHorizontalFlip>(0.0),
      std::make_shared<RandomAffine>(RandomAffineOptions().degrees(30).p(0)),
      std::make_shared<ColorJitter>(ColorJitterOptions().brightness(0.8).hue(0.2).p(0)),
      std::make_shared<RandomGrayscale>(0.0),
      std::make_shared<GaussianBlur>(GaussianBlurOptions(5).p(0)),
      std::make_shared<Solarize>(0.5, 0.0),
      std::make_shared<RandAugment>(RandAugmentOptions().n(0)),
  };
  for (const auto& t : off) EXPECT_TRUE(torch::equal(t->apply(x, 3), x));
}

TEST_F(ImageAugmentTest, FlipOfAKnownImage) {
  auto x = torch::arange(6, torch::kFloat).view({1, 1, 2, 3}) / 5;
  auto y = RandomHorizontalFlip(1.0)(x, 0);
  auto expected = torch::tensor({2.f, 1.f, 0.f, 5.f, 4.f, 3.f}).view({1, 1, 2, 3}) / 5;
  EXPECT_TRUE(torch::equal(y, expected));
}

TEST_F(ImageAugmentTest, GrayscaleIsItuR601Luma) {
  auto x = images(4, 3);
  auto y = RandomGrayscale(1.0)(x, 0);
  auto luma = 0.299 * x.select(1, 0) + 0.587 * x.select(1, 1) + 0.114 * x.select(1, 2);
  for (int64_t c = 0; c < 3; ++c) EXPECT_TRUE(torch::allclose(y.select(1, c), luma, 1e-6, 1e-6));
}

TEST_F(ImageAugmentTest, BlurKeepsAConstantImage) {
  auto x = torch::full({4, 3, 10, 10}, 0.37f);
  auto y = GaussianBlur(GaussianBlurOptions(7).sigma_min(0.5).sigma_max(3).p(1))(x, 1);
  EXPECT_TRUE(torch::allclose(y, x, 0, 1e-6));
  // Blur smooths: a random image loses variance.
  auto r = images(4, 3);
  auto b = GaussianBlur(GaussianBlurOptions(5).sigma_min(1).sigma_max(2).p(1))(r, 1);
  EXPECT_LT(b.var().item<float>(), r.var().item<float>());
}

TEST_F(ImageAugmentTest, FullSquareCropIsTheIdentity) {
  auto x = images(4, 3, 16, 16);
  RandomResizedCrop crop(
      RandomResizedCropOptions(16).scale_min(1).scale_max(1).ratio_min(1).ratio_max(1));
  EXPECT_TRUE(torch::allclose(crop(x, 2), x, 0, 1e-5));
}

TEST_F(ImageAugmentTest, CropAtTheInputScaleCopiesTheBox) {
  // A 8×8 box resized to 8×8 samples pixel centres: the output is exactly the sliced box.
  auto x = images(6, 3, 16, 20);
  RandomResizedCrop crop(
      RandomResizedCropOptions(8).scale_min(0.2).scale_max(0.2).ratio_min(1).ratio_max(1));
  auto y = crop(x, 4);
  for (int64_t i = 0; i < 6; ++i) {
    auto [top, left, h, w] = crop.sample_box(16, 20, data::mix_seed(4, static_cast<uint64_t>(i)));
    ASSERT_EQ(h, 8);
    ASSERT_EQ(w, 8);
    auto box = x[i].slice(1, top, top + 8).slice(2, left, left + 8);
    EXPECT_TRUE(torch::allclose(y[i], box, 0, 1e-5)) << "sample " << i;
  }
}

TEST_F(ImageAugmentTest, CropBoxFollowsTorchvisionRules) {
  RandomResizedCrop crop(RandomResizedCropOptions(8).scale_min(0.25).scale_max(0.25));
  for (uint64_t s = 0; s < 50; ++s) {
    auto [top, left, h, w] = crop.sample_box(40, 40, s);
    EXPECT_NEAR(static_cast<double>(h * w), 400.0, 45.0);
    EXPECT_GE(top, 0);
    EXPECT_GE(left, 0);
    EXPECT_LE(top + h, 40);
    EXPECT_LE(left + w, 40);
  }
  // Impossible ratios → centre-crop fallback clamped to the ratio range.
  RandomResizedCrop wide(
      RandomResizedCropOptions(8).scale_min(1).scale_max(1).ratio_min(2).ratio_max(2));
  auto box = wide.sample_box(20, 20, 0);
  EXPECT_EQ(box, (std::array<int64_t, 4>{5, 0, 10, 20}));
}

TEST_F(ImageAugmentTest, SolarizeInvertsAboveTheThreshold) {
  auto x = torch::tensor({0.1f, 0.5f, 0.9f}).view({1, 1, 1, 3});
  auto y = Solarize(0.5, 1.0)(x, 0);
  EXPECT_TRUE(torch::allclose(y, torch::tensor({0.1f, 0.5f, 0.1f}).view({1, 1, 1, 3})));
}

TEST_F(ImageAugmentTest, JitterBrightnessOnlyScales) {
  auto x = images(6, 3) * 0.5 + 0.1;
  auto y = ColorJitter(ColorJitterOptions().brightness(0.5))(x, 4);
  auto ratio = (y / x).flatten(1);
  EXPECT_TRUE(torch::allclose(ratio.amin(1), ratio.amax(1), 1e-4, 1e-4));
  // Hue shift of a gray image is the identity (no chroma).
  auto g = torch::full({2, 3, 4, 4}, 0.6f);
  EXPECT_TRUE(torch::allclose(ColorJitter(ColorJitterOptions().hue(0.5))(g, 1), g, 1e-6, 1e-6));
}

TEST_F(ImageAugmentTest, HueKernelMatchesTheTensorFormula) {
  // float CPU input takes the per-pixel loop (torchvision's rgb→hsv→rgb), double the tensor path.
  auto x = images(16, 3, 8, 8);
  ColorJitter hue(ColorJitterOptions().hue(0.5));
  auto fast = hue(x, 3);
  auto reference = hue(x.to(torch::kDouble), 3);
  EXPECT_FALSE(torch::allclose(fast, x, 0, 1e-3));
  EXPECT_TRUE(torch::allclose(fast.to(torch::kDouble), reference, 0, 1e-5));
  // A full turn maps red to red; pure red stays saturated under any shift.
  auto red = torch::zeros({4, 3, 2, 2});
  red.select(1, 0).fill_(1.0);
  auto shifted = hue(red, 1);
  EXPECT_TRUE(torch::allclose(shifted.amax(1), torch::ones({4, 2, 2})));
}

TEST_F(ImageAugmentTest, FusedJitterMatchesTheTensorPath) {
  // float CPU input takes the fused per-image loop, double the batched tensor ops.
  for (int64_t c : {1, 3}) {
    auto x = images(32, c, 9, 7);
    ColorJitter jitter(
        ColorJitterOptions().brightness(0.8).contrast(0.8).saturation(0.8).hue(0.2).p(0.8));
    auto fast = jitter(x, 11).to(torch::kDouble);
    auto reference = jitter(x.to(torch::kDouble), 11);
    EXPECT_TRUE(torch::allclose(fast, reference, 0, 1e-5)) << (fast - reference).abs().max();
  }
}

TEST_F(ImageAugmentTest, CutMixLambdaMatchesTheBox) {
  auto x = images(8, 3, 20, 30);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto r = cutmix(x, 1.0, seed);
    EXPECT_EQ(r.images.sizes(), x.sizes());
    auto [top, left, bottom, right] = r.box;
    const double area = static_cast<double>((bottom - top) * (right - left));
    EXPECT_DOUBLE_EQ(r.lambda, 1.0 - area / 600.0);
    // Pixels that changed lie in the box, and come from the permuted batch.
    auto source = x.index_select(0, r.permutation);
    auto expected = x.clone();
    expected.slice(2, top, bottom)
        .slice(3, left, right)
        .copy_(source.slice(2, top, bottom).slice(3, left, right));
    EXPECT_TRUE(torch::equal(r.images, expected));
    EXPECT_TRUE(torch::equal(std::get<0>(r.permutation.sort()), torch::arange(8)));
  }
  EXPECT_THROW(cutmix(x, 0.0, 1), ConfigError);
}

TEST_F(ImageAugmentTest, PolicyOpSets) {
  EXPECT_EQ(RandAugment::op_names().size(), 14u);
  EXPECT_EQ(AutoAugmentCifar10::policy_size(), 25);
  // Large batches reach every op; the output stays a valid image.
  auto x = images(64, 3, 12, 12);
  for (uint64_t seed = 0; seed < 3; ++seed) {
    auto y = RandAugment(RandAugmentOptions().n(2).m(30))(x, seed);
    EXPECT_TRUE(y.isfinite().all().item<bool>());
    EXPECT_GE(y.min().item<float>(), 0.0f);
    EXPECT_LE(y.max().item<float>(), 1.0f);
  }
}

TEST_F(ImageAugmentTest, MultiViewViewsDiffer) {
  auto x = images();
  MultiView views(ImageAugmentConfig::simclr(12).build(), 2);
  auto v = views(x, 1);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_FALSE(torch::equal(v[0], v[1]));
  EXPECT_TRUE(torch::equal(views(x, 1)[1], v[1]));
}

TEST_F(ImageAugmentTest, MultiCropSizes) {
  auto x = images(4, 3, 32, 32);
  MultiCrop crops(MultiCropOptions().global_size(24).local_size(8).local_crops(4),
                  std::make_shared<RandomHorizontalFlip>(0.5));
  auto v = crops(x, 3);
  ASSERT_EQ(v.size(), 6u);
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t s = i < 2 ? 24 : 8;
    EXPECT_EQ(v[i].sizes(), (std::vector<int64_t>{4, 3, s, s}));
  }
  EXPECT_FALSE(torch::equal(v[0], v[1]));
}

TEST_F(ImageAugmentTest, ConfigPresetsAndValidation) {
  auto simclr = ImageAugmentConfig::simclr(28);
  EXPECT_EQ(simclr.kernel_size(), 3);
  EXPECT_EQ(ImageAugmentConfig::simclr(224).kernel_size(), 23);
  EXPECT_EQ(simclr.build()->steps().size(), 5u);  // crop flip jitter gray blur
  EXPECT_EQ(ImageAugmentConfig::moco_v1(32).build()->steps().size(), 4u);  // no blur
  auto bad = [](auto edit) {
    auto c = ImageAugmentConfig::simclr(32);
    edit(c);
    return c;
  };
  EXPECT_THROW(bad([](auto& c) { c.size = 0; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.scale_min = 0; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.scale_max = 1.5; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.flip_p = 2; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.hue = 0.6; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.blur_kernel = 4; }).validate(), ConfigError);
  EXPECT_THROW(bad([](auto& c) { c.blur_sigma_max = 0.01; }).validate(), ConfigError);
  try {
    bad([](auto& c) { c.jitter_p = -0.1; }).validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("jitter_p"), std::string::npos);
  }
}

TEST_F(ImageAugmentTest, ConfigReadsFromYaml) {
  auto tree = ConfigTree::from_string("augment:\n  size: 28\n  blur_p: 0\n  solarize_p: 0.2\n");
  auto config = tree.get<ImageAugmentConfig>("augment");
  EXPECT_EQ(config.size, 28);
  EXPECT_EQ(config.build()->steps().size(), 5u);  // crop flip jitter gray solarize
  auto bad = ConfigTree::from_string("augment:\n  grayscale_p: 1.5\n");
  try {
    bad.get<ImageAugmentConfig>("augment");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("grayscale_p"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      ConfigTree::from_string("augment:\n  flip: 0.5\n").get<ImageAugmentConfig>("augment"),
      ConfigError);  // unknown key
}

TEST_F(ImageAugmentTest, BadOptionsThrow) {
  EXPECT_THROW(RandomResizedCrop(RandomResizedCropOptions(0)), ConfigError);
  EXPECT_THROW(RandomResizedCrop(RandomResizedCropOptions(8).scale_min(0.9).scale_max(0.5)),
               ConfigError);
  EXPECT_THROW(RandomHorizontalFlip(1.5), ConfigError);
  EXPECT_THROW(RandomAffine(RandomAffineOptions().degrees(-1)), ConfigError);
  EXPECT_THROW(ColorJitter(ColorJitterOptions().brightness(-1)), ConfigError);
  EXPECT_THROW(ColorJitter(ColorJitterOptions().hue(0.7)), ConfigError);
  EXPECT_THROW(RandomGrayscale(-0.1), ConfigError);
  EXPECT_THROW(GaussianBlur(GaussianBlurOptions(4)), ConfigError);
  EXPECT_THROW(GaussianBlur(GaussianBlurOptions(3).sigma_min(0)), ConfigError);
  EXPECT_THROW(Solarize(1.5, 0.5), ConfigError);
  EXPECT_THROW(RandAugment(RandAugmentOptions().m(31)), ConfigError);
  EXPECT_THROW(MultiCrop(MultiCropOptions().global_crops(0).local_crops(0)), ConfigError);
  EXPECT_THROW(RandomHorizontalFlip(0.5)(torch::rand({3, 4, 4}), 0), c10::Error);
  EXPECT_THROW(RandomHorizontalFlip(0.5)(torch::rand({1, 2, 4, 4}), 0), c10::Error);
}

}  // namespace
}  // namespace contra::transforms
