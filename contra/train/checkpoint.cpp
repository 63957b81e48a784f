#include "contra/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/version.h"

namespace contra::train {
namespace fs = std::filesystem;

namespace {

torch::Tensor text_tensor(const std::string& text) {
  auto t = torch::empty({static_cast<std::int64_t>(text.size())}, torch::kUInt8);
  if (!text.empty()) std::memcpy(t.data_ptr<std::uint8_t>(), text.data(), text.size());
  return t;
}

std::string tensor_text(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>()),
                     static_cast<std::size_t>(c.numel()));
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw IoError(fmt::format("writing '{}': {}", path, std::strerror(errno)));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    throw IoError(fmt::format("writing '{}': fsync failed ({})", path, std::strerror(errno)));
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, method::Method& method,
                            torch::optim::Optimizer& optimizer, std::int64_t step,
                            const std::string& config_yaml, std::int64_t keep,
                            const std::map<std::string, torch::Tensor>& extra) {
  std::string dir = run_dir + "/checkpoints";
  make_dirs(dir);
  std::string name = fmt::format("step-{:08d}.pt", step);
  std::string path = dir + "/" + name;
  std::string tmp = temp_sibling(path);
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive, optim_archive;
    method.save(model_archive);
    optimizer.save(optim_archive);
    archive.write("method", model_archive);
    archive.write("optimizer", optim_archive);
    archive.write("step", torch::tensor(step, torch::kInt64));
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng_cpu", gen.get_state());
    }
    archive.write("config", text_tensor(config_yaml));
    archive.write("contra_version", text_tensor(CONTRA_VERSION));
    for (const auto& [key, value] : extra) archive.write("extra/" + key, value);
    archive.save_to(tmp);
    fsync_path(tmp);
  } catch (const c10::Error& e) {
    ::unlink(tmp.c_str());
    throw IoError(fmt::format("writing checkpoint '{}': {}", path, e.what_without_backtrace()));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw IoError(
        fmt::format("writing checkpoint '{}': rename failed ({})", path, std::strerror(errno)));
  }
  fsync_dir(dir);
  // Switch `last` atomically: a new symlink under a temporary name renamed over the old one.
  std::string link_tmp = temp_sibling(dir + "/last");
  std::error_code ec;
  fs::create_symlink(name, link_tmp, ec);
  if (ec || std::rename(link_tmp.c_str(), (dir + "/last").c_str()) != 0) {
    ::unlink(link_tmp.c_str());
    throw IoError(
        fmt::format("updating '{}/last': {}", dir, ec ? ec.message() : std::strerror(errno)));
  }
  fsync_dir(dir);
  // Keep the newest `keep` checkpoints (names sort by step).
  std::vector<std::string> all;
  static const std::regex pattern(R"(step-\d{8}\.pt)");
  for (auto& entry : fs::directory_iterator(dir)) {
    std::string n = entry.path().filename().string();
    if (std::regex_match(n, pattern)) all.push_back(n);
  }
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < all.size(); ++i) {
    if (all[i] != name) fs::remove(dir + "/" + all[i], ec);
  }
  return path;
}

std::string latest_checkpoint(const std::string& run_dir) {
  std::string link = run_dir + "/checkpoints/last";
  std::error_code ec;
  if (!fs::is_symlink(link, ec)) return "";
  auto target = fs::read_symlink(link, ec);
  if (ec) return "";
  std::string path = (fs::path(run_dir) / "checkpoints" / target).string();
  return path_exists(path) ? path : "";
}

std::string resolve_checkpoint(const std::string& run_dir_or_file) {
  std::error_code ec;
  if (fs::is_regular_file(run_dir_or_file, ec)) return run_dir_or_file;
  if (fs::is_directory(run_dir_or_file, ec)) {
    std::string path = latest_checkpoint(run_dir_or_file);
    if (path.empty()) {
      throw DataError(fmt::format(
          "'{}': no checkpoint (expected checkpoints/last in a run directory)", run_dir_or_file));
    }
    return path;
  }
  throw DataError(fmt::format("checkpoint '{}': no such file or run directory", run_dir_or_file));
}

namespace {
// Step, config and version of a loaded archive; DataError naming `name` when they are missing.
CheckpointMeta read_meta(torch::serialize::InputArchive& archive, const std::string& name) {
  CheckpointMeta meta;
  try {
    torch::Tensor step, config, version;
    archive.read("step", step);
    archive.read("config", config);
    archive.read("contra_version", version);
    meta.step = step.item<std::int64_t>();
    meta.config_yaml = tensor_text(config);
    meta.contra_version = tensor_text(version);
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("checkpoint '{}': not a readable contra checkpoint ({})", name,
                                e.what_without_backtrace()));
  }
  return meta;
}
}  // namespace

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("checkpoint '{}': not a readable contra checkpoint ({})", path,
                                e.what_without_backtrace()));
  }
  return read_meta(archive, path);
}

CheckpointMeta load_checkpoint(const std::string& path, method::Method& method,
                               torch::optim::Optimizer* optimizer, bool restore_rng) {
  read_checkpoint_meta(path);  // a DataError naming the file when it is not a checkpoint
  return load_checkpoint_data(read_file(path), path, method, optimizer, restore_rng);
}

torch::Tensor checkpoint_extra(const std::string& data, const std::string& name) {
  torch::serialize::InputArchive archive;
  torch::Tensor out;
  try {
    archive.load_from(data.data(), data.size());
    if (!archive.try_read("extra/" + name, out)) return {};
  } catch (const c10::Error&) {
    return {};
  }
  return out;
}

CheckpointMeta load_checkpoint_data(const std::string& data, const std::string& name,
                                    method::Method& method, torch::optim::Optimizer* optimizer,
                                    bool restore_rng) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(data.data(), data.size());
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("checkpoint '{}': not a readable contra checkpoint ({})", name,
                                e.what_without_backtrace()));
  }
  CheckpointMeta meta = read_meta(archive, name);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("method", model_archive);
    method.load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optim_archive;
      archive.read("optimizer", optim_archive);
      optimizer->load(optim_archive);
    }
    if (restore_rng) {
      torch::Tensor state;
      archive.read("rng_cpu", state);
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("checkpoint '{}': does not fit this model ({})", name,
                                e.what_without_backtrace()));
  }
  return meta;
}

}  // namespace contra::train
