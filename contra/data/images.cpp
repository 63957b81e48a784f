#include "contra/data/images.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"

namespace contra::data {

namespace fs = std::filesystem;

namespace {

std::uint32_t read_be32(const std::string& bytes, std::size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void append_be32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint64_t checked_size(const std::string& path) {
  check<DataError>(path_exists(path), "IDX: '{}' does not exist", path);
  return file_size(path);
}

/// Reads an IDX file of uint8 data with `dims` dimensions; fills `shape`. The file's size is
/// checked against the header before the whole file is read.
std::string read_idx(const std::string& path, std::uint32_t magic, std::size_t dims,
                     std::vector<std::int64_t>& shape) {
  const std::uint64_t size = checked_size(path);
  const std::uint64_t header = 4 + 4 * dims;
  check<DataError>(size >= header,
                   "IDX: '{}' is too short for its header (got {} bytes, expected "
                   "at least {})",
                   path, size, header);
  std::string head(header, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    check<IoError>(static_cast<bool>(in.read(head.data(), static_cast<std::streamsize>(header))),
                   "IDX: cannot read '{}'", path);
  }
  const std::uint32_t got = read_be32(head, 0);
  if (static_cast<unsigned char>(head[0]) == 0x1f && static_cast<unsigned char>(head[1]) == 0x8b) {
    throw DataError(fmt::format(
        "IDX: '{}' is gzip-compressed (gunzip it first; expected magic 0x{:08x})", path, magic));
  }
  check<DataError>(got == magic, "IDX: '{}' has wrong magic (got 0x{:08x}, expected 0x{:08x})",
                   path, got, magic);
  // Payload = product of dims, computed in 128 bits (3 dims of < 2^32 cannot overflow it) and
  // compared with the file size before anything is allocated.
  const std::uint64_t payload = size - header;
  unsigned __int128 expected = 1;
  shape.clear();
  for (std::size_t i = 0; i < dims; ++i) {
    shape.push_back(read_be32(head, 4 + 4 * i));
    expected *= static_cast<std::uint32_t>(shape.back());
  }
  check<DataError>(expected <= std::numeric_limits<std::uint64_t>::max() - header,
                   "IDX: '{}' header claims dims {} (more than the {} data bytes the file holds)",
                   path, fmt::join(shape, "x"), payload);
  const auto expected64 = static_cast<std::uint64_t>(expected);
  check<DataError>(payload == expected64,
                   "IDX: '{}' has the wrong size for dims {} (got {} bytes, expected {} = {} "
                   "header + {} data)",
                   path, fmt::join(shape, "x"), size, header + expected64, header, expected64);
  std::string bytes = read_file(path);
  check<DataError>(bytes.size() == size, "IDX: '{}' changed while being read", path);
  return bytes;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_file(const fs::path& p) {
  auto ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<fs::path> images_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && is_image_file(e.path()) &&
        e.path().filename().string().front() != '.')
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::string>& cifar_classes() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

std::vector<std::string> digit_classes() {
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) out.push_back(std::to_string(i));
  return out;
}

}  // namespace

// ---- IDX ---------------------------------------------------------------------------------------

torch::Tensor read_idx_images(const std::string& path) {
  std::vector<std::int64_t> shape;
  std::string bytes = read_idx(path, kIdxImagesMagic, 3, shape);
  auto out = torch::empty({shape[0], 1, shape[1], shape[2]}, torch::kUInt8);
  if (out.numel() > 0) std::memcpy(out.data_ptr<std::uint8_t>(), bytes.data() + 16, out.numel());
  return out;
}

torch::Tensor read_idx_labels(const std::string& path) {
  std::vector<std::int64_t> shape;
  std::string bytes = read_idx(path, kIdxLabelsMagic, 1, shape);
  auto out = torch::empty({shape[0]}, torch::kUInt8);
  if (out.numel() > 0) std::memcpy(out.data_ptr<std::uint8_t>(), bytes.data() + 8, out.numel());
  return out.to(torch::kInt64);
}

void write_idx_images(const std::string& path, const torch::Tensor& images) {
  TORCH_CHECK(images.scalar_type() == torch::kUInt8, "write_idx_images: expected uint8, got ",
              images.scalar_type());
  TORCH_CHECK(images.dim() == 3 || (images.dim() == 4 && images.size(1) == 1),
              "write_idx_images: expected (N, H, W) or (N, 1, H, W), got ", images.sizes());
  auto x = images.reshape({images.size(0), images.size(-2), images.size(-1)}).contiguous();
  std::string out;
  out.reserve(16 + static_cast<std::size_t>(x.numel()));
  append_be32(out, kIdxImagesMagic);
  for (int i = 0; i < 3; ++i) append_be32(out, static_cast<std::uint32_t>(x.size(i)));
  out.append(reinterpret_cast<const char*>(x.data_ptr<std::uint8_t>()),
             static_cast<std::size_t>(x.numel()));
  write_file_atomic(path, out);
}

void write_idx_labels(const std::string& path, const torch::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 1, "write_idx_labels: expected (N), got ", labels.sizes());
  auto l = labels.to(torch::kInt64).contiguous();
  if (l.numel() > 0) {
    TORCH_CHECK(l.min().item<std::int64_t>() >= 0 && l.max().item<std::int64_t>() <= 255,
                "write_idx_labels: labels must be in 0..255");
  }
  std::string out;
  append_be32(out, kIdxLabelsMagic);
  append_be32(out, static_cast<std::uint32_t>(l.size(0)));
  const auto* p = l.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < l.size(0); ++i) out.push_back(static_cast<char>(p[i]));
  write_file_atomic(path, out);
}

