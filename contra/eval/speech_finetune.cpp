#include "contra/eval/speech_finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/data/audio.h"
#include "contra/data/sentences.h"
#include "contra/eval/speech_probe.h"

namespace contra::eval {

void FinetuneConfig::validate() const {
  check<ConfigError>(!fractions.empty(), "fractions: must not be empty");
  for (double f : fractions) {
    check<ConfigError>(f > 0 && f <= 1, "fractions: each must be in (0, 1] (got {})", f);
  }
  check<ConfigError>(features == "context" || features == "encoder",
                     "features: unknown '{}' (expected context or encoder)", features);
  check<ConfigError>(steps >= 1, "steps: must be >= 1 (got {})", steps);
  check<ConfigError>(batch_size >= 1, "batch_size: must be >= 1 (got {})", batch_size);
  check<ConfigError>(window >= data::kSamplesPerFrame && window % data::kSamplesPerFrame == 0,
                     "window: must be a positive multiple of {} samples (got {})",
                     data::kSamplesPerFrame, window);
  check<ConfigError>(encoder_lr > 0, "encoder_lr: must be > 0 (got {})", encoder_lr);
  check<ConfigError>(head_lr > 0, "head_lr: must be > 0 (got {})", head_lr);
  check<ConfigError>(scratch_encoder_lr >= 0, "scratch_encoder_lr: must be >= 0 (got {})",
                     scratch_encoder_lr);
  check<ConfigError>(clip_grad_norm >= 0, "clip_grad_norm: must be >= 0 (got {})", clip_grad_norm);
  check<ConfigError>(test_utterances_per_speaker >= 0,
                     "test_utterances_per_speaker: must be >= 0 (got {})",
                     test_utterances_per_speaker);
}

std::vector<std::string> labelled_subset(const data::LibriSpeechDataset& dataset,
                                         const std::vector<std::string>& ids, double fraction,
                                         std::uint64_t seed) {
  check<ConfigError>(fraction > 0 && fraction <= 1, "finetune: fraction must be in (0, 1] (got {})",
                     fraction);
  check<DataError>(!ids.empty(), "finetune: the training split is empty");
  std::map<std::string, std::vector<std::string>> by_speaker;
  for (const auto& id : ids)
    by_speaker[dataset.utterance(dataset.index_of(id)).speaker].push_back(id);
  std::vector<std::vector<std::string>> lists;
  std::uint64_t salt = 0;
  for (auto& [speaker, list] : by_speaker) {
    data::SplitMix64 rng(data::mix_seed(seed, ++salt, 0x5ab5e7));
    for (std::size_t i = list.size(); i > 1; --i) std::swap(list[i - 1], list[rng.below(i)]);
    lists.push_back(std::move(list));
  }
  data::SplitMix64 order_rng(data::mix_seed(seed, 0, 0x5ab5e7));
  for (std::size_t i = lists.size(); i > 1; --i) std::swap(lists[i - 1], lists[order_rng.below(i)]);

  const auto want = static_cast<std::size_t>(
      std::max<long long>(1, std::llround(fraction * static_cast<double>(ids.size()))));
  std::vector<std::string> chosen;
  // Round-robin: the r-th utterance of every speaker (that has one) before any (r+1)-th.
  for (std::size_t round = 0; chosen.size() < want; ++round) {
    for (const auto& list : lists) {
      if (round < list.size() && chosen.size() < want) chosen.push_back(list[round]);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

namespace {

struct LabelledUtterance {
  torch::Tensor wave;    // (frames · 160) float: the samples that have labels
  torch::Tensor labels;  // (frames) int64
};

std::vector<LabelledUtterance> load_labelled(const data::LibriSpeechDataset& dataset,
                                             const data::PhoneAlignments& alignments,
                                             const std::vector<std::string>& ids) {
  std::vector<LabelledUtterance> out;
  for (const auto& id : ids) {
    check<DataError>(alignments.contains(id), "finetune: no phone alignment for utterance '{}'",
                     id);
    torch::Tensor wave = data::read_audio(dataset.utterance(dataset.index_of(id)).path)[0];
    // Whole 10 ms hops of audio against labels (one frame of rounding difference allowed).
    const std::int64_t frames = alignments.check_length(id, wave.size(0) / data::kSamplesPerFrame);
    check<DataError>(frames >= 1, "finetune: utterance '{}' is shorter than one frame", id);
    const auto& l = alignments.labels(id);
    out.push_back({wave.slice(0, 0, frames * data::kSamplesPerFrame).contiguous(),
                   torch::from_blob(const_cast<std::int16_t*>(l.data()), {frames}, torch::kInt16)
                       .to(torch::kInt64)});
  }
  return out;
}

/// Batch `step`: batch_size utterances drawn with replacement, each cropped to the batch's frame
/// count at a random frame offset f₀ (sample 160·f₀, labels f₀...). x (B, 1, 160·F), y (B, F).
std::pair<torch::Tensor, torch::Tensor> make_batch(const std::vector<LabelledUtterance>& utts,
                                                   const FinetuneConfig& config,
                                                   std::int64_t step) {
  data::SplitMix64 rng(data::mix_seed(static_cast<std::uint64_t>(config.seed),
                                      static_cast<std::uint64_t>(step), 0xf1e7));
  std::vector<std::size_t> pick;
  std::int64_t frames = config.window / data::kSamplesPerFrame;
  for (std::int64_t b = 0; b < config.batch_size; ++b) {
    pick.push_back(rng.below(utts.size()));
    frames = std::min(frames, utts[pick.back()].labels.size(0));
  }
  std::vector<torch::Tensor> xs, ys;
  for (std::size_t i : pick) {
    const auto& u = utts[i];
    const auto f0 = static_cast<std::int64_t>(
        rng.below(static_cast<std::uint64_t>(u.labels.size(0) - frames + 1)));
    xs.push_back(
        u.wave.slice(0, f0 * data::kSamplesPerFrame, (f0 + frames) * data::kSamplesPerFrame));
    ys.push_back(u.labels.slice(0, f0, f0 + frames));
  }
  return {torch::stack(xs).unsqueeze(1), torch::stack(ys)};
}

/// Cuts features (B, T, D) and labels (B, F) to a common frame count; T and F may differ by one
/// frame (rounding of the last partial frame), more is an error.
std::pair<torch::Tensor, torch::Tensor> align(const torch::Tensor& features,
                                              const torch::Tensor& labels) {
  const std::int64_t t = features.size(1), f = labels.size(1);
  check<DataError>(std::abs(t - f) <= 1,
                   "finetune: {} feature frames for {} labelled frames (a crop of {} samples); the "
                   "model must produce one frame per 160 samples",
                   t, f, f * data::kSamplesPerFrame);
  const std::int64_t n = std::min(t, f);
  return {features.slice(1, 0, n), labels.slice(1, 0, n)};
}

}  // namespace

FinetuneResult finetune_phones(method::Method& model, const data::LibriSpeechDataset& dataset,
                               const data::PhoneAlignments& alignments,
                               const std::vector<std::string>& train_ids,
                               const std::vector<std::string>& test_ids,
                               const FinetuneConfig& config, double encoder_lr,
                               c10::Device device) {
  config.validate();
  check<DataError>(!train_ids.empty(), "finetune: no labelled training utterances");
  const auto start = std::chrono::steady_clock::now();
  FinetuneResult result;
  std::vector<LabelledUtterance> utts = load_labelled(dataset, alignments, train_ids);
  result.train_utterances = static_cast<std::int64_t>(utts.size());
  const std::int64_t classes = alignments.num_classes();
  result.classes = classes;
  torch::Tensor counts = torch::zeros({classes}, torch::kInt64);
  for (const auto& u : utts) {
    result.train_frames += u.labels.size(0);
    counts += torch::bincount(u.labels, {}, classes);
  }
  const std::int64_t majority = counts.argmax().item<std::int64_t>();

  model.to(device);
  // Feature width from one eval-mode pass (train mode would move BatchNorm's running stats).
  std::int64_t dim = 0;
  {
    torch::NoGradGuard no_grad;
    model.eval();
    auto [x, y] = make_batch(utts, config, 0);
    dim = model.features(x.narrow(0, 0, 1).to(device), config.features).size(-1);
  }
  torch::manual_seed(static_cast<std::uint64_t>(config.seed));  // the same head for every model
  torch::nn::Linear head(dim, classes);
  head->to(device);

  std::vector<torch::Tensor> model_params;
  for (auto& p : model.parameters()) {
    if (p.requires_grad()) model_params.push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(model_params, std::make_unique<torch::optim::AdamOptions>(
                                        encoder_lr > 0 ? encoder_lr : config.encoder_lr));
  groups.emplace_back(head->parameters(),
                      std::make_unique<torch::optim::AdamOptions>(config.head_lr));
  torch::optim::Adam optimizer(std::move(groups), torch::optim::AdamOptions(config.head_lr));
  std::vector<torch::Tensor> all_params = model_params;
  for (auto& p : head->parameters()) all_params.push_back(p);

  model.train();
  head->train();
  Progress progress("finetune", config.steps, "step");
  for (std::int64_t step = 0; step < config.steps; ++step) {
    auto [x, y] = make_batch(utts, config, step);
    auto [features, labels] = align(model.features(x.to(device), config.features), y.to(device));
    torch::Tensor logits = head(features).reshape({-1, classes});  // (B·T, classes)
    torch::Tensor target = labels.reshape({-1});
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, target);
    optimizer.zero_grad();
    loss.backward();
    if (config.clip_grad_norm > 0)
      torch::nn::utils::clip_grad_norm_(all_params, config.clip_grad_norm);
    optimizer.step();
    const double l = loss.item<double>();
    check<NumericalError>(std::isfinite(l), "finetune: loss is {} at step {}", l, step);
    result.losses.push_back(l);
    if (step + 1 == config.steps) {
      result.train_accuracy =
          (logits.argmax(1) == target).to(torch::kFloat64).mean().item<double>();
    }
    progress.advance(1, fmt::format("loss {:.3f}", l));
  }
  progress.finish(fmt::format("loss {:.3f}", result.losses.back()));

  // Test: whole utterances, BatchNorm on running statistics, logits as the "features".
  model.eval();
  head->eval();
  const std::string kind = config.features;
  SpeechFeatureFn logits_fn = [&model, &head, &kind, device](const torch::Tensor& wave) {
    return head(model.features(wave.unsqueeze(0).to(device), kind).squeeze(0));
  };
  SpeechFeatures test =
      extract_speech_features(dataset, alignments, test_ids, config.test_utterances_per_speaker,
                              static_cast<std::uint64_t>(config.seed) + 1, logits_fn);
  result.test_utterances = test.utterances.size(0);
  result.test_frames = test.phone_labels.size(0);
  result.test_accuracy =
      (test.frames.argmax(1) == test.phone_labels).to(torch::kFloat64).mean().item<double>();
  result.chance_accuracy =
      (test.phone_labels == majority).to(torch::kFloat64).mean().item<double>();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string finetune_markdown(const std::vector<FinetuneRow>& rows) {
  std::string out =
      "| labelled | utterances | frames | pretrained acc (%) | scratch acc (%) | seconds |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    out += fmt::format(
        "| {:g}% | {} | {} | {:.1f} | {} | {:.0f} |\n", 100 * r.fraction,
        r.pretrained.train_utterances, r.pretrained.train_frames, 100 * r.pretrained.test_accuracy,
        r.has_scratch ? fmt::format("{:.1f}", 100 * r.scratch.test_accuracy) : std::string("-"),
        r.pretrained.seconds + (r.has_scratch ? r.scratch.seconds : 0.0));
  }
  if (!rows.empty()) {
    const auto& p = rows[0].pretrained;
    out += fmt::format(
        "\nframe phone accuracy on {} test frames ({} utterances) after {} steps; chance (most "
        "frequent labelled phone): {:.1f}% of {} classes\n",
        p.test_frames, p.test_utterances, p.losses.size(), 100 * p.chance_accuracy, p.classes);
  }
  return out;
}

}  // namespace contra::eval
