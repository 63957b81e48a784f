#include "contra/data/librispeech.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "contra/core/error.h"

namespace contra::data {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_dash(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, '-');) parts.push_back(p);
  return parts;
}

bool parse_int64(const std::string& text, std::int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::ifstream open_text(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("reading {} '{}': cannot open file", what, path));
  return in;
}

}  // namespace

LibriSpeechDataset::LibriSpeechDataset(const std::string& root) : root_(root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw DataError(fmt::format("LibriSpeech root '{}': not a directory", root));
  }
  std::map<std::string, std::string> transcripts;  // id -> text
  std::vector<std::pair<std::string, std::string>> trans_files;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw DataError(fmt::format("scanning '{}': {}", root, ec.message()));
    if (!it->is_regular_file()) continue;
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    std::string ext = p.extension().string();
    if (name.size() > 10 && name.compare(name.size() - 10, 10, ".trans.txt") == 0) {
      trans_files.emplace_back(p.string(), name.substr(0, name.size() - 10));
      continue;
    }
    if (ext != ".flac" && ext != ".wav") continue;
    std::string id = p.stem().string();
    auto parts = split_dash(id);
    if (parts.size() != 3) continue;  // not a LibriSpeech utterance name (e.g. noise files)
    std::string chapter_dir = p.parent_path().filename().string();
    std::string speaker_dir = p.parent_path().parent_path().filename().string();
    if (parts[0] != speaker_dir || parts[1] != chapter_dir) {
      throw DataError(
          fmt::format("LibriSpeech file '{}': name does not match its folders "
                      "(expected <speaker>/<chapter>/<speaker>-<chapter>-<utt>)",
                      p.string()));
    }
    if (by_id_.count(id)) {
      throw DataError(
          fmt::format("LibriSpeech: utterance '{}' found twice ('{}')", id, p.string()));
    }
    by_id_[id] = utterances_.size();
    utterances_.push_back({id, parts[0], parts[1], p.string(), ""});
  }
  if (utterances_.empty()) {
    throw DataError(
        fmt::format("LibriSpeech root '{}': no <speaker>/<chapter>/*.flac|wav found", root));
  }
  for (const auto& [path, stem] : trans_files) {
    std::ifstream in = open_text(path, "transcripts");
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      auto space = line.find(' ');
      std::string id = line.substr(0, space);
      if (space == std::string::npos || split_dash(id).size() != 3 ||
          id.rfind(stem + "-", 0) != 0) {
        throw DataError(fmt::format("{}:{}: expected '<{}-utt> TRANSCRIPT' (got '{}')", path,
                                    line_no, stem, line.substr(0, 60)));
      }
      auto found = by_id_.find(id);
      if (found == by_id_.end()) {
        throw DataError(fmt::format("{}:{}: transcript for '{}' but no audio file of that name",
                                    path, line_no, id));
      }
      utterances_[found->second].transcript = line.substr(space + 1);
    }
  }
  std::sort(utterances_.begin(), utterances_.end(),
            [](const Utterance& a, const Utterance& b) { return a.id < b.id; });
  by_id_.clear();
  std::set<std::string> speakers;
  for (std::size_t i = 0; i < utterances_.size(); ++i) {
    by_id_[utterances_[i].id] = i;
    speakers.insert(utterances_[i].speaker);
  }
  speakers_.assign(speakers.begin(), speakers.end());
  for (std::size_t i = 0; i < speakers_.size(); ++i) speaker_ids_[speakers_[i]] = std::int64_t(i);
}

std::size_t LibriSpeechDataset::index_of(const std::string& id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    throw DataError(fmt::format("LibriSpeech '{}': unknown utterance id '{}'", root_, id));
  }
  return it->second;
}

std::int64_t LibriSpeechDataset::speaker_index(std::size_t utterance) const {
  return speaker_ids_.at(utterances_.at(utterance).speaker);
}