ImageDataset read_mnist(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test" || split == "t10k") {
    prefix = "t10k";
  } else {
    throw ConfigError(fmt::format("mnist: unknown split '{}' (expected 'train' or 'test')", split));
  }
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte";
  ImageDataset ds;
  ds.images = read_idx_images(images_path);
  ds.labels = read_idx_labels(labels_path);
  check<DataError>(ds.images.size(0) == ds.labels.size(0),
                   "mnist: '{}' holds {} images but '{}' holds {} labels (expected the same count)",
                   images_path, ds.images.size(0), labels_path, ds.labels.size(0));
  if (ds.labels.numel() > 0) {
    auto max = ds.labels.max().item<std::int64_t>();
    check<DataError>(max <= 9, "mnist: '{}' has label {} (expected 0..9)", labels_path, max);
  }
  ds.classes = digit_classes();
  return ds;
}

// ---- CIFAR-10 ----------------------------------------------------------------------------------

ImageDataset read_cifar10_batch(const std::string& path, std::int64_t records) {
  check<DataError>(path_exists(path), "CIFAR-10: '{}' does not exist", path);
  const auto size = static_cast<std::int64_t>(file_size(path));
  if (records > 0) {
    check<DataError>(size == records * kCifarRecordBytes,
                     "CIFAR-10: '{}' has the wrong size (got {} bytes, expected {} = {} records of "
                     "1 label byte + 3072 pixel bytes)",
                     path, size, records * kCifarRecordBytes, records);
  } else {
    check<DataError>(size > 0 && size % kCifarRecordBytes == 0,
                     "CIFAR-10: '{}' has the wrong size (got {} bytes, expected a positive "
                     "multiple of {} = 1 label byte + 3072 pixel bytes)",
                     path, size, kCifarRecordBytes);
  }
  const std::int64_t n = size / kCifarRecordBytes;
  std::string bytes = read_file(path);
  check<DataError>(static_cast<std::int64_t>(bytes.size()) == size,
                   "CIFAR-10: '{}' changed while being read", path);
  ImageDataset ds;
  ds.images = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  ds.labels = torch::empty({n}, torch::kInt64);
  auto* img = ds.images.data_ptr<std::uint8_t>();
  auto* lab = ds.labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const char* rec = bytes.data() + i * kCifarRecordBytes;
    const int label = static_cast<unsigned char>(rec[0]);
    check<DataError>(label <= 9, "CIFAR-10: '{}' record {} has label {} (expected 0..9)", path, i,
                     label);
    lab[i] = label;
    std::memcpy(img + i * 3072, rec + 1, 3072);
  }
  ds.classes = cifar_classes();
  return ds;
}

