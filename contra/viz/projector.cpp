#include "contra/viz/projector.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/audio.h"
#include "contra/data/sentences.h"
#include "contra/viz/tensorboard.h"

namespace contra::viz {

namespace {

std::string clean(std::string s) {
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s.empty() ? "-" : s;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

std::vector<std::int64_t> sample_indices(std::int64_t n, std::int64_t count, std::uint64_t seed) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::int64_t i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  if (n <= count) return all;
  // Partial Fisher-Yates with SplitMix64 (the data pipeline's seeded generator).
  data::SplitMix64 rng(data::mix_seed(seed, 0x9c7));
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.below(all.size() - i));
    std::swap(all[i], all[j]);
  }
  all.resize(static_cast<std::size_t>(count));
  std::sort(all.begin(), all.end());
  return all;
}

void write_projector(const std::string& dir, const EmbeddingSample& s) {
  check<DataError>(s.points.defined() && s.points.dim() == 2 && s.points.size(1) >= 1,
                   "projector: points must be (N, D)");
  const std::int64_t n = s.points.size(0);
  check<ConfigError>(n >= 1 && n <= kMaxProjectorPoints,
                     "projector: points must number 1..{} (got {})", kMaxProjectorPoints, n);
  check<DataError>(!s.columns.empty(), "projector: at least one metadata column is needed");
  check<DataError>(static_cast<std::int64_t>(s.rows.size()) == n,
                   "projector: {} metadata rows for {} points", s.rows.size(), n);
  torch::Tensor p = s.points.to(torch::kCPU, torch::kFloat).contiguous();
  check<DataError>(torch::isfinite(p).all().item<bool>(), "projector: non-finite embedding values");
  std::string tensors;
  tensors.reserve(static_cast<std::size_t>(p.numel()) * 12);
  const float* data = p.data_ptr<float>();
  const std::int64_t d = p.size(1);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t k = 0; k < d; ++k) {
      tensors += fmt::format(k == 0 ? "{:.6g}" : "\t{:.6g}", data[i * d + k]);
    }
    tensors += '\n';
  }
  std::vector<std::string> header;
  for (const auto& c : s.columns) header.push_back(clean(c));
  std::string metadata = fmt::format("{}\n", fmt::join(header, "\t"));
  for (const auto& row : s.rows) {
    check<DataError>(row.size() == s.columns.size(),
                     "projector: a metadata row has {} values for {} columns", row.size(),
                     s.columns.size());
    std::vector<std::string> values;
    for (const auto& v : row) values.push_back(clean(v));
    metadata += fmt::format("{}\n", fmt::join(values, "\t"));
  }
  make_dirs(dir);
  write_file_atomic(dir + "/tensors.tsv", tensors);
  write_file_atomic(dir + "/metadata.tsv", metadata);
  write_file_atomic(dir + "/projector_config.pbtxt",
                    "embeddings {\n  tensor_path: \"tensors.tsv\"\n  metadata_path: "
                    "\"metadata.tsv\"\n}\n");
  if (event_files(dir).empty()) EventWriter marker(dir);  // makes the folder a TensorBoard run
}

EmbeddingSample read_projector(const std::string& dir) {
  const std::string tensors_path = dir + "/tensors.tsv", metadata_path = dir + "/metadata.tsv";
  EmbeddingSample s;
  std::vector<float> values;
  std::int64_t dims = -1, n = 0;
  for (const auto& line : lines_of(read_file(tensors_path))) {
    auto fields = split_tabs(line);
    check<DataError>(dims < 0 || static_cast<std::int64_t>(fields.size()) == dims,
                     "'{}': line {} has {} values (the first line has {})", tensors_path, n + 1,
                     fields.size(), dims);
    dims = static_cast<std::int64_t>(fields.size());
    for (const auto& f : fields) {
      char* end = nullptr;
      const float v = std::strtof(f.c_str(), &end);
      check<DataError>(!f.empty() && end == f.c_str() + f.size() && std::isfinite(v),
                       "'{}': line {}: '{}' is not a finite number", tensors_path, n + 1, f);
      values.push_back(v);
    }
    ++n;
  }
  check<DataError>(n > 0, "'{}': no embeddings", tensors_path);
  s.points = torch::from_blob(values.data(), {n, dims}, torch::kFloat).clone();
  auto lines = lines_of(read_file(metadata_path));
  check<DataError>(static_cast<std::int64_t>(lines.size()) == n + 1,
                   "'{}': {} lines, expected a header and {} rows (one per line of '{}')",
                   metadata_path, lines.size(), n, tensors_path);
  s.columns = split_tabs(lines[0]);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    s.rows.push_back(split_tabs(lines[i]));
    check<DataError>(s.rows.back().size() == s.columns.size(),
                     "'{}': line {} has {} values for {} columns", metadata_path, i + 1,
                     s.rows.back().size(), s.columns.size());
  }
  return s;
}

