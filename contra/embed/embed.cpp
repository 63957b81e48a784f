#include "contra/embed/embed.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/core/runtime.h"
#include "contra/core/version.h"
#include "contra/data/audio.h"
#include "contra/data/captions.h"
#include "contra/data/images.h"
#include "contra/data/librispeech.h"
#include "contra/embed/encoder_state.h"
#include "contra/io/safetensors.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"

namespace contra::embed {
namespace fs = std::filesystem;

// ---- the file layout -------------------------------------------------------------------------

torch::Tensor pack_ids(const std::vector<std::string>& ids) {
  std::string joined;
  std::size_t total = 0;
  for (const auto& id : ids) total += id.size() + 1;
  joined.reserve(total);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    check<DataError>(!ids[i].empty() && ids[i].find('\n') == std::string::npos,
                     "embed: item id {} ('{}') is empty or contains a newline", i, ids[i]);
    if (i > 0) joined += '\n';
    joined += ids[i];
  }
  auto t = torch::empty({static_cast<std::int64_t>(joined.size())}, torch::kUInt8);
  if (!joined.empty()) std::memcpy(t.data_ptr(), joined.data(), joined.size());
  return t;
}

std::vector<std::string> unpack_ids(const torch::Tensor& bytes, std::int64_t expected,
                                    const std::string& file) {
  check<DataError>(bytes.dim() == 1 && bytes.scalar_type() == torch::kUInt8,
                   "{}: tensor 'ids' must be uint8 (bytes) of one dimension (got {} {})", file,
                   c10::toString(bytes.scalar_type()), c10::str(bytes.sizes()));
  auto b = bytes.contiguous();
  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(std::max<std::int64_t>(expected, 0)));
  const char* p = static_cast<const char*>(b.data_ptr());
  const std::int64_t n = b.numel();
  if (n > 0) {
    std::int64_t start = 0;
    for (std::int64_t i = 0; i <= n; ++i) {
      if (i == n || p[i] == '\n') {
        ids.emplace_back(p + start, static_cast<std::size_t>(i - start));
        start = i + 1;
      }
    }
  }
  check<DataError>(static_cast<std::int64_t>(ids.size()) == expected,
                   "{}: 'ids' holds {} ids for {} embeddings", file, ids.size(), expected);
  return ids;
}

void write_embeddings(const std::string& path, const Embeddings& e) {
  check<DataError>(e.vectors.defined() && e.vectors.dim() == 2,
                   "embed: embeddings must be (N, D) (got {})",
                   e.vectors.defined() ? c10::str(e.vectors.sizes()) : "undefined");
  const std::int64_t n = e.vectors.size(0);
  check<DataError>(
      e.labels.defined() && e.labels.numel() == n && static_cast<std::int64_t>(e.ids.size()) == n,
      "embed: {} embeddings but {} labels and {} ids", n, e.labels.defined() ? e.labels.numel() : 0,
      e.ids.size());
  io::SafetensorsFile f;
  f.tensors.emplace_back("embeddings", e.vectors.to(torch::kCPU, torch::kFloat).contiguous());
  f.tensors.emplace_back("labels", e.labels.to(torch::kCPU, torch::kLong).reshape({n}));
  f.tensors.emplace_back("ids", pack_ids(e.ids));
  f.metadata = e.meta;
  f.metadata["count"] = std::to_string(n);
  f.metadata["dim"] = std::to_string(e.vectors.size(1));
  f.metadata["complete"] = "true";
  f.metadata["format"] = "contra-embeddings-1";
  io::write_safetensors(path, f);
}