ImageDataset read_cifar10(const std::string& dir, bool train) {
  std::string root = dir;
  if (!path_exists(root + "/test_batch.bin") && !path_exists(root + "/data_batch_1.bin") &&
      path_exists(dir + "/cifar-10-batches-bin"))
    root = dir + "/cifar-10-batches-bin";
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back(fmt::format("{}/data_batch_{}.bin", root, i));
  } else {
    files.push_back(root + "/test_batch.bin");
  }
  std::vector<torch::Tensor> images, labels;
  for (const auto& f : files) {
    auto b = read_cifar10_batch(f);
    images.push_back(b.images);
    labels.push_back(b.labels);
  }
  ImageDataset ds;
  ds.images = torch::cat(images);
  ds.labels = torch::cat(labels);
  ds.classes = cifar_classes();
  const std::string meta = root + "/batches.meta.txt";
  if (path_exists(meta)) {
    std::vector<std::string> names;
    std::istringstream in(read_file(meta));
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    check<DataError>(names.size() == 10, "CIFAR-10: '{}' names {} classes (expected 10)", meta,
                     names.size());
    ds.classes = names;
  }
  return ds;
}

// ---- image folders -----------------------------------------------------------------------------

torch::Tensor read_image_file(const std::string& path, int channels) {
  check<ConfigError>(channels >= 1 && channels <= 4, "image: channels must be 1..4 (got {})",
                     channels);
  std::string bytes = read_file(path);
  int w = 0, h = 0, c = 0;
  const auto* buf = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(std::min<std::size_t>(bytes.size(), INT32_MAX));
  stbi_uc* pixels = stbi_load_from_memory(buf, len, &w, &h, &c, channels);
  if (!pixels) {
    throw DataError(
        fmt::format("cannot decode '{}' ({}; expected PNG or JPEG)", path, stbi_failure_reason()));
  }
  // stb gives interleaved (H, W, C); contra's images are channel-major (C, H, W).
  torch::Tensor out =
      torch::from_blob(pixels, {h, w, channels}, torch::kUInt8).permute({2, 0, 1}).clone();
  stbi_image_free(pixels);
  return out;
}

ImageDataset read_image_folder(const std::string& root, const ImageFolderOptions& options) {
  check<ConfigError>(options.channels == 1 || options.channels == 3 || options.channels == 4,
                     "image folder: channels must be 1, 3 or 4 (got {})", options.channels);
  check<DataError>(fs::is_directory(root), "image folder: '{}' is not a folder", root);
  std::vector<fs::path> files = images_in(root);
  std::vector<std::int64_t> labels;
  std::vector<std::string> classes;
  std::vector<fs::path> class_dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && e.path().filename().string().front() != '.')
      class_dirs.push_back(e.path());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  if (!files.empty()) {
    for (const auto& d : class_dirs) {
      check<DataError>(images_in(d).empty(),
                       "image folder: '{}' has images both directly inside (unlabelled) and in "
                       "class folders like '{}' (expected one layout)",
                       root, d.string());
    }
    labels.assign(files.size(), -1);
  } else {
    for (const auto& d : class_dirs) {
      auto in_class = images_in(d);
      check<DataError>(!in_class.empty(),
                       "image folder: class folder '{}' holds no .png/.jpg/.jpeg images",
                       d.string());
      for (auto& f : in_class) {
        files.push_back(f);
        labels.push_back(static_cast<std::int64_t>(classes.size()));
      }
      classes.push_back(d.filename().string());
    }
  }
  check<DataError>(!files.empty(),
                   "image folder: no .png/.jpg/.jpeg images in '{}' (expected <root>/<class>/*.png "
                   "or images directly under root)",
                   root);

  const std::int64_t n = static_cast<std::int64_t>(files.size());
  const int c = options.channels;
  int width = 0, height = 0;
  torch::Tensor images;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::string path = files[static_cast<std::size_t>(i)].string();
    torch::Tensor image = read_image_file(path, c);
    if (i == 0) {
      height = static_cast<int>(image.size(1));
      width = static_cast<int>(image.size(2));
      const double bytes_total = static_cast<double>(n) * c * width * height;
      check<DataError>(bytes_total <= static_cast<double>(options.max_bytes),
                       "image folder: {} images of {}x{}x{} from '{}' would take {:.0f} bytes "
                       "(more than max_bytes {})",
                       n, c, height, width, path, bytes_total, options.max_bytes);
      images = torch::empty({n, c, height, width}, torch::kUInt8);
    }
    check<DataError>(image.size(2) == width && image.size(1) == height,
                     "image folder: '{}' is {}x{} (expected {}x{} like '{}'; resize the images "
                     "first)",
                     path, image.size(2), image.size(1), width, height, files[0].string());
    images[i].copy_(image);
  }
  ImageDataset ds;
  ds.images = images;
  ds.labels = torch::tensor(labels, torch::kInt64);
  ds.classes = classes;
  return ds;
}

