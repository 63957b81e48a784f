#pragma once
/// Random fixed-length windows of speech for CPC training, read on demand with a bounded cache.
///
/// Windows are a pure function of (seed, step): window positions are uniform over all positions of
/// all long-enough utterances of the split (longer utterances give proportionally more windows, as
/// when sampling from the concatenated corpus). With `speakers_per_batch` = P > 0 a batch holds
/// B / P windows from each of P distinct speakers (for CPC's same-speaker negatives).
///
///   AudioWindowSource source(dataset, read_split(".../train_split.txt"), {.window = 20480});
///   Batch b = source.batch(step, /*batch=*/8, /*speakers_per_batch=*/0, seed);  // input (8, 1,
///   20480)
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

#include "contra/data/librispeech.h"
#include "contra/method/method.h"

namespace contra::data {

struct AudioWindowOptions {
  std::int64_t window = 20480;  // samples per window
  std::int64_t sample_rate = 16000;
  std::int64_t cache_bytes = std::int64_t(2) << 30;  // decoded audio kept in memory (LRU)
};

class AudioWindowSource {
 public:
  /// `ids`: the utterances to draw from (a split). Reads only headers here. Throws DataError when
  /// an id is unknown or no utterance is at least one window long.
  AudioWindowSource(const LibriSpeechDataset& dataset, const std::vector<std::string>& ids,
                    AudioWindowOptions options = {});

  /// The batch of a step: input (B, 1, window) float, labels (B) speaker index, index (B) utterance
  /// index in the dataset. Thread-safe.
  method::Batch batch(std::int64_t step, std::int64_t batch_size, std::int64_t speakers_per_batch,
                      std::uint64_t seed) const;

  /// A whole utterance (1, samples), through the cache. Thread-safe.
  torch::Tensor audio(std::size_t dataset_index) const;

  std::size_t utterances() const { return items_.size(); }
  std::size_t speakers() const { return by_speaker_.size(); }
  std::int64_t window() const { return options_.window; }
  /// Utterances skipped for being shorter than a window.
  std::size_t skipped() const { return skipped_; }

 private:
  struct Item {
    std::size_t dataset_index;
    std::int64_t samples;
    std::int64_t speaker;
    std::int64_t positions;  // samples - window + 1
  };
  std::int64_t pick(std::uint64_t r, const std::vector<std::size_t>& pool,
                    const std::vector<std::int64_t>& cumulative) const;

  const LibriSpeechDataset& dataset_;
  AudioWindowOptions options_;
  std::vector<Item> items_;
  std::vector<std::int64_t> cumulative_;  // prefix sums of positions over items_
  std::vector<std::size_t> all_;
  std::vector<std::int64_t> speaker_list_;
  std::unordered_map<std::int64_t, std::vector<std::size_t>> by_speaker_;
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> speaker_cumulative_;
  std::size_t skipped_ = 0;

  // LRU cache of decoded utterances.
  mutable std::mutex mutex_;
  mutable std::list<std::size_t> lru_;
  mutable std::unordered_map<std::size_t,
                             std::pair<torch::Tensor, std::list<std::size_t>::iterator>>
      cache_;
  mutable std::int64_t cached_bytes_ = 0;
};

}  // namespace contra::data