Embeddings read_embeddings(const std::string& path) {
  if (fs::is_directory(path)) {
    throw DataError(fmt::format(
        "{}: is a folder, not an embeddings file{}", path,
        path.size() > 8 && path.compare(path.size() - 8, 8, ".partial") == 0
            ? " (an unfinished `contra embed` output: rerun the embed command to complete it)"
            : ""));
  }
  check<DataError>(path_exists(path), "{}: no such embeddings file", path);
  io::SafetensorsFile f = io::read_safetensors(path);
  auto complete = f.metadata.find("complete");
  check<DataError>(complete != f.metadata.end() && complete->second == "true",
                   "{}: not a complete embeddings file (metadata complete = '{}'; rerun `contra "
                   "embed` to finish it)",
                   path, complete == f.metadata.end() ? "" : complete->second);
  Embeddings e;
  e.vectors = f.at("embeddings");
  check<DataError>(e.vectors.dim() == 2 && e.vectors.scalar_type() == torch::kFloat,
                   "{}: 'embeddings' must be float32 (N, D) (got {} {})", path,
                   c10::toString(e.vectors.scalar_type()), c10::str(e.vectors.sizes()));
  const std::int64_t n = e.vectors.size(0);
  e.labels = f.at("labels");
  check<DataError>(
      e.labels.dim() == 1 && e.labels.size(0) == n && e.labels.scalar_type() == torch::kLong,
      "{}: 'labels' must be int64 ({}) (got {} {})", path, n, c10::toString(e.labels.scalar_type()),
      c10::str(e.labels.sizes()));
  e.ids = unpack_ids(f.at("ids"), n, path);
  e.meta = f.metadata;
  auto count = e.meta.find("count");
  check<DataError>(count != e.meta.end() && count->second == std::to_string(n),
                   "{}: metadata count '{}' but {} embeddings", path,
                   count == e.meta.end() ? "" : count->second, n);
  return e;
}

namespace {

// ---- data sources ------------------------------------------------------------------------------

struct Rows {
  std::vector<torch::Tensor> vectors;  // (r, D) each
  std::vector<std::int64_t> labels;
  std::vector<std::string> ids;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string kind() const = 0;  // image | audio | text
  virtual std::int64_t size() const = 0;
  /// Encodes items [begin, end) in forward passes of at most `batch` items.
  virtual void encode(const EncoderState& s, std::int64_t begin, std::int64_t end,
                      std::int64_t batch, bool frames, Rows& out) const = 0;
  std::string spec;  // canonical data spec (recorded in the manifest and the metadata)
};

std::string pad_index(std::int64_t i, std::int64_t n) {
  const int width =
      std::max<int>(5, static_cast<int>(std::to_string(std::max<std::int64_t>(n - 1, 0)).size()));
  return fmt::format("{:0{}d}", i, width);
}

// MNIST / CIFAR-10 in memory: ids "<split>/<index>".
class MemoryImages : public Source {
 public:
  MemoryImages(data::ImageDataset d, std::string split)
      : d_(std::move(d)), split_(std::move(split)) {}
  std::string kind() const override { return "image"; }
  std::int64_t size() const override { return d_.size(); }
  void encode(const EncoderState& s, std::int64_t begin, std::int64_t end, std::int64_t batch, bool,
              Rows& out) const override {
    for (std::int64_t b = begin; b < end; b += batch) {
      const std::int64_t e = std::min(end, b + batch);
      out.vectors.push_back(s.encode_images(d_.images.narrow(0, b, e - b)));
      for (std::int64_t i = b; i < e; ++i) {
        out.labels.push_back(d_.labels[i].item<std::int64_t>());
        out.ids.push_back(split_ + "/" + pad_index(i, d_.size()));
      }
    }
  }

 private:
  data::ImageDataset d_;
  std::string split_;
};

bool has_extension(const fs::path& p, const std::set<std::string>& exts) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return exts.count(e) > 0;
}

// Files of `exts` directly under root (unlabelled) or under root/<class>/ (labelled, classes in
// sorted order); recursive below the class folders. Sorted by path.
struct FileList {
  std::vector<std::string> paths, ids;
  std::vector<std::int64_t> labels;
  std::vector<std::string> classes;
};
FileList list_files(const std::string& root, const std::set<std::string>& exts,
                    const std::string& what) {
  check<DataError>(fs::is_directory(root), "embed: --data folder '{}' does not exist", root);
  FileList l;
  std::vector<std::string> top, classes;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_regular_file() && has_extension(entry.path(), exts)) {
      top.push_back(entry.path().string());
    } else if (entry.is_directory()) {
      classes.push_back(entry.path().filename().string());
    }
  }
  std::sort(top.begin(), top.end());
  std::sort(classes.begin(), classes.end());
  for (const auto& p : top) {
    l.paths.push_back(p);
    l.ids.push_back(fs::path(p).filename().string());
    l.labels.push_back(-1);
  }
  for (const auto& c : classes) {
    std::vector<std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(root) / c)) {
      if (entry.is_regular_file() && has_extension(entry.path(), exts))
        files.push_back(entry.path().string());
    }
    if (files.empty()) continue;
    std::sort(files.begin(), files.end());
    const auto label = static_cast<std::int64_t>(l.classes.size());
    l.classes.push_back(c);
    for (const auto& p : files) {
      l.paths.push_back(p);
      l.ids.push_back(fs::relative(p, root).generic_string());
      l.labels.push_back(top.empty() ? label : -1);
    }
  }
  check<DataError>(!l.paths.empty(), "embed: no {} files in '{}'", what, root);
  return l;
}

