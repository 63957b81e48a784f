#pragma once
/// Readers for the LibriSpeech layout and the CPC phone alignments (DESIGN.md §10) — the same
/// readers serve a real LibriSpeech download and contra's built-in speech corpus.
///
///   LibriSpeechDataset ds("data/speech");                        // scans <spk>/<chapter>/*.flac
///   PhoneAlignments al("data/speech/converted_aligned_phones.txt", "data/speech/phones.txt");
///   auto split = read_split("data/speech/train_split.txt");
///   const auto& labels = al.labels(ds.utterance(0).id);           // one phone id per 10 ms frame
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace contra::data {

struct Utterance {
  std::string id;       // "<speaker>-<chapter>-<utterance>"
  std::string speaker;  // "<speaker>"
  std::string chapter;
  std::string path;        // audio file
  std::string transcript;  // "" when the chapter has no .trans.txt entry
};

/// An ordered (by id) list of LibriSpeech-layout utterances with dense speaker indices.
class LibriSpeechDataset {
 public:
  /// Scans `root` for `<speaker>/<chapter>/<speaker>-<chapter>-<utt>.<ext>` (ext: flac, wav) and
  /// reads every `<speaker>-<chapter>.trans.txt`. Throws DataError: root missing, no audio found, a
  /// malformed transcript line (file:line), a transcript naming no audio file, a file whose name
  /// does not match its folders.
  explicit LibriSpeechDataset(const std::string& root);

  std::size_t size() const { return utterances_.size(); }
  const Utterance& utterance(std::size_t i) const { return utterances_.at(i); }
  const std::vector<Utterance>& utterances() const { return utterances_; }
  /// Index of an utterance id; DataError naming the id when unknown.
  std::size_t index_of(const std::string& id) const;
  bool contains(const std::string& id) const { return by_id_.count(id) > 0; }
  /// Speakers in sorted order; `speaker_index(u)` is the position of u's speaker in it.
  const std::vector<std::string>& speakers() const { return speakers_; }
  std::int64_t speaker_index(std::size_t utterance) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::vector<Utterance> utterances_;
  std::unordered_map<std::string, std::size_t> by_id_;
  std::vector<std::string> speakers_;
  std::unordered_map<std::string, std::int64_t> speaker_ids_;
};

/// Frame-level phone labels in the CPC release format: `converted_aligned_phones.txt`, one line per
/// utterance, `<utt-id> <p0> <p1> ...`, one integer phone id per 10 ms frame (160 samples at 16
/// kHz).
class PhoneAlignments {
 public:
  /// `phones_path` (optional, "" to skip) maps id → symbol, one `<id> <symbol>` or `<symbol> <id>`
  /// a line; when given, every label must be one of its ids. Throws DataError naming file:line for
  /// non-integer or out-of-range ids, duplicate utterances, empty lines of labels.
  explicit PhoneAlignments(const std::string& alignments_path, const std::string& phones_path = "");

  bool contains(const std::string& id) const { return labels_.count(id) > 0; }
  /// Labels of an utterance; DataError "unknown utterance id" otherwise.
  const std::vector<std::int16_t>& labels(const std::string& id) const;
  /// Number of phone classes: from phones.txt when given, else max id + 1.
  std::int64_t num_classes() const { return num_classes_; }
  /// Symbol of an id ("" when phones.txt was not given).
  std::string symbol(std::int64_t id) const;
  std::size_t size() const { return labels_.size(); }
  std::vector<std::string> ids() const;

  /// Checks that an utterance of `frames` encoder frames has labels of the same length, allowing
  /// the one-frame difference that different rounding of the last partial frame causes. Returns the
  /// usable frame count min(frames, labels); throws DataError naming the utterance otherwise.
  std::int64_t check_length(const std::string& id, std::int64_t frames) const;

 private:
  std::string path_;
  std::unordered_map<std::string, std::vector<std::int16_t>> labels_;
  std::map<std::int64_t, std::string> symbols_;
  std::int64_t num_classes_ = 0;
};

/// Reads a split file (`train_split.txt` / `test_split.txt`): one utterance id a line.
/// Throws DataError for a missing file, an empty split or duplicate ids.
std::vector<std::string> read_split(const std::string& path);

/// Samples per 10 ms frame at 16 kHz.
inline constexpr std::int64_t kSamplesPerFrame = 160;

}  // namespace contra::data
