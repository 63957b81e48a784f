#include "contra/eval/speech_probe.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/data/audio.h"
#include "contra/data/sentences.h"

namespace contra::eval {

void SpeechProbeConfig::validate() const {
  check<ConfigError>(features == "context" || features == "encoder",
                     "features: unknown '{}' (expected context or encoder)", features);
  check<ConfigError>(train_utterances_per_speaker >= 0,
                     "train_utterances_per_speaker: must be >= 0 (got {})",
                     train_utterances_per_speaker);
  check<ConfigError>(test_utterances_per_speaker >= 0,
                     "test_utterances_per_speaker: must be >= 0 (got {})",
                     test_utterances_per_speaker);
  check<ConfigError>(max_train_frames >= 100, "max_train_frames: must be >= 100 (got {})",
                     max_train_frames);
  check<ConfigError>(epochs >= 1, "epochs: must be >= 1 (got {})", epochs);
  check<ConfigError>(batch_size >= 0, "batch_size: must be >= 0 (got {})", batch_size);
  check<ConfigError>(lr > 0, "lr: must be > 0 (got {})", lr);
  check<ConfigError>(weight_decay >= 0, "weight_decay: must be >= 0 (got {})", weight_decay);
  check<ConfigError>(hidden >= 0, "hidden: must be >= 0 (got {})", hidden);
  for (const auto& b : baselines) {
    check<ConfigError>(b == "random" || b == "mfcc",
                       "baselines: unknown '{}' (expected random, mfcc)", b);
  }
}

SpeechFeatures extract_speech_features(const data::LibriSpeechDataset& dataset,
                                       const data::PhoneAlignments& alignments,
                                       const std::vector<std::string>& ids,
                                       std::int64_t per_speaker, std::uint64_t seed,
                                       const SpeechFeatureFn& fn) {
  // A seeded choice of `per_speaker` utterances of each speaker (all when 0), in id order.
  std::map<std::string, std::vector<std::string>> by_speaker;
  for (const auto& id : ids)
    by_speaker[dataset.utterance(dataset.index_of(id)).speaker].push_back(id);
  std::vector<std::string> chosen;
  std::uint64_t salt = 0;
  for (auto& [speaker, list] : by_speaker) {
    ++salt;
    if (per_speaker > 0 && static_cast<std::int64_t>(list.size()) > per_speaker) {
      data::SplitMix64 rng(data::mix_seed(seed, salt));
      for (std::size_t i = list.size(); i > 1; --i) std::swap(list[i - 1], list[rng.below(i)]);
      list.resize(static_cast<std::size_t>(per_speaker));
    }
    chosen.insert(chosen.end(), list.begin(), list.end());
  }
  std::sort(chosen.begin(), chosen.end());
  check<DataError>(!chosen.empty(), "speech probe: no utterances in the split");

  std::vector<torch::Tensor> frames, labels, pooled;
  std::vector<std::int64_t> speakers;
  SpeechFeatures out;
  Progress progress("features", static_cast<std::int64_t>(chosen.size()), "utt");
  torch::NoGradGuard no_grad;
  for (const auto& id : chosen) {
    std::size_t index = dataset.index_of(id);
    torch::Tensor wave = data::read_audio(dataset.utterance(index).path);
    out.audio_seconds += static_cast<double>(wave.size(1)) / 16000.0;
    torch::Tensor f = fn(wave).to(torch::kCPU, torch::kFloat32);
    check<DataError>(f.dim() == 2, "speech probe: features of '{}' must be (frames, dim)", id);
    std::int64_t n = alignments.check_length(id, f.size(0));
    const auto& l = alignments.labels(id);
    frames.push_back(f.slice(0, 0, n));
    labels.push_back(torch::from_blob(const_cast<std::int16_t*>(l.data()), {n}, torch::kInt16)
                         .to(torch::kInt64));
    pooled.push_back(f.slice(0, 0, n).mean(0));
    speakers.push_back(dataset.speaker_index(index));
    progress.advance();
  }
  progress.finish();
  out.frames = torch::cat(frames);
  out.phone_labels = torch::cat(labels);
  out.utterances = torch::stack(pooled);
  out.speaker_labels = torch::tensor(speakers, torch::kInt64);
  return out;
}

SpeechProbeRow run_speech_probe(const std::string& name, const SpeechFeatureFn& fn,
                                const data::LibriSpeechDataset& dataset,
                                const data::PhoneAlignments& alignments,
                                const std::vector<std::string>& train_ids,
                                const std::vector<std::string>& test_ids,
                                const SpeechProbeConfig& config) {
  config.validate();
  auto start = std::chrono::steady_clock::now();
  auto seed = static_cast<std::uint64_t>(config.seed);
  log().info("probe '{}': extracting features", name);
  SpeechFeatures train = extract_speech_features(dataset, alignments, train_ids,
                                                 config.train_utterances_per_speaker, seed, fn);
  SpeechFeatures test = extract_speech_features(dataset, alignments, test_ids,
                                                config.test_utterances_per_speaker, seed + 1, fn);
  torch::Tensor train_x = train.frames, train_y = train.phone_labels;
  if (train_x.size(0) > config.max_train_frames) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto keep =
        torch::randperm(train_x.size(0), gen, torch::kInt64).slice(0, 0, config.max_train_frames);
    train_x = train_x.index_select(0, keep);
    train_y = train_y.index_select(0, keep);
  }
  LinearProbeOptions options;
  options.epochs(config.epochs)
      .batch_size(config.batch_size)
      .lr(config.lr)
      .weight_decay(config.weight_decay)
      .seed(seed);
  SpeechProbeRow row;
  row.name = name;
  row.dim = train_x.size(1);
  row.phone = linear_probe(train_x, train_y, test.frames, test.phone_labels, options);
  if (config.hidden > 0) {
    auto mlp = options;
    mlp.hidden(config.hidden);
    row.phone_mlp = linear_probe(train_x, train_y, test.frames, test.phone_labels, mlp);
  }
  // Few utterances: full-batch, more epochs.
  auto speaker_options = options;
  speaker_options.batch_size(0).epochs(std::max<std::int64_t>(config.epochs, 300)).lr(1e-2);
  row.speaker = linear_probe(train.utterances, train.speaker_labels, test.utterances,
                             test.speaker_labels, speaker_options);
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log().info("probe '{}': phone {:.1f}%  speaker {:.1f}%  ({:.0f} s)", name,
             100 * row.phone.test_accuracy, 100 * row.speaker.test_accuracy, row.seconds);
  return row;
}