const std::set<std::string> kImageExts = {".png", ".jpg", ".jpeg", ".bmp", ".gif"};
const std::set<std::string> kAudioExts = {".wav", ".flac", ".ogg"};

class ImageFiles : public Source {
 public:
  explicit ImageFiles(FileList l) : l_(std::move(l)) {}
  std::string kind() const override { return "image"; }
  std::int64_t size() const override { return static_cast<std::int64_t>(l_.paths.size()); }
  void encode(const EncoderState& s, std::int64_t begin, std::int64_t end, std::int64_t batch, bool,
              Rows& out) const override {
    for (std::int64_t b = begin; b < end; b += batch) {
      const std::int64_t e = std::min(end, b + batch);
      std::vector<torch::Tensor> images;
      for (std::int64_t i = b; i < e; ++i) {
        auto img = data::read_image_file(l_.paths[i], static_cast<int>(s.channels));
        images.push_back(data::resize_image(img, s.side));
        out.labels.push_back(l_.labels[i]);
        out.ids.push_back(l_.ids[i]);
      }
      out.vectors.push_back(s.encode_images(torch::stack(images)));
    }
  }

 private:
  FileList l_;
};

// Audio items (utterances of a LibriSpeech-layout corpus or files of a folder).
struct AudioItem {
  std::string id, path;
  std::int64_t label = -1;
};
class AudioItems : public Source {
 public:
  AudioItems(std::vector<AudioItem> items, std::shared_ptr<data::PhoneAlignments> alignments)
      : items_(std::move(items)), alignments_(std::move(alignments)) {}
  std::string kind() const override { return "audio"; }
  std::int64_t size() const override { return static_cast<std::int64_t>(items_.size()); }
  void encode(const EncoderState& s, std::int64_t begin, std::int64_t end, std::int64_t,
              bool frames, Rows& out) const override {
    for (std::int64_t i = begin; i < end; ++i) {
      const AudioItem& item = items_[static_cast<std::size_t>(i)];
      torch::Tensor wave = data::read_audio(item.path);
      if (!frames) {
        out.vectors.push_back(s.encode_audio(wave).unsqueeze(0));
        out.labels.push_back(item.label);
        out.ids.push_back(item.id);
        continue;
      }
      torch::Tensor f = s.encode_frames(wave);
      std::int64_t t = f.size(0);
      const std::vector<std::int16_t>* phones = nullptr;
      if (alignments_ && alignments_->contains(item.id)) {
        t = alignments_->check_length(item.id, t);
        phones = &alignments_->labels(item.id);
      }
      out.vectors.push_back(f.narrow(0, 0, t));
      for (std::int64_t k = 0; k < t; ++k) {
        out.labels.push_back(phones ? (*phones)[static_cast<std::size_t>(k)] : -1);
        out.ids.push_back(fmt::format("{}#{}", item.id, k));
      }
    }
  }

 private:
  std::vector<AudioItem> items_;
  std::shared_ptr<data::PhoneAlignments> alignments_;
};

class Captions : public Source {
 public:
  explicit Captions(std::vector<std::string> texts) : texts_(std::move(texts)) {}
  std::string kind() const override { return "text"; }
  std::int64_t size() const override { return static_cast<std::int64_t>(texts_.size()); }
  void encode(const EncoderState& s, std::int64_t begin, std::int64_t end, std::int64_t batch, bool,
              Rows& out) const override {
    for (std::int64_t b = begin; b < end; b += batch) {
      const std::int64_t e = std::min(end, b + batch);
      std::vector<std::string> texts(texts_.begin() + b, texts_.begin() + e);
      out.vectors.push_back(s.encode_texts(texts));
      for (std::int64_t i = b; i < e; ++i) {
        out.labels.push_back(-1);
        out.ids.push_back("caption/" + pad_index(i, size()));
      }
    }
  }

