#pragma once
/// TensorBoard projector files for a sample of embeddings with labels, in the projector plugin's
/// format, in one folder (contra probe writes RUN_DIR/tensorboard/projector/):
///   tensors.tsv             one embedding a line, values separated by tabs (no header)
///   metadata.tsv            a header line of column names, then one line per embedding
///   projector_config.pbtxt  embeddings { tensor_path: "tensors.tsv" metadata_path: "metadata.tsv"
///   } events.out.tfevents.*   an event file holding only the file version: TensorBoard lists a
///   folder
///                           as a run (and looks for its projector_config.pbtxt) only when it has
///                           one
/// `contra plot` reads the same folder back for its 2-D maps.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "contra/data/images.h"
#include "contra/data/librispeech.h"
#include "contra/eval/image_eval.h"
#include "contra/eval/speech_probe.h"

namespace contra::viz {

/// The default and largest sample size.
inline constexpr std::int64_t kProjectorPoints = 2000;
inline constexpr std::int64_t kMaxProjectorPoints = 5000;

/// Embeddings with metadata columns (at least one; tabs and newlines in values become spaces).
struct EmbeddingSample {
  torch::Tensor points;                        // float (N, D)
  std::vector<std::string> columns;            // metadata column names
  std::vector<std::vector<std::string>> rows;  // N rows of columns.size() values
};

/// `count` distinct indices of [0, n) (all when n <= count), seeded, in increasing order.
std::vector<std::int64_t> sample_indices(std::int64_t n, std::int64_t count, std::uint64_t seed);

/// Writes the projector folder `dir` (created; files replaced atomically). Throws DataError when
/// points and rows disagree or a value is not finite; ConfigError for points outside 1..5000 rows.
void write_projector(const std::string& dir, const EmbeddingSample& sample);
/// Reads a projector folder back; DataError naming the file for ragged rows, unparsable numbers,
/// or metadata rows that do not match the tensor rows.
EmbeddingSample read_projector(const std::string& dir);

/// Image probes: features of `count` seeded test images (columns: label, index — the class name
/// when the set has classes, and the image's position in the test set). Returns the number of
/// points written.
std::int64_t write_image_projector(const std::string& dir, const eval::ImageFeatureFn& fn,
                                   const data::ImageDataset& test, const data::ChannelStats& stats,
                                   const c10::Device& device, std::int64_t count,
                                   std::uint64_t seed);

/// Speech probes: frame features of the test split: a seeded choice of test utterances (until
/// 4·count frames are collected), then `count` seeded frames among them (columns: phone — the
/// symbol of phones.txt when given, else the id —, speaker, utterance).
std::int64_t write_speech_projector(const std::string& dir, const eval::SpeechFeatureFn& fn,
                                    const data::LibriSpeechDataset& dataset,
                                    const data::PhoneAlignments& alignments,
                                    const std::vector<std::string>& test_ids, std::int64_t count,
                                    std::uint64_t seed);

}  // namespace contra::viz
