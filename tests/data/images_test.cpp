#include "contra/data/images.h"

#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "tests/support/support.h"

// Declarations only: the library's contra/data/stb_image_impl.cpp holds the one stb_image and
// stb_image_write implementation (the fixtures are written and read back with it).
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

namespace contra::data {
namespace {

using contra::testing::TempDir;
using contra::testing::write_bytes;

using contra::testing::expect_data_error;

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  return s;
}

std::vector<int64_t> values(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

torch::Tensor random_images(std::int64_t n, std::int64_t h, std::int64_t w) {
  return torch::randint(0, 256, {n, 1, h, w}, torch::kInt64).to(torch::kUInt8);
}

TEST(Idx, RoundTripBytesAndShapes) {
  TempDir d;
  torch::manual_seed(0);
  auto images = random_images(5, 28, 28);
  auto labels = torch::tensor({3, 1, 4, 1, 5}, torch::kInt64);
  write_idx_images(d.file("train-images-idx3-ubyte"), images);
  write_idx_labels(d.file("train-labels-idx1-ubyte"), labels);
  auto bytes = read_file(d.file("train-images-idx3-ubyte"));
  ASSERT_EQ(bytes.size(), 16u + 5 * 784);
  EXPECT_EQ(bytes.substr(0, 16), be32(0x803) + be32(5) + be32(28) + be32(28));
  EXPECT_EQ(read_file(d.file("train-labels-idx1-ubyte")),
            be32(0x801) + be32(5) + std::string("\x03\x01\x04\x01\x05", 5));
  auto ds = read_mnist(d.path(), "train");
  EXPECT_TRUE(torch::equal(ds.images, images));
  EXPECT_TRUE(torch::equal(ds.labels, labels));
  EXPECT_EQ(ds.images.sizes().vec(), (std::vector<int64_t>{5, 1, 28, 28}));
  EXPECT_EQ(ds.classes.size(), 10u);
}

TEST(Idx, WrongMagicAndGzipAreNamed) {
  TempDir d;
  write_bytes(d.file("a"), be32(0x801) + be32(1) + be32(2) + be32(2) + std::string(4, 'x'));
  expect_data_error([&] { read_idx_images(d.file("a")); },
                    "wrong magic (got 0x00000801, expected 0x00000803)");
  write_bytes(d.file("g"), std::string("\x1f\x8b\x08\x00", 4) + std::string(40, '\0'));
  expect_data_error([&] { read_idx_images(d.file("g")); }, "gzip-compressed");
  expect_data_error([&] { read_idx_labels(d.file("missing")); }, "does not exist");
  write_bytes(d.file("empty"), "");
  expect_data_error([&] { read_idx_labels(d.file("empty")); }, "too short for its header");
}

TEST(Idx, TruncatedAndOversizedFiles) {
  TempDir d;
  // 3 images of 2x2 claimed, only 11 bytes of data.
  write_bytes(d.file("t"), be32(0x803) + be32(3) + be32(2) + be32(2) + std::string(11, 'x'));
  expect_data_error([&] { read_idx_images(d.file("t")); },
                    "wrong size for dims 3x2x2 (got 27 bytes, expected 28");
  write_bytes(d.file("l"), be32(0x801) + be32(4) + std::string(5, 'x'));
  expect_data_error([&] { read_idx_labels(d.file("l")); }, "expected 12");
}

TEST(Idx, HugeClaimedDimsNeverAllocate) {
  TempDir d;
  write_bytes(d.file("h"),
              be32(0x803) + be32(0xffffffff) + be32(0xffffffff) + be32(0xffffffff) + "abc");
  expect_data_error([&] { read_idx_images(d.file("h")); },
                    "header claims dims 4294967295x4294967295x4294967295");
  write_bytes(d.file("h1"), be32(0x801) + be32(0x7fffffff) + "abc");
  expect_data_error([&] { read_idx_labels(d.file("h1")); },
                    "wrong size for dims 2147483647 (got 11 bytes, expected 2147483655");
  // Real MNIST dims over a tiny file: refused from the header alone.
  write_bytes(d.file("m"), be32(0x803) + be32(60000) + be32(28) + be32(28) + "abc");
  expect_data_error([&] { read_idx_images(d.file("m")); }, "expected 47040016 = 16 header");
}

TEST(Idx, ImageAndLabelCountsMustAgree) {
  TempDir d;
  write_idx_images(d.file("t10k-images-idx3-ubyte"), random_images(3, 4, 4));
  write_idx_labels(d.file("t10k-labels-idx1-ubyte"), torch::tensor({1, 2}, torch::kInt64));
  expect_data_error([&] { read_mnist(d.path(), "test"); },
                    "holds 3 images but '" + d.file("t10k-labels-idx1-ubyte") + "' holds 2 labels");
  write_idx_labels(d.file("t10k-labels-idx1-ubyte"), torch::tensor({1, 2, 12}, torch::kInt64));
  expect_data_error([&] { read_mnist(d.path(), "test"); }, "label 12 (expected 0..9)");
  EXPECT_THROW(read_mnist(d.path(), "valid"), ConfigError);
}

std::string cifar_record(int label, int fill) {
  return std::string(1, static_cast<char>(label)) + std::string(3072, static_cast<char>(fill));
}

TEST(Cifar, ReadsRecordsChannelMajor) {
  TempDir d;
  std::string rec = cifar_record(7, 0);
  for (int i = 0; i < 1024; ++i) {  // R plane 10, G plane 20, B plane 30
    rec[1 + i] = 10;
    rec[1 + 1024 + i] = 20;
    rec[1 + 2048 + i] = 30;
  }
  write_bytes(d.file("b.bin"), rec + cifar_record(2, 5));
  auto ds = read_cifar10_batch(d.file("b.bin"), 2);
  EXPECT_EQ(ds.images.sizes().vec(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_EQ(ds.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(ds.labels[1].item<int64_t>(), 2);
  EXPECT_EQ(ds.images[0][1][31][31].item<int>(), 20);
  EXPECT_EQ(ds.images[0][2][0][0].item<int>(), 30);
  EXPECT_EQ(ds.classes[7], "horse");
  EXPECT_EQ(read_cifar10_batch(d.file("b.bin"), 0).size(), 2);
}

TEST(Cifar, WrongSizeNamesFileAndExpectedSize) {
  TempDir d;
  write_bytes(d.file("test_batch.bin"), cifar_record(1, 0) + "xyz");
  expect_data_error([&] { read_cifar10(d.path(), false); },
                    d.file("test_batch.bin") +
                        "' has the wrong size (got 3076 bytes, expected "
                        "30730000 = 10000 records");
  expect_data_error([&] { read_cifar10_batch(d.file("test_batch.bin"), 0); },
                    "expected a positive multiple of 3073");
  write_bytes(d.file("bad.bin"), cifar_record(11, 0));
  expect_data_error([&] { read_cifar10_batch(d.file("bad.bin"), 1); }, "record 0 has label 11");
}

void write_fixture_png(const std::string& path, int w, int h, int channels, int value) {
  std::vector<unsigned char> px(static_cast<std::size_t>(w * h * channels));
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(value + i % 3);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, channels, px.data(), w * channels));
}

TEST(ImageFolder, TwoClassesSortedWithLabels) {
  TempDir d;
  write_fixture_png(d.file("zebra/b.png"), 4, 3, 3, 100);
  write_fixture_png(d.file("zebra/a.PNG"), 4, 3, 3, 110);
  write_fixture_png(d.file("ant/x.png"), 4, 3, 1, 50);  // grey, converted to RGB
  write_bytes(d.file("ant/notes.txt"), "ignored");
  auto ds = read_image_folder(d.path());
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(ds.images.sizes().vec(), (std::vector<int64_t>{3, 3, 3, 4}));
  EXPECT_EQ(values(ds.labels), (std::vector<int64_t>{0, 1, 1}));
  // RGB pixel (0,0) of zebra/a.PNG: values 110, 111, 112 → channel-major.
  EXPECT_EQ(ds.images[1][0][0][0].item<int>(), 110);
  EXPECT_EQ(ds.images[1][1][0][0].item<int>(), 111);
  EXPECT_EQ(ds.images[1][2][0][0].item<int>(), 112);
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 50);
  EXPECT_EQ(ds.images[0][2][0][0].item<int>(), 50);
  ImageFolderOptions grey;
  grey.channels = 1;
  EXPECT_EQ(read_image_folder(d.path(), grey).images.size(1), 1);
}

TEST(ImageFolder, UnlabelledImagesDirectlyUnderRoot) {
  TempDir d;
  write_fixture_png(d.file("1.png"), 2, 2, 3, 0);
  write_fixture_png(d.file("2.png"), 2, 2, 3, 9);
  std::vector<unsigned char> grey(4, 128);  // a JPEG too (lossy: only the shape is exact)
  ASSERT_TRUE(stbi_write_jpg(d.file("3.jpeg").c_str(), 2, 2, 1, grey.data(), 95));
  auto ds = read_image_folder(d.path());
  EXPECT_TRUE(ds.classes.empty());
  EXPECT_EQ(values(ds.labels), (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_EQ(ds.images.sizes().vec(), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_NEAR(ds.images[2][1][1][1].item<int>(), 128, 3);
}

TEST(ImageFolder, BadInputsNameTheFile) {
  TempDir d;
  write_fixture_png(d.file("cat/a.png"), 2, 2, 3, 0);
  write_bytes(d.file("cat/broken.jpg"), "this is not a jpeg");
  expect_data_error([&] { read_image_folder(d.path()); },
                    "cannot decode '" + d.file("cat/broken.jpg") + "'");
  remove_all(d.file("cat/broken.jpg"));
  write_fixture_png(d.file("cat/big.png"), 3, 2, 3, 0);
  expect_data_error([&] { read_image_folder(d.path()); }, "big.png' is 3x2 (expected 2x2");
  remove_all(d.file("cat/big.png"));
  make_dirs(d.file("dog"));
  expect_data_error([&] { read_image_folder(d.path()); }, "'" + d.file("dog") + "' holds no");
  remove_all(d.file("dog"));
  write_fixture_png(d.file("stray.png"), 2, 2, 3, 0);
  expect_data_error([&] { read_image_folder(d.path()); }, "both directly inside");
  TempDir empty;
  expect_data_error([&] { read_image_folder(empty.path()); }, "no .png/.jpg/.jpeg images");
  expect_data_error([&] { read_image_folder(empty.file("nope")); }, "is not a folder");
}

TEST(DescribeImageDataset, DetectsEachFormat) {
  TempDir d;
  make_dirs(d.file("mnist"));
  write_idx_images(d.file("mnist/train-images-idx3-ubyte"), random_images(3, 28, 28));
  write_idx_labels(d.file("mnist/train-labels-idx1-ubyte"), torch::tensor({0, 0, 9}));
  auto m = describe_image_dataset(d.file("mnist"));
  EXPECT_EQ(m.format, "mnist-idx");
  ASSERT_EQ(m.splits.size(), 1u);
  EXPECT_EQ(m.splits[0].per_class[0], 2);
  EXPECT_EQ(m.height, 28);
  write_fixture_png(d.file("folder/a/1.png"), 5, 6, 3, 0);
  auto f = describe_image_dataset(d.file("folder"));
  EXPECT_EQ(f.format, "image-folder");
  EXPECT_EQ(f.width, 5);
  EXPECT_EQ(f.classes, (std::vector<std::string>{"a"}));
}

// Decodes PNG bytes with stb_image into uint8 (C, H, W), C = the file's own channel count.
torch::Tensor decode_png(const std::string& bytes) {
  int w = 0, h = 0, c = 0;
  const auto* buf = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  EXPECT_TRUE(stbi_info_from_memory(buf, len, &w, &h, &c)) << stbi_failure_reason();
  stbi_uc* px = stbi_load_from_memory(buf, len, &w, &h, &c, c);
  if (!px) return {};
  auto out = torch::from_blob(px, {h, w, c}, torch::kUInt8).permute({2, 0, 1}).clone();
  stbi_image_free(px);
  return out;
}

TEST(WritePng, RoundTripsGreyRgbAndRgba) {
  TempDir d;
  torch::manual_seed(0);
  for (std::int64_t c : {1, 3, 4}) {
    auto image = torch::randint(0, 256, {c, 7, 5}, torch::kInt64).to(torch::kUInt8);
    const std::string path = d.file("img" + std::to_string(c) + ".png");
    write_png(path, image);
    const std::string bytes = read_file(path);
    EXPECT_EQ(bytes.substr(1, 3), "PNG");
    EXPECT_EQ(bytes, encode_png(image));  // deterministic
    auto back = decode_png(bytes);
    ASSERT_TRUE(back.defined());
    EXPECT_TRUE(torch::equal(back, image)) << "channels " << c;
  }
  // A non-contiguous view is written as its pixels.
  auto wide = torch::randint(0, 256, {3, 4, 6}, torch::kInt64).to(torch::kUInt8);
  auto view = wide.transpose(1, 2);
  write_png(d.file("t.png"), view);
  EXPECT_TRUE(torch::equal(decode_png(read_file(d.file("t.png"))), view));
}

TEST(WritePng, BadImagesAndPaths) {
  TempDir d;
  EXPECT_THROW(write_png(d.file("a.png"), torch::zeros({2, 4, 4}, torch::kUInt8)), ConfigError);
  EXPECT_THROW(write_png(d.file("a.png"), torch::zeros({3, 4, 4}, torch::kFloat32)), ConfigError);
  EXPECT_THROW(write_png(d.file("a.png"), torch::zeros({4, 4}, torch::kUInt8)), ConfigError);
  try {
    write_png(d.file("no/such/dir/a.png"), torch::zeros({1, 4, 4}, torch::kUInt8));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("a.png"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(path_exists(d.file("a.png")));
}

TEST(ImageGrid, LayoutScaleAndPadding) {
  // 2 images (rows) × 3 columns of 1×2×3 images, pad 1, scale 2 → cells of 4×6.
  auto a = torch::zeros({2, 1, 2, 3});
  auto b = torch::ones({2, 1, 2, 3});
  auto c = torch::arange(12, torch::kFloat32).reshape({2, 1, 2, 3}) / 11.0;
  auto grid = make_image_grid({a, b, c}, /*pad=*/1, /*scale=*/2);
  EXPECT_EQ(grid.scalar_type(), torch::kUInt8);
  EXPECT_EQ(grid.sizes().vec(), (std::vector<int64_t>{1, 2 * 4 + 3, 3 * 6 + 4}));
  // Padding is grey: the corner, the gap between columns, the gap between rows.
  EXPECT_EQ(grid[0][0][0].item<int>(), 128);
  EXPECT_EQ(grid[0][1][7].item<int>(), 128);
  EXPECT_EQ(grid[0][5][1].item<int>(), 128);
  // Column 0 (zeros) starts at (1, 1); column 1 (ones) at x = 1 + 6 + 1 = 8.
  EXPECT_EQ(grid[0][1][1].item<int>(), 0);
  EXPECT_EQ(grid[0][4][6].item<int>(), 0);
  EXPECT_EQ(grid[0][1][8].item<int>(), 255);
  // Column 2, row 1 (top-left at y = 1 + 4 + 1 = 6, x = 15): pixel (r, q) of image 1 covers the
  // 2×2 block at (6 + 2r, 15 + 2q); image 1 holds 6..11 / 11.
  for (int r = 0; r < 2; ++r) {
    for (int q = 0; q < 3; ++q) {
      const int expected = static_cast<int>(std::lround((6 + 3 * r + q) / 11.0 * 255.0));
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx)
          EXPECT_EQ(grid[0][6 + 2 * r + dy][15 + 2 * q + dx].item<int>(), expected) << r << q;
    }
  }
  // Colour grids keep their channels; a smaller column sits in the top-left of its cell.
  auto rgb = make_image_grid({torch::rand({3, 3, 4, 4}), torch::rand({3, 3, 2, 2})}, 0, 1);
  EXPECT_EQ(rgb.sizes().vec(), (std::vector<int64_t>{3, 12, 8}));
  EXPECT_EQ(rgb[0][3][7].item<int>(), 128);
  EXPECT_THROW(make_image_grid({}, 1, 1), ConfigError);
  EXPECT_THROW(make_image_grid({a, torch::zeros({3, 1, 2, 3})}, 1, 1), ConfigError);
  EXPECT_THROW(make_image_grid({a}, 1, 0), ConfigError);
}

TEST(ReadImageDataset, DetectsEachFormat) {
  TempDir d;
  make_dirs(d.file("mnist"));
  auto digits = random_images(3, 28, 28);
  write_idx_images(d.file("mnist/train-images-idx3-ubyte"), digits);
  write_idx_labels(d.file("mnist/train-labels-idx1-ubyte"), torch::tensor({0, 0, 9}));
  auto m = read_image_dataset(d.file("mnist"), "train");
  EXPECT_TRUE(torch::equal(m.images, digits));
  EXPECT_EQ(values(m.labels), (std::vector<int64_t>{0, 0, 9}));
  expect_data_error([&] { read_image_dataset(d.file("mnist"), "test"); }, "t10k-images-idx3-ubyte");

  make_dirs(d.file("cifar/cifar-10-batches-bin"));
  std::string batch;  // one whole test batch (10,000 records, 30 MB), labels i % 10
  batch.reserve(static_cast<std::size_t>(kCifarBatchRecords * kCifarRecordBytes));
  for (int i = 0; i < kCifarBatchRecords; ++i) batch += cifar_record(i % 10, i % 256);
  write_bytes(d.file("cifar/cifar-10-batches-bin/test_batch.bin"), batch);
  auto c = read_image_dataset(d.file("cifar"), "test");
  EXPECT_EQ(c.images.sizes().vec(), (std::vector<int64_t>{kCifarBatchRecords, 3, 32, 32}));
  EXPECT_EQ(c.labels[13].item<int64_t>(), 3);
  EXPECT_EQ(c.images[13][2][5][5].item<int>(), 13);
  expect_data_error([&] { read_image_dataset(d.file("cifar"), "train"); }, "data_batch_1.bin");
  EXPECT_THROW(read_image_dataset(d.file("cifar"), "valid"), ConfigError);

  write_fixture_png(d.file("folder/train/a/1.png"), 5, 6, 3, 0);
  write_fixture_png(d.file("folder/train/b/1.png"), 5, 6, 3, 7);
  write_fixture_png(d.file("folder/test/a/1.png"), 5, 6, 3, 0);
  auto f = read_image_dataset(d.file("folder"), "train");
  EXPECT_EQ(f.size(), 2);
  EXPECT_EQ(f.classes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(read_image_dataset(d.file("folder"), "test").size(), 1);
  write_fixture_png(d.file("flat/1.png"), 4, 4, 3, 0);
  auto flat = read_image_dataset(d.file("flat"), "train");  // no train/ folder: the root itself
  EXPECT_EQ(flat.size(), 1);
  EXPECT_TRUE(flat.classes.empty());

  TempDir empty;
  expect_data_error([&] { read_image_dataset(empty.path(), "train"); },
                    "nothing readable in '" + empty.path() + "'");
  expect_data_error([&] { read_image_dataset(empty.file("nope"), "train"); },
                    "nope' is not a folder");
}

}  // namespace
}  // namespace contra::data
