#pragma once
/// Readers for the image formats the field ships (DESIGN.md §10): MNIST IDX files, CIFAR-10 binary
/// batches and image folders (`<root>/<class>/*.png|jpg|jpeg`). Every reader returns the same
/// in-memory `ImageDataset`: images as a uint8 tensor (N, C, H, W), labels as int64 (N) (-1 for
/// unlabelled images) and class names (label i ↔ classes[i]).
///
///   ImageDataset train = read_mnist("data/mnist", "train");        // (N, 1, 28, 28)
///   ImageDataset test = read_cifar10("data/cifar-10-batches-bin", false);  // (10000, 3, 32, 32)
///   ImageDataset folder = read_image_folder("data/pets");          // classes = sorted sub-folders
///
/// Every size a header claims is checked against the file's actual size before anything is
/// allocated. Errors: `DataError` naming the file and what was expected (wrong magic, truncated
/// file, image/label count mismatch, undecodable image), `IoError` for unreadable files.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::data {

struct ImageDataset {
  torch::Tensor images;              // uint8 (N, C, H, W)
  torch::Tensor labels;              // int64 (N); -1 = unlabelled
  std::vector<std::string> classes;  // empty for an unlabelled set
  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// ---- MNIST IDX ---------------------------------------------------------------------------------

inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // uint8, 3 dims (N, rows, cols)
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // uint8, 1 dim (N)

/// Reads an IDX image file (magic 0x00000803, big-endian N, rows, cols, then N·rows·cols bytes)
/// into uint8 (N, 1, rows, cols). Throws DataError: missing/short header, wrong magic (a
/// gzip-compressed file is named as such), size ≠ 16 + N·rows·cols bytes.
torch::Tensor read_idx_images(const std::string& path);
/// Reads an IDX label file (magic 0x00000801, big-endian N, then N bytes) into int64 (N).
torch::Tensor read_idx_labels(const std::string& path);
/// Writes uint8 (N, rows, cols) or (N, 1, rows, cols) images as IDX, atomically.
void write_idx_images(const std::string& path, const torch::Tensor& images);
/// Writes labels (N) in 0..255 as IDX (uint8), atomically.
void write_idx_labels(const std::string& path, const torch::Tensor& labels);

/// MNIST in its standard file names under `dir`: split "train" → train-images-idx3-ubyte +
/// train-labels-idx1-ubyte, "test" (or "t10k") → t10k-*. Classes "0".."9". Throws DataError when
/// the two files disagree on the count or a label is > 9.
ImageDataset read_mnist(const std::string& dir, const std::string& split);

// ---- CIFAR-10 binary ---------------------------------------------------------------------------

inline constexpr std::int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;
inline constexpr std::int64_t kCifarBatchRecords = 10000;

/// One CIFAR-10 binary batch: records of 1 label byte (0..9) + 3072 pixel bytes (channel-major R,
/// G, B planes of 32×32). `records` = expected record count (0 = any whole number of records).
/// Returns images (N, 3, 32, 32), labels (N), the ten standard class names. Throws DataError
/// naming the file and the expected size when the size is wrong, and the record for a label > 9.
ImageDataset read_cifar10_batch(const std::string& path, std::int64_t records = kCifarBatchRecords);
/// The CIFAR-10 binary release folder (`cifar-10-batches-bin`, or its parent): train =
/// data_batch_1..5.bin, test = test_batch.bin, class names from batches.meta.txt when present.
ImageDataset read_cifar10(const std::string& dir, bool train);

// ---- image folders -----------------------------------------------------------------------------

struct ImageFolderOptions {
  /// Channels of the returned images: 1 (grey), 3 (RGB) or 4 (RGBA); stb_image converts.
  int channels = 3;
  /// Refuse sets whose decoded pixels would exceed this many bytes.
  std::int64_t max_bytes = std::int64_t{8} << 30;
};

/// Decodes one PNG or JPEG file into uint8 (channels, H, W) (stb converts grey/RGB/RGBA to the
/// requested channel count). DataError naming the file when it is missing or not decodable.
torch::Tensor read_image_file(const std::string& path, int channels = 3);

/// `<root>/<class>/*.png|jpg|jpeg` (extensions case-insensitive): classes are the sub-folders in
/// sorted order, images sorted by path. An *unlabelled* folder has its images directly under root
/// (labels -1, no classes). All images must have the same width and height (no resizing here).
/// Throws DataError: root missing, no images, images both under root and in class folders, an
/// empty class folder, an undecodable image or one of a different size (naming the file).
ImageDataset read_image_folder(const std::string& root, const ImageFolderOptions& options = {});

// ---- format detection (contra data info) -------------------------------------------------------

struct ImageSplitInfo {
  std::string name;  // "train", "test", "all"
  std::int64_t images = 0;
  std::vector<std::int64_t> per_class;  // counts, in class order (empty when unlabelled)
};
struct ImageFolderInfo {
  std::string format;  // "mnist-idx", "cifar10-bin", "image-folder"
  std::string dir;
  std::int64_t channels = 0, height = 0, width = 0;
  std::vector<std::string> classes;
  std::vector<ImageSplitInfo> splits;
};
/// Detects the format of `dir` (MNIST IDX files, CIFAR-10 batches, else an image folder), reads
/// it and summarises it. Throws DataError when nothing readable is there.
ImageFolderInfo describe_image_dataset(const std::string& dir);

/// Reads one split of `dir`, detecting the format as describe_image_dataset does: MNIST IDX files
/// → read_mnist(dir, split); CIFAR-10 batches (in `dir` or `dir/cifar-10-batches-bin`) →
/// read_cifar10(dir, split == "train"); else an image folder, `dir/<split>` when that folder exists
/// and `dir` itself otherwise. Throws DataError naming `dir` when nothing readable is there.
///   ImageDataset train = read_image_dataset("data/mnist", "train");
ImageDataset read_image_dataset(const std::string& dir, const std::string& split = "train");

// ---- writing images ----------------------------------------------------------------------------

/// Encodes a uint8 (C, H, W) image, C = 1 (grey), 3 (RGB) or 4 (RGBA), as PNG (stb_image_write)
/// and writes it atomically. The bytes depend only on the pixels. Throws ConfigError for a wrong
/// dtype or shape, IoError when encoding or writing fails (naming the file).
void write_png(const std::string& path, const torch::Tensor& image);
/// The PNG bytes write_png would write.
std::string encode_png(const torch::Tensor& image);

/// Tiles image batches into one picture: `columns[j]` is a float batch (N, C, H_j, W_j) in [0, 1]
/// (C = 1 or 3, the same N and C in every column); row i of the grid shows image i of every column
/// from left to right. Cells are `cell = max H_j · scale` by `max W_j · scale` pixels, each image
/// nearest-neighbour upscaled by `scale` and placed at the cell's top-left corner, with `pad`
/// pixels of grey (128) around and between cells. Returns uint8 (C, H, W) with
/// H = N · cell_h + (N + 1) · pad and W = columns · cell_w + (columns + 1) · pad.
/// Throws ConfigError for no columns, mismatched N or C, pad < 0 or scale < 1.
torch::Tensor make_image_grid(const std::vector<torch::Tensor>& columns, std::int64_t pad = 2,
                              std::int64_t scale = 1);

}  // namespace contra::data