PhoneAlignments::PhoneAlignments(const std::string& alignments_path, const std::string& phones_path)
    : path_(alignments_path) {
  if (!phones_path.empty()) {
    std::ifstream in = open_text(phones_path, "phone list");
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      std::stringstream ss(line);
      std::string a, b, extra;
      if (!(ss >> a)) continue;
      if (!(ss >> b) || (ss >> extra)) {
        throw DataError(
            fmt::format("{}:{}: expected '<id> <symbol>' (got '{}')", phones_path, line_no, line));
      }
      std::int64_t id = 0;
      std::string symbol;
      if (parse_int64(a, id)) {
        symbol = b;
      } else if (parse_int64(b, id)) {
        symbol = a;
      } else {
        throw DataError(fmt::format("{}:{}: no integer id in '{}'", phones_path, line_no, line));
      }
      if (id < 0 || id > 32767 || symbols_.count(id)) {
        throw DataError(fmt::format("{}:{}: id {} is negative, too large or repeated", phones_path,
                                    line_no, id));
      }
      symbols_[id] = symbol;
    }
    if (symbols_.empty()) throw DataError(fmt::format("phone list '{}': empty", phones_path));
    num_classes_ = symbols_.rbegin()->first + 1;
  }
  std::ifstream in = open_text(alignments_path, "phone alignments");
  std::string line;
  std::int64_t max_id = -1;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string id, token;
    ss >> id;
    std::vector<std::int16_t> labels;
    while (ss >> token) {
      std::int64_t v = 0;
      if (!parse_int64(token, v) || v < 0 || v > 32767) {
        throw DataError(
            fmt::format("{}:{}: utterance '{}': phone id '{}' is not a non-negative "
                        "integer",
                        alignments_path, line_no, id, token));
      }
      if (!symbols_.empty() && !symbols_.count(v)) {
        throw DataError(
            fmt::format("{}:{}: utterance '{}': phone id {} is not in '{}' (expected "
                        "0..{})",
                        alignments_path, line_no, id, v, phones_path, num_classes_ - 1));
      }
      max_id = std::max(max_id, v);
      labels.push_back(static_cast<std::int16_t>(v));
    }
    if (labels.empty()) {
      throw DataError(
          fmt::format("{}:{}: utterance '{}' has no labels", alignments_path, line_no, id));
    }
    if (!labels_.emplace(id, std::move(labels)).second) {
      throw DataError(
          fmt::format("{}:{}: utterance '{}' appears twice", alignments_path, line_no, id));
    }
  }
  if (labels_.empty())
    throw DataError(fmt::format("phone alignments '{}': empty", alignments_path));
  if (symbols_.empty()) num_classes_ = max_id + 1;
}

const std::vector<std::int16_t>& PhoneAlignments::labels(const std::string& id) const {
  auto it = labels_.find(id);
  if (it == labels_.end()) {
    throw DataError(fmt::format("phone alignments '{}': unknown utterance id '{}'", path_, id));
  }
  return it->second;
}

std::string PhoneAlignments::symbol(std::int64_t id) const {
  auto it = symbols_.find(id);
  return it == symbols_.end() ? "" : it->second;
}

std::vector<std::string> PhoneAlignments::ids() const {
  std::vector<std::string> out;
  for (const auto& [id, _] : labels_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

std::int64_t PhoneAlignments::check_length(const std::string& id, std::int64_t frames) const {
  auto n = static_cast<std::int64_t>(labels(id).size());
  if (std::llabs(n - frames) > 1) {
    throw DataError(
        fmt::format("phone alignments '{}': utterance '{}' has {} labels but its audio has "
                    "{} frames (expected a difference of at most 1)",
                    path_, id, n, frames));
  }
  return std::min(n, frames);
}

std::vector<std::string> read_split(const std::string& path) {
  std::ifstream in = open_text(path, "split");
  std::vector<std::string> ids;
  std::set<std::string> seen;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::stringstream ss(line);
    std::string id;
    if (!(ss >> id)) continue;
    if (!seen.insert(id).second) {
      throw DataError(fmt::format("{}:{}: utterance '{}' listed twice", path, line_no, id));
    }
    ids.push_back(id);
  }
  if (ids.empty()) throw DataError(fmt::format("split '{}': no utterance ids", path));
  return ids;
}

}  // namespace contra::data