 private:
  std::vector<std::string> texts_;
};

std::vector<std::string> split_spec(const std::string& spec) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto pos = spec.find(':', start);
    parts.push_back(spec.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return parts;
}

std::unique_ptr<Source> open_speech(const std::string& root, const std::string& split_arg) {
  check<DataError>(fs::is_directory(root), "embed: --data speech root '{}' does not exist", root);
  data::LibriSpeechDataset ds(root);
  std::string split = split_arg;
  if (split.empty()) split = path_exists(root + "/test_split.txt") ? "test" : "all";
  std::vector<std::string> ids;
  if (split == "all") {
    for (const auto& u : ds.utterances()) ids.push_back(u.id);
  } else {
    std::string file = split;
    if (split == "train" || split == "test") file = root + "/" + split + "_split.txt";
    ids = data::read_split(file);
  }
  std::shared_ptr<data::PhoneAlignments> alignments;
  if (path_exists(root + "/converted_aligned_phones.txt")) {
    alignments = std::make_shared<data::PhoneAlignments>(
        root + "/converted_aligned_phones.txt",
        path_exists(root + "/phones.txt") ? root + "/phones.txt" : "");
  }
  std::vector<AudioItem> items;
  for (const auto& id : ids) {
    const std::size_t i = ds.index_of(id);
    items.push_back({id, ds.utterance(i).path, ds.speaker_index(i)});
  }
  auto s = std::make_unique<AudioItems>(std::move(items), alignments);
  s->spec = fmt::format("speech:{}:{}", root, split);
  return s;
}

std::unique_ptr<Source> open_audio_folder(const std::string& root) {
  FileList l = list_files(root, kAudioExts, "audio (.wav/.flac/.ogg)");
  std::vector<AudioItem> items;
  for (std::size_t i = 0; i < l.paths.size(); ++i)
    items.push_back({l.ids[i], l.paths[i], l.labels[i]});
  auto s = std::make_unique<AudioItems>(std::move(items), nullptr);
  s->spec = "audio:" + root;
  return s;
}

std::unique_ptr<Source> open_captions(const std::string& file) {
  check<DataError>(path_exists(file), "embed: --data caption file '{}' does not exist", file);
  std::vector<std::string> texts;
  std::istringstream in(read_file(file));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    auto tab = line.find('\t');
    std::string text = tab == std::string::npos ? line.substr(b) : line.substr(tab + 1);
    const auto e = text.find_last_not_of(" \t");
    text = e == std::string::npos
               ? ""
               : text.substr(text.find_first_not_of(" \t"), e + 1 - text.find_first_not_of(" \t"));
    if (!text.empty()) texts.push_back(text);
  }
  check<DataError>(!texts.empty(),
                   "embed: no captions in '{}' (one a line, or <image>\\t<caption>)", file);
  auto s = std::make_unique<Captions>(std::move(texts));
  s->spec = "captions:" + file;
  return s;
}

std::unique_ptr<Source> open_mnist(const std::string& dir, const std::string& split) {
  check<DataError>(fs::is_directory(dir), "embed: --data MNIST folder '{}' does not exist", dir);
  auto s = std::make_unique<MemoryImages>(data::read_mnist(dir, split), split);
  s->spec = fmt::format("mnist:{}:{}", dir, split);
  return s;
}

std::unique_ptr<Source> open_cifar(const std::string& dir, const std::string& split) {
  check<UsageError>(split == "train" || split == "test",
                    "embed: --data cifar10 split must be train or test (got '{}')", split);
  check<DataError>(fs::is_directory(dir), "embed: --data CIFAR-10 folder '{}' does not exist", dir);
  auto s = std::make_unique<MemoryImages>(data::read_cifar10(dir, split == "train"), split);
  s->spec = fmt::format("cifar10:{}:{}", dir, split);
  return s;
}