std::string speech_probe_markdown(const std::vector<SpeechProbeRow>& rows, bool with_mlp) {
  std::string out =
      with_mlp ? "| features | dim | phone acc (%) | phone acc, MLP (%) | speaker acc (%) |\n"
                 "|---|---|---|---|---|\n"
               : "| features | dim | phone acc (%) | speaker acc (%) |\n|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (with_mlp) {
      out += fmt::format("| {} | {} | {:.1f} | {:.1f} | {:.1f} |\n", r.name, r.dim,
                         100 * r.phone.test_accuracy, 100 * r.phone_mlp.test_accuracy,
                         100 * r.speaker.test_accuracy);
    } else {
      out += fmt::format("| {} | {} | {:.1f} | {:.1f} |\n", r.name, r.dim,
                         100 * r.phone.test_accuracy, 100 * r.speaker.test_accuracy);
    }
  }
  if (!rows.empty()) {
    out += fmt::format(
        "\nchance (most frequent class): phone {:.1f}% of {} classes, speaker {:.1f}% of {} "
        "speakers; "
        "{} train / {} test frames, {} / {} utterances\n",
        100 * rows[0].phone.chance_accuracy, rows[0].phone.classes,
        100 * rows[0].speaker.chance_accuracy, rows[0].speaker.classes, rows[0].phone.train_size,
        rows[0].phone.test_size, rows[0].speaker.train_size, rows[0].speaker.test_size);
  }
  return out;
}

}  // namespace contra::eval
