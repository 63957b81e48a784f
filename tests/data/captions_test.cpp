// Captions: pixel attributes of digits, caption templates, and the caption TSV reader.
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/captions.h"
#include "contra/data/images.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::expect_data_error;
using contra::testing::TempDir;

// A vertical stroke of width w from (row 4, col c0) to (row 23, col c1).
torch::Tensor stroke(int64_t c0, int64_t c1, int64_t w) {
  auto img = torch::zeros({1, 1, 28, 28}, torch::kUInt8);
  for (int64_t r = 4; r < 24; ++r) {
    const int64_t c = c0 + (c1 - c0) * (r - 4) / 19;
    img[0][0][r].narrow(0, c, w).fill_(255);
  }
  return img;
}

TEST(DigitAttributes, SlantSignAndInk) {
  auto right = stroke(18, 8, 2);  // top to the right: leans right
  auto left = stroke(8, 18, 2);
  auto upright = stroke(13, 13, 2);
  auto thick = stroke(13, 13, 5);
  auto a = digit_attributes(torch::cat({right, left, upright, thick}));
  EXPECT_GT(a.slant[0].item<float>(), 0.3);
  EXPECT_LT(a.slant[1].item<float>(), -0.3);
  EXPECT_NEAR(a.slant[2].item<float>(), 0.0, 1e-5);
  EXPECT_NEAR(a.ink[2].item<float>(), 40.0, 1e-3);  // 20 rows × 2 pixels
  EXPECT_NEAR(a.ink[3].item<float>(), 100.0, 1e-3);
  // Float images in [0, 1] give the same values.
  auto f = digit_attributes(torch::cat({right, thick}).to(torch::kFloat32) / 255.0);
  EXPECT_NEAR(f.slant[0].item<float>(), a.slant[0].item<float>(), 1e-5);
  EXPECT_NEAR(f.ink[1].item<float>(), 100.0, 1e-3);
}

TEST(DigitAttributes, QuartilesPerClassDescribeEachImage) {
  // Class 0: ink 10, 20, ..., 80 (upright); class 1: slants from left to right.
  DigitAttributes a{
      torch::tensor({10.f, 20.f, 30.f, 40.f, 50.f, 60.f, 70.f, 80.f, 5.f, 5.f, 5.f, 5.f}),
      torch::tensor({0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, -0.5f, -0.1f, 0.1f, 0.5f})};
  auto labels = torch::tensor({0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, torch::kLong);
  auto th = fit_attribute_thresholds(a, labels);
  auto d = describe_digits(a, labels, th);
  EXPECT_EQ(d[0].thickness, -1);
  EXPECT_EQ(d[1].thickness, -1);
  EXPECT_EQ(d[3].thickness, 0);
  EXPECT_EQ(d[7].thickness, 1);
  EXPECT_EQ(d[8].lean, -1);
  EXPECT_EQ(d[9].lean, 0);
  EXPECT_EQ(d[11].lean, 1);
  EXPECT_EQ(d[11].digit, 1);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(d[i].lean, 0);
}

TEST(Captions, TemplatesAreDisjointAndFillable) {
  std::set<std::string> train(train_templates().begin(), train_templates().end());
  for (const auto& t : heldout_templates()) EXPECT_EQ(train.count(t), 0u) << t;
  for (const auto& t : train_templates()) EXPECT_NO_THROW(fill_template(t, "seven"));
  EXPECT_EQ(fill_template("a photo of {a}", "eight"), "a photo of an eight");
  EXPECT_EQ(fill_template("a photo of {a}", "thick eight"), "a photo of a thick eight");
  EXPECT_EQ(fill_template("the digit {}", "one"), "the digit one");
  EXPECT_EQ(fill_template("a photo of {a}", "one"), "a photo of a one");
  EXPECT_EQ(fill_template("a photo of {a}", "upright one"), "a photo of an upright one");
  EXPECT_EQ(contra::testing::config_error([] {
              fill_template("no placeholder", "one");
            }).find("placeholder") != std::string::npos,
            true);
}

TEST(Captions, PhrasesCarryAttributesWithTheirProbability) {
  DigitDescription d{7, 1, 1};
  SplitMix64 rng(1);
  EXPECT_EQ(digit_phrase(d, 1.0, rng), "thick, right-slanted seven");
  EXPECT_EQ(digit_phrase(d, 0.0, rng), "seven");
  DigitDescription thin_left{3, -1, -1};
  EXPECT_EQ(digit_phrase(thin_left, 1.0, rng), "thin, left-slanted three");
  DigitDescription plain{0, 0, 0};
  int upright = 0;
  for (int i = 0; i < 1000; ++i) upright += digit_phrase(plain, 1.0, rng) == "upright zero";
  EXPECT_NEAR(upright / 1000.0, 0.5, 0.05);  // "upright" with half the probability
  int with = 0;
  SplitMix64 r2(2);
  for (int i = 0; i < 1000; ++i) with += digit_phrase(d, 0.5, r2) != "seven";
  EXPECT_NEAR(with / 1000.0, 0.75, 0.05);  // 1 − 0.5²
  // Same seed, same caption.
  SplitMix64 a(9), b(9);
  EXPECT_EQ(make_caption("a scan of {a}", d, 0.5, a), make_caption("a scan of {a}", d, 0.5, b));
}

class CaptionsTsv : public ::testing::Test {
 protected:
  void SetUp() override {
    make_dirs(dir.file("img"));
    write_png(dir.file("img/a.png"), torch::full({3, 8, 8}, 200, torch::kUInt8));
    write_png(dir.file("img/b.png"), torch::full({1, 16, 12}, 50, torch::kUInt8));
  }
  std::string write(const std::string& text) {
    contra::testing::write_bytes(dir.file("c.tsv"), text);
    return dir.file("c.tsv");
  }
  TempDir dir;
};

TEST_F(CaptionsTsv, ReadsPairsRelativeToTheFileAndResizes) {
  auto path = write("# comment\nimg/a.png\ta bright square \n\nimg/b.png\ta dark one\n");
  auto pairs = read_captions_tsv(path);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].caption, "a bright square");
  EXPECT_EQ(pairs[0].line, 2);
  EXPECT_EQ(pairs[1].line, 4);
  auto images = read_caption_images(pairs, path, 3, 8);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_EQ(images[0].max().item<int64_t>(), 200);
  EXPECT_EQ(images[1].min().item<int64_t>(), 50);  // grey → RGB, resized 16×12 → 8×8
}

TEST_F(CaptionsTsv, BadLinesNameFileAndLine) {
  expect_data_error([&] { read_captions_tsv(write("img/a.png a caption without tab\n")); },
                    "c.tsv:1: expected '<image-path><TAB><caption>'");
  expect_data_error([&] { read_captions_tsv(write("img/a.png\tok\nimg/b.png\t  \n")); },
                    "c.tsv:2: empty caption");
  expect_data_error([&] { read_captions_tsv(write("\tcaption\n")); }, "c.tsv:1: empty image path");
  expect_data_error([&] { read_captions_tsv(write("img/a.png\tok\nimg/missing.png\tgone\n")); },
                    "c.tsv:2: image 'img/missing.png' not found");
  expect_data_error([&] { read_captions_tsv(write("# only a comment\n\n")); }, "no '<image-path>");
  contra::testing::write_bytes(dir.file("img/bad.png"), "not a png");
  auto path = write("img/bad.png\ta broken file\n");
  expect_data_error([&] { read_caption_images(read_captions_tsv(path), path, 1, 8); },
                    "c.tsv:1: cannot decode '");
}

}  // namespace
}  // namespace contra::data