std::unique_ptr<Source> open_image_folder(const std::string& dir) {
  auto s = std::make_unique<ImageFiles>(list_files(dir, kImageExts, "image (.png/.jpg/.bmp/.gif)"));
  s->spec = "images:" + dir;
  return s;
}

// The recipe's own data: its test (or train) split.
std::unique_ptr<Source> open_recipe_data(const EncoderState& st, const std::string& split) {
  check<UsageError>(split == "train" || split == "test",
                    "embed: --data recipe split must be train or test (got '{}')", split);
  if (st.modality == "image") {
    train::ImageRecipe r = train::load_image_recipe(st.tree);
    const std::string s = split == "train" ? r.data.train_split : r.data.test_split;
    if (r.data.format == "mnist") return open_mnist(r.data.root, s);
    if (r.data.format == "cifar10") return open_cifar(r.data.root, split);
    return open_image_folder((fs::path(r.data.root) / s).string());
  }
  if (st.modality == "audio") {
    train::Recipe r = train::load_recipe(st.tree);
    return open_speech(r.data.root,
                       r.data.path(split == "train" ? r.data.train_split : r.data.test_split));
  }
  train::ClipRecipe r = train::load_clip_recipe(st.tree);
  if (r.data.format == "tsv") {
    throw UsageError(
        "embed: the checkpoint's recipe reads caption TSV files: give --data images:DIR or "
        "--data captions:FILE");
  }
  if (st.features == "audio") {
    return open_speech(r.data.speech_root, "all");
  }
  return open_mnist(r.data.root, split);
}