// ---- describe ----------------------------------------------------------------------------------

namespace {
ImageSplitInfo split_info(const std::string& name, const ImageDataset& ds) {
  ImageSplitInfo s;
  s.name = name;
  s.images = ds.size();
  if (!ds.classes.empty()) {
    s.per_class.assign(ds.classes.size(), 0);
    auto l = ds.labels.contiguous();
    const auto* p = l.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < l.numel(); ++i) {
      if (p[i] >= 0 && p[i] < static_cast<std::int64_t>(s.per_class.size())) ++s.per_class[p[i]];
    }
  }
  return s;
}
}  // namespace

ImageFolderInfo describe_image_dataset(const std::string& dir) {
  check<DataError>(fs::is_directory(dir), "data info: '{}' is not a folder", dir);
  ImageFolderInfo info;
  info.dir = dir;
  std::vector<std::pair<std::string, ImageDataset>> parts;
  const bool mnist_train = path_exists(dir + "/train-images-idx3-ubyte");
  const bool mnist_test = path_exists(dir + "/t10k-images-idx3-ubyte");
  const std::string cifar_root =
      path_exists(dir + "/cifar-10-batches-bin") ? dir + "/cifar-10-batches-bin" : dir;
  if (mnist_train || mnist_test) {
    info.format = "mnist-idx";
    if (mnist_train) parts.emplace_back("train", read_mnist(dir, "train"));
    if (mnist_test) parts.emplace_back("test", read_mnist(dir, "test"));
  } else if (path_exists(cifar_root + "/data_batch_1.bin") ||
             path_exists(cifar_root + "/test_batch.bin")) {
    info.format = "cifar10-bin";
    if (path_exists(cifar_root + "/data_batch_1.bin"))
      parts.emplace_back("train", read_cifar10(cifar_root, true));
    if (path_exists(cifar_root + "/test_batch.bin"))
      parts.emplace_back("test", read_cifar10(cifar_root, false));
  } else {
    info.format = "image-folder";
    parts.emplace_back("all", read_image_folder(dir));
  }
  const auto& first = parts.front().second;
  info.classes = first.classes;
  info.channels = first.images.size(1);
  info.height = first.images.size(2);
  info.width = first.images.size(3);
  for (const auto& [name, ds] : parts) info.splits.push_back(split_info(name, ds));
  return info;
}

// ---- read one split ----------------------------------------------------------------------------

ImageDataset read_image_dataset(const std::string& dir, const std::string& split) {
  check<DataError>(fs::is_directory(dir), "dataset: '{}' is not a folder", dir);
  if (path_exists(dir + "/train-images-idx3-ubyte") || path_exists(dir + "/t10k-images-idx3-ubyte"))
    return read_mnist(dir, split);
  const std::string cifar_root =
      path_exists(dir + "/cifar-10-batches-bin") ? dir + "/cifar-10-batches-bin" : dir;
  if (path_exists(cifar_root + "/data_batch_1.bin") ||
      path_exists(cifar_root + "/test_batch.bin")) {
    check<ConfigError>(split == "train" || split == "test",
                       "CIFAR-10: unknown split '{}' (expected 'train' or 'test')", split);
    return read_cifar10(cifar_root, split == "train");
  }
  const std::string root =
      !split.empty() && fs::is_directory(dir + "/" + split) ? dir + "/" + split : dir;
  try {
    return read_image_folder(root);
  } catch (const DataError& e) {
    throw DataError(fmt::format(
        "dataset: nothing readable in '{}' (no MNIST IDX files, no CIFAR-10 batches; as an image "
        "folder: {})",
        dir, e.what()));
  }
}

