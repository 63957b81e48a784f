#include "contra/data/image_batches.h"

#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::SeededTest;
class ImageBatchesTest : public SeededTest {};

ImageDataset digits(int64_t n) {
  ImageDataset d;
  d.images = torch::randint(0, 256, {n, 1, 28, 28}, torch::kLong).to(torch::kUInt8);
  d.labels = torch::arange(n) % 10;
  for (int c = 0; c < 10; ++c) d.classes.push_back(std::to_string(c));
  return d;
}

transforms::ImageViewsConfig views(const std::string& preset = "simclr") {
  return transforms::read_image_views(ConfigTree(), "augment", preset, 28);
}

TEST_F(ImageBatchesTest, ChannelStatsAndNormalisation) {
  torch::Tensor images = torch::full({4, 2, 3, 3}, 51, torch::kUInt8);  // 0.2
  images.select(1, 1).fill_(0);
  images[0][1].fill_(255);  // channel 1: one image of 1.0, three of 0 → mean 0.25
  ChannelStats s = channel_stats(images);
  ASSERT_EQ(s.mean.size(), 2u);
  EXPECT_NEAR(s.mean[0], 0.2, 1e-9);
  EXPECT_NEAR(s.mean[1], 0.25, 1e-9);
  EXPECT_NEAR(s.std[1], std::sqrt(0.25 * 0.75), 1e-9);
  EXPECT_GT(s.std[0], 0);  // a constant channel gets a floor, not a division by zero
  torch::Tensor x = normalize_images(to_unit_float(images), s);
  EXPECT_NEAR(x.select(1, 1).mean().item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(x.select(1, 1).std(false).item<double>(), 1.0, 1e-5);
  EXPECT_THROW(normalize_images(torch::zeros({1, 3, 2, 2}), s), DataError);
}

TEST_F(ImageBatchesTest, BatchesArePureFunctionsOfIndexAndSeed) {
  ImageBatchSource source(digits(50), channel_stats(digits(50).images), views());
  method::Batch a = source.batch(3, 16, 7), b = source.batch(3, 16, 7), c = source.batch(3, 16, 8);
  ASSERT_EQ(a.views.size(), 2u);
  EXPECT_EQ(a.views[0].sizes(), (std::vector<int64_t>{16, 1, 28, 28}));
  EXPECT_EQ(a.views[0].scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(a.views[0], b.views[0]));
  EXPECT_TRUE(torch::equal(a.views[1], b.views[1]));
  EXPECT_TRUE(torch::equal(a.index, b.index));
  EXPECT_FALSE(torch::equal(a.index, c.index));
  EXPECT_FALSE(torch::equal(a.views[0], a.views[1]));  // two different augmentations
  EXPECT_TRUE(torch::equal(a.labels, a.index % 10));
  EXPECT_TRUE(torch::equal(a.input, a.views[0]));
}

TEST_F(ImageBatchesTest, EachEpochVisitsEveryImageOnce) {
  ImageDataset d = digits(50);
  ImageBatchSource source(d, channel_stats(d.images), views("none"));
  // Batches of 20 over 50 images: positions 0..149 = 3 epochs, crossing epoch boundaries mid-batch.
  std::vector<int64_t> seen;
  for (int64_t i = 0; i < 5; ++i) {
    torch::Tensor idx = source.indices(i, 30, 1);
    for (int64_t j = 0; j < 30; ++j) seen.push_back(idx[j].item<int64_t>());
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::set<int64_t> ids(seen.begin() + epoch * 50, seen.begin() + (epoch + 1) * 50);
    EXPECT_EQ(ids.size(), 50u) << "epoch " << epoch;
  }
  EXPECT_NE(std::vector<int64_t>(seen.begin(), seen.begin() + 50),
            std::vector<int64_t>(seen.begin() + 50, seen.begin() + 100));  // reshuffled
}

TEST_F(ImageBatchesTest, IdentityViewIsTheNormalisedImage) {
  ImageDataset d = digits(8);
  ChannelStats s = channel_stats(d.images);
  ImageBatchSource source(d, s, views("none"));
  method::Batch b = source.batch(0, 8, 1);
  torch::Tensor expected = normalize_images(to_unit_float(d.images.index_select(0, b.index)), s);
  EXPECT_TRUE(torch::allclose(b.views[0], expected, 1e-4, 1e-4));
}

TEST_F(ImageBatchesTest, BadInputs) {
  EXPECT_THROW(ImageBatchSource(ImageDataset{}, ChannelStats{{0.5}, {0.2}}, views()), DataError);
  ImageDataset d = digits(4);
  EXPECT_THROW(ImageBatchSource(d, ChannelStats{{0.5, 0.5, 0.5}, {1, 1, 1}}, views()), DataError);
  EXPECT_THROW(channel_stats(torch::zeros({0, 1, 2, 2}, torch::kUInt8)), DataError);
}

}  // namespace
}  // namespace contra::data