std::int64_t write_image_projector(const std::string& dir, const eval::ImageFeatureFn& fn,
                                   const data::ImageDataset& test, const data::ChannelStats& stats,
                                   const c10::Device& device, std::int64_t count,
                                   std::uint64_t seed) {
  check<DataError>(test.size() > 0, "projector: empty test set");
  const auto picks = sample_indices(test.size(), std::min(count, kMaxProjectorPoints), seed);
  torch::Tensor index = torch::tensor(picks, torch::kLong);
  EmbeddingSample s;
  s.points =
      eval::extract_image_features(fn, test.images.index_select(0, index), stats, 256, device);
  s.columns = {"label", "index"};
  torch::Tensor labels = test.labels.index_select(0, index).to(torch::kCPU, torch::kLong);
  for (std::size_t i = 0; i < picks.size(); ++i) {
    const std::int64_t label = labels[static_cast<std::int64_t>(i)].item<std::int64_t>();
    std::string name = std::to_string(label);
    if (label >= 0 && label < static_cast<std::int64_t>(test.classes.size()))
      name = test.classes[static_cast<std::size_t>(label)];
    s.rows.push_back({name, std::to_string(picks[i])});
  }
  write_projector(dir, s);
  return s.points.size(0);
}

std::int64_t write_speech_projector(const std::string& dir, const eval::SpeechFeatureFn& fn,
                                    const data::LibriSpeechDataset& dataset,
                                    const data::PhoneAlignments& alignments,
                                    const std::vector<std::string>& test_ids, std::int64_t count,
                                    std::uint64_t seed) {
  count = std::min(count, kMaxProjectorPoints);
  std::vector<std::string> ids;
  for (const auto& id : test_ids) {
    if (alignments.contains(id)) ids.push_back(id);
  }
  check<DataError>(!ids.empty(), "projector: no aligned test utterances");
  std::sort(ids.begin(), ids.end());
  data::SplitMix64 rng(data::mix_seed(seed, 0x5be));
  for (std::size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[rng.below(i)]);
  std::vector<torch::Tensor> frames;
  std::vector<std::vector<std::string>> meta;
  torch::NoGradGuard no_grad;
  for (const auto& id : ids) {
    if (static_cast<std::int64_t>(meta.size()) >= 4 * count) break;
    const std::size_t index = dataset.index_of(id);
    torch::Tensor f =
        fn(data::read_audio(dataset.utterance(index).path)).to(torch::kCPU, torch::kFloat32);
    check<DataError>(f.dim() == 2, "projector: features of '{}' must be (frames, dim)", id);
    const std::int64_t n = alignments.check_length(id, f.size(0));
    const auto& labels = alignments.labels(id);
    frames.push_back(f.slice(0, 0, n));
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int64_t phone = labels[static_cast<std::size_t>(t)];
      const std::string symbol = alignments.symbol(phone);
      meta.push_back(
          {symbol.empty() ? std::to_string(phone) : symbol, dataset.utterance(index).speaker, id});
    }
  }
  torch::Tensor all = torch::cat(frames);
  const auto picks = sample_indices(all.size(0), count, seed);
  EmbeddingSample s;
  s.points = all.index_select(0, torch::tensor(picks, torch::kLong));
  s.columns = {"phone", "speaker", "utterance"};
  for (auto i : picks) s.rows.push_back(meta[static_cast<std::size_t>(i)]);
  write_projector(dir, s);
  return s.points.size(0);
}

}  // namespace contra::viz