// ---- writing images ----------------------------------------------------------------------------

namespace {
void append_png_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}
}  // namespace

std::string encode_png(const torch::Tensor& image) {
  check<ConfigError>(image.defined() && image.scalar_type() == torch::kUInt8 && image.dim() == 3,
                     "png: expected a uint8 (C, H, W) image");
  const std::int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  check<ConfigError>(c == 1 || c == 3 || c == 4, "png: expected 1, 3 or 4 channels (got {})", c);
  check<ConfigError>(h > 0 && w > 0 && h <= INT32_MAX / 4 && w <= INT32_MAX / (4 * c),
                     "png: bad image size {}x{}", h, w);
  // stb wants interleaved (H, W, C) rows.
  auto hwc = image.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  std::string out;
  const int ok = stbi_write_png_to_func(append_png_bytes, &out, static_cast<int>(w),
                                        static_cast<int>(h), static_cast<int>(c),
                                        hwc.data_ptr<std::uint8_t>(), static_cast<int>(w * c));
  check<IoError>(ok != 0 && !out.empty(), "png: encoding a {}x{}x{} image failed", c, h, w);
  return out;
}

void write_png(const std::string& path, const torch::Tensor& image) {
  std::string bytes;
  try {
    bytes = encode_png(image);
  } catch (const IoError& e) {
    throw IoError(fmt::format("cannot write '{}': {}", path, e.what()));
  }
  write_file_atomic(path, bytes);
}

torch::Tensor make_image_grid(const std::vector<torch::Tensor>& columns, std::int64_t pad,
                              std::int64_t scale) {
  check<ConfigError>(!columns.empty(), "image grid: no columns");
  check<ConfigError>(pad >= 0, "image grid: pad must be >= 0 (got {})", pad);
  check<ConfigError>(scale >= 1, "image grid: scale must be >= 1 (got {})", scale);
  const auto& first = columns.front();
  check<ConfigError>(first.defined() && first.dim() == 4,
                     "image grid: expected (N, C, H, W) batches");
  const std::int64_t n = first.size(0), c = first.size(1);
  std::int64_t cell_h = 0, cell_w = 0;
  for (std::size_t j = 0; j < columns.size(); ++j) {
    const auto& col = columns[j];
    check<ConfigError>(col.defined() && col.dim() == 4 && col.size(0) == n && col.size(1) == c,
                       "image grid: column {} is not an ({}, {}, H, W) batch", j, n, c);
    cell_h = std::max(cell_h, col.size(2) * scale);
    cell_w = std::max(cell_w, col.size(3) * scale);
  }
  const auto cols = static_cast<std::int64_t>(columns.size());
  const std::int64_t height = n * cell_h + (n + 1) * pad;
  const std::int64_t width = cols * cell_w + (cols + 1) * pad;
  auto grid = torch::full({c, height, width}, 128, torch::kUInt8);
  for (std::int64_t j = 0; j < cols; ++j) {
    auto col = columns[static_cast<std::size_t>(j)].to(torch::kCPU, torch::kFloat32);
    auto pixels = col.clamp(0.0, 1.0).mul(255.0).round().to(torch::kUInt8);
    if (scale > 1) pixels = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
    const std::int64_t left = pad + j * (cell_w + pad);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t top = pad + i * (cell_h + pad);
      grid.narrow(1, top, pixels.size(2)).narrow(2, left, pixels.size(3)).copy_(pixels[i]);
    }
  }
  return grid;
}

}  // namespace contra::data