bool is_librispeech(const std::string& dir) {
  try {
    data::LibriSpeechDataset ds(dir);
    return ds.size() > 0;
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<Source> open_source(const EncoderState& st, const std::string& spec) {
  if (spec.empty()) return open_recipe_data(st, "test");
  const auto parts = split_spec(spec);
  const std::string& head = parts[0];
  auto arg = [&](std::size_t i, const std::string& fallback) {
    return parts.size() > i && !parts[i].empty() ? parts[i] : fallback;
  };
  auto need_path = [&](const char* what) {
    check<UsageError>(parts.size() >= 2 && !parts[1].empty(),
                      "embed: --data {}: needs a path ({}:PATH)", head, what);
    check<UsageError>(parts.size() <= 3, "embed: --data '{}': too many ':' parts", spec);
  };
  if (head == "recipe") return open_recipe_data(st, arg(1, "test"));
  if (head == "mnist") {
    need_path("mnist");
    return open_mnist(parts[1], arg(2, "test"));
  }
  if (head == "cifar10") {
    need_path("cifar10");
    return open_cifar(parts[1], arg(2, "test"));
  }
  if (head == "images") {
    need_path("images");
    return open_image_folder(parts[1]);
  }
  if (head == "speech") {
    need_path("speech");
    return open_speech(parts[1], arg(2, ""));
  }
  if (head == "audio") {
    need_path("audio");
    return open_audio_folder(parts[1]);
  }
  if (head == "captions") {
    need_path("captions");
    return open_captions(parts[1]);
  }
  // A plain path.
  check<DataError>(path_exists(spec),
                   "embed: --data '{}' is neither an existing path nor a KIND:PATH spec (kinds: "
                   "recipe, mnist, cifar10, images, speech, audio, captions)",
                   spec);
  if (!fs::is_directory(spec)) return open_captions(spec);
  if (path_exists(spec + "/t10k-images-idx3-ubyte") ||
      path_exists(spec + "/train-images-idx3-ubyte"))
    return open_mnist(spec, path_exists(spec + "/t10k-images-idx3-ubyte") ? "test" : "train");
  if (path_exists(spec + "/test_batch.bin") || path_exists(spec + "/cifar-10-batches-bin"))
    return open_cifar(spec, "test");
  bool audio = false, images = false;
  for (const auto& entry : fs::recursive_directory_iterator(spec)) {
    if (!entry.is_regular_file()) continue;
    audio = audio || has_extension(entry.path(), kAudioExts);
    images = images || has_extension(entry.path(), kImageExts);
    if (audio || images) break;
  }
  if (audio) return is_librispeech(spec) ? open_speech(spec, "") : open_audio_folder(spec);
  if (images) return open_image_folder(spec);
  throw DataError(
      fmt::format("embed: --data '{}' holds no images, audio or MNIST/CIFAR files", spec));
}

// ---- chunks and the manifest -------------------------------------------------------------------

std::string chunk_path(const std::string& dir, std::int64_t k) {
  return fmt::format("{}/chunk-{:06d}.safetensors", dir, k);
}

bool chunk_complete(const std::string& path, const std::string& last_id) {
  if (!path_exists(path)) return false;
  try {
    auto h = io::read_safetensors_header(path);
    auto it = h.metadata.find("last_item");
    return it != h.metadata.end() && it->second == last_id;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

EmbedSummary embed_dataset(const EmbedOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  check<UsageError>(!o.out.empty(), "embed: --out is required");
  check<ConfigError>(o.batch_size >= 1, "embed: --batch-size must be >= 1 (got {})", o.batch_size);
  check<ConfigError>(o.chunk_size >= 0, "embed: --chunk-size must be >= 0 (got {})", o.chunk_size);
  EmbedSummary summary;
  summary.out = o.out;
  if (path_exists(o.out) && !o.overwrite) {
    bool complete = false;
    try {
      auto h = io::read_safetensors_header(o.out);
      auto it = h.metadata.find("complete");
      complete = it != h.metadata.end() && it->second == "true";
      if (complete) {
        summary.already_complete = true;
        summary.count = std::stoll(h.metadata.at("count"));
        summary.dim = std::stoll(h.metadata.at("dim"));
      }
    } catch (const std::exception&) {
    }
    if (complete) return summary;
    throw DataError(fmt::format(
        "embed: '{}' exists and is not a complete embeddings file (give --overwrite to replace it)",
        o.out));
  }
  if (o.threads > 0) set_threads(static_cast<int>(o.threads));
  auto state = open_encoder_state(o.checkpoint, o.features, parse_device(o.device));
  const EncoderState& st = *state;
  std::unique_ptr<Source> source = open_source(st, o.data);
  const std::string kind = source->kind();
  if (kind == "image") {
    check<DataError>(st.takes_images(), "embed: {} ({}, features '{}') does not encode images",
                     st.checkpoint, st.method_name, st.features);
  } else if (kind == "audio") {
    check<DataError>(st.takes_audio() && st.features != "image",
                     "embed: {} ({}, features '{}') does not encode audio", st.checkpoint,
                     st.method_name, st.features);
  } else {
    check<DataError>(st.takes_text(), "embed: {} ({}, features '{}') does not encode text",
                     st.checkpoint, st.method_name, st.features);
  }
  check<UsageError>(!o.frames || (kind == "audio" && st.modality == "audio"),
                    "embed: --frames needs audio items and a speech (cpc_audio) checkpoint "
                    "(got {} items, method {})",
                    kind, st.method_name);
  const std::int64_t n = source->size();
  const std::int64_t chunk = o.chunk_size > 0 ? o.chunk_size : 16 * o.batch_size;
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  summary.items = n;
  summary.chunks = chunks;
  summary.dim = st.dim;

  // The manifest: everything that determines the rows.
  nlohmann::json manifest = {{"checkpoint", st.checkpoint},
                             {"checkpoint_bytes", file_size(st.checkpoint)},
                             {"step", st.step},
                             {"data", source->spec},
                             {"features", st.features},
                             {"frames", o.frames},
                             {"batch_size", o.batch_size},
                             {"chunk_size", chunk},
                             {"items", n},
                             {"device", o.device}};
  const std::string partial = o.out + ".partial";
  const std::string manifest_path = partial + "/manifest.json";
  if (path_exists(partial)) {
    nlohmann::json old;
    bool readable = true;
    try {
      old = nlohmann::json::parse(read_file(manifest_path));
    } catch (const std::exception&) {
      readable = false;
    }
    std::string diff;
    if (readable) {
      for (auto it = manifest.begin(); it != manifest.end(); ++it) {
        if (!old.contains(it.key()) || old[it.key()] != it.value()) {
          diff = fmt::format("{} was {} and is now {}", it.key(),
                             old.contains(it.key()) ? old[it.key()].dump() : "absent",
                             it.value().dump());
          break;
        }
      }
    } else {
      diff = fmt::format("{} is missing or unreadable", manifest_path);
    }
    if (!diff.empty()) {
      if (!o.restart) {
        throw DataError(fmt::format(
            "embed: '{}' holds an unfinished run with other arguments ({}); give --restart to "
            "discard it, or rerun the original command to finish it",
            partial, diff));
      }
      log().info("embed: discarding '{}' ({})", partial, diff);
      remove_all(partial);
    }
  }
  if (!path_exists(partial)) {
    make_dirs(partial);
    write_file_atomic(manifest_path, manifest.dump(2) + "\n");
  }

  auto last_id_of = [&](std::int64_t k) { return std::to_string(std::min(n, (k + 1) * chunk)); };
  std::int64_t first = 0;
  while (first < chunks && chunk_complete(chunk_path(partial, first), last_id_of(first))) ++first;
  summary.chunks_reused = first;
  if (first > 0) log().info("embed: resuming '{}' after {} of {} chunks", partial, first, chunks);
  {
    std::unique_ptr<Progress> progress;
    if (o.progress) {
      progress = std::make_unique<Progress>("embedding", n, kind == "text" ? "caption" : kind);
      progress->set(std::min(n, first * chunk));
    }
    std::int64_t done_now = 0;
    for (std::int64_t k = first; k < chunks; ++k) {
      if (o.stop_after_chunks > 0 && done_now >= o.stop_after_chunks) {
        summary.stopped = true;
        break;
      }
      const std::int64_t b = k * chunk, e = std::min(n, b + chunk);
      Rows rows;
      try {
        source->encode(st, b, e, o.batch_size, o.frames, rows);
      } catch (const Error&) {
        rethrow_with_context(fmt::format("embed: items {}..{} of {}", b, e - 1, source->spec));
      }
      io::SafetensorsFile f;
      f.tensors.emplace_back("embeddings", rows.vectors.empty() ? torch::zeros({0, st.dim})
                                                                : torch::cat(rows.vectors));
      f.tensors.emplace_back("labels", torch::tensor(rows.labels, torch::kLong).reshape({-1}));
      f.tensors.emplace_back("ids", pack_ids(rows.ids));
      f.metadata["first_item"] = std::to_string(b);
      f.metadata["last_item"] = last_id_of(k);
      f.metadata["rows"] = std::to_string(rows.ids.size());
      io::write_safetensors(chunk_path(partial, k), f);
      ++done_now;
      if (progress) progress->advance(e - b);
    }
    if (progress && !summary.stopped) progress->finish();
  }
  if (summary.stopped) {
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return summary;
  }
  // Assemble.
  Embeddings all;
  std::vector<torch::Tensor> vectors, labels;
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::string path = chunk_path(partial, k);
    io::SafetensorsFile f = io::read_safetensors(path);
    check<DataError>(f.metadata.count("last_item") && f.metadata.at("last_item") == last_id_of(k),
                     "embed: chunk '{}' does not match its manifest (delete '{}' and rerun)", path,
                     partial);
    const auto& v = f.at("embeddings");
    vectors.push_back(v);
    labels.push_back(f.at("labels"));
    auto ids = unpack_ids(f.at("ids"), v.size(0), path);
    all.ids.insert(all.ids.end(), std::make_move_iterator(ids.begin()),
                   std::make_move_iterator(ids.end()));
  }
  all.vectors = vectors.empty() ? torch::zeros({0, st.dim}) : torch::cat(vectors);
  all.labels = labels.empty() ? torch::zeros({0}, torch::kLong) : torch::cat(labels);
  {
    std::unordered_set<std::string> seen;
    seen.reserve(all.ids.size());
    for (const auto& id : all.ids)
      check<DataError>(seen.insert(id).second, "embed: duplicate item id '{}' in {}", id,
                       source->spec);
  }
  all.meta = {{"checkpoint", st.checkpoint},
              {"method", st.method_name},
              {"features", st.features},
              {"modality", st.modality},
              {"items", kind},
              {"pooling", o.frames ? "frames" : (kind == "audio" ? st.pooling() : "none")},
              {"data", source->spec},
              {"step", std::to_string(st.step)},
              {"contra_version", CONTRA_VERSION}};
  write_embeddings(o.out, all);
  remove_all(partial);
  summary.count = all.vectors.size(0);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace contra::embed
