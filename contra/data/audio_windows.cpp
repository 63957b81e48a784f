#include "contra/data/audio_windows.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/audio.h"
#include "contra/data/sentences.h"

namespace contra::data {

AudioWindowSource::AudioWindowSource(const LibriSpeechDataset& dataset,
                                     const std::vector<std::string>& ids,
                                     AudioWindowOptions options)
    : dataset_(dataset), options_(options) {
  check<ConfigError>(options.window >= 160, "audio windows: window must be >= 160 samples (got {})",
                     options.window);
  for (const auto& id : ids) {
    std::size_t index = dataset.index_of(id);
    AudioInfo info = probe_audio(dataset.utterance(index).path);
    std::int64_t samples = info.frames;
    if (info.sample_rate != options.sample_rate) {
      samples = samples * options.sample_rate / info.sample_rate;  // resampled on load
    }
    if (samples < options.window) {
      ++skipped_;
      continue;
    }
    items_.push_back({index, samples, dataset.speaker_index(index), samples - options.window + 1});
  }
  if (items_.empty()) {
    throw DataError(
        fmt::format("audio windows: none of the {} utterances is at least {} samples long",
                    ids.size(), options.window));
  }
  std::int64_t total = 0;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    total += items_[i].positions;
    cumulative_.push_back(total);
    all_.push_back(i);
    by_speaker_[items_[i].speaker].push_back(i);
  }
  for (auto& [speaker, list] : by_speaker_) {
    speaker_list_.push_back(speaker);
    std::int64_t t = 0;
    for (std::size_t i : list) {
      t += items_[i].positions;
      speaker_cumulative_[speaker].push_back(t);
    }
  }
  std::sort(speaker_list_.begin(), speaker_list_.end());
}

std::int64_t AudioWindowSource::pick(std::uint64_t r, const std::vector<std::size_t>& pool,
                                     const std::vector<std::int64_t>& cumulative) const {
  // r uniform over [0, total positions): the item whose cumulative range holds it.
  auto it = std::upper_bound(cumulative.begin(), cumulative.end(), static_cast<std::int64_t>(r));
  return static_cast<std::int64_t>(pool[static_cast<std::size_t>(it - cumulative.begin())]);
}

torch::Tensor AudioWindowSource::audio(std::size_t dataset_index) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(dataset_index);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
  }
  AudioReadOptions read;
  read.sample_rate = options_.sample_rate;
  torch::Tensor wave = read_audio(dataset_.utterance(dataset_index).path, read);
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_.count(dataset_index)) return cache_[dataset_index].first;
  std::int64_t bytes = wave.numel() * static_cast<std::int64_t>(sizeof(float));
  while (!lru_.empty() && cached_bytes_ + bytes > options_.cache_bytes) {
    std::size_t victim = lru_.back();
    lru_.pop_back();
    cached_bytes_ -= cache_[victim].first.numel() * static_cast<std::int64_t>(sizeof(float));
    cache_.erase(victim);
  }
  if (bytes <= options_.cache_bytes) {
    lru_.push_front(dataset_index);
    cache_[dataset_index] = {wave, lru_.begin()};
    cached_bytes_ += bytes;
  }
  return wave;
}

method::Batch AudioWindowSource::batch(std::int64_t step, std::int64_t batch_size,
                                       std::int64_t speakers_per_batch, std::uint64_t seed) const {
  check<ConfigError>(batch_size >= 1, "audio windows: batch size must be >= 1 (got {})",
                     batch_size);
  SplitMix64 rng(mix_seed(seed, static_cast<std::uint64_t>(step), 0xba7c4));
  std::vector<std::int64_t> chosen_items;
  if (speakers_per_batch <= 0) {
    for (std::int64_t b = 0; b < batch_size; ++b) {
      chosen_items.push_back(pick(rng.below(cumulative_.back()), all_, cumulative_));
    }
  } else {
    check<ConfigError>(batch_size % speakers_per_batch == 0,
                       "audio windows: batch size {} is not a multiple of speakers_per_batch {}",
                       batch_size, speakers_per_batch);
    check<ConfigError>(speakers_per_batch <= static_cast<std::int64_t>(speaker_list_.size()),
                       "audio windows: speakers_per_batch {} exceeds the {} speakers of the split",
                       speakers_per_batch, speaker_list_.size());
    std::vector<std::int64_t> speakers = speaker_list_;
    for (std::int64_t i = 0; i < speakers_per_batch; ++i) {  // partial Fisher–Yates
      std::size_t j =
          static_cast<std::size_t>(i) + rng.below(speakers.size() - static_cast<std::size_t>(i));
      std::swap(speakers[static_cast<std::size_t>(i)], speakers[j]);
    }
    for (std::int64_t i = 0; i < speakers_per_batch; ++i) {
      std::int64_t spk = speakers[static_cast<std::size_t>(i)];
      const auto& cum = speaker_cumulative_.at(spk);
      for (std::int64_t k = 0; k < batch_size / speakers_per_batch; ++k) {
        chosen_items.push_back(pick(rng.below(cum.back()), by_speaker_.at(spk), cum));
      }
    }
  }
  method::Batch out;
  out.input = torch::empty({batch_size, 1, options_.window});
  out.labels = torch::empty({batch_size}, torch::kInt64);
  out.index = torch::empty({batch_size}, torch::kInt64);
  for (std::int64_t b = 0; b < batch_size; ++b) {
    const Item& item = items_[static_cast<std::size_t>(chosen_items[static_cast<std::size_t>(b)])];
    std::int64_t start =
        static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(item.positions)));
    torch::Tensor wave = audio(item.dataset_index);
    // The header's length can differ by a sample after resampling: clamp the start.
    start = std::min(start, wave.size(1) - options_.window);
    check<DataError>(start >= 0, "audio windows: '{}' is shorter than its header says",
                     dataset_.utterance(item.dataset_index).path);
    out.input[b].copy_(wave.narrow(1, start, options_.window));
    out.labels[b] = item.speaker;
    out.index[b] = static_cast<std::int64_t>(item.dataset_index);
  }
  return out;
}

}  // namespace contra::data
