#pragma once
/// The CPC paper's evaluation protocol on speech (Oord et al. 2018, §3.1): frozen features, a
/// linear phone classifier on frames (train-split frames → test-split frames) and a linear speaker
/// classifier on utterance-averaged features, with baselines (MFCC, the same encoder randomly
/// initialised) through the same probe.
///
/// Frame alignment: feature frame t of an utterance is compared with alignment label t (10 ms
/// frames; the encoder's frame t covers samples [160·t, 160·t + 160) up to its receptive field); an
/// utterance whose feature and label counts differ by one frame is cut to the shorter
/// (PhoneAlignments::check_length).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "contra/data/librispeech.h"
#include "contra/eval/linear_probe.h"

namespace contra::eval {

struct SpeechProbeConfig {
  std::string features = "context";                // context (c_t) | encoder (z_t)
  std::int64_t train_utterances_per_speaker = 10;  // 0 = all train-split utterances
  std::int64_t test_utterances_per_speaker = 0;    // 0 = all test-split utterances
  std::int64_t max_train_frames = 200000;          // phone probe: random subset of training frames
  std::int64_t epochs = 40;
  std::int64_t batch_size = 2048;  // 0 = full batch
  double lr = 2e-3;
  double weight_decay = 0.0;
  std::int64_t hidden = 0;  // > 0: one-hidden-layer MLP phone probe as well
  std::vector<std::string> baselines = {"random", "mfcc"};
  std::int64_t seed = 1;

  template <class V>
  void visit(V& v) {
    v("features", features, "context (c_t) | encoder (z_t)");
    v("train_utterances_per_speaker", train_utterances_per_speaker, "0 = all");
    v("test_utterances_per_speaker", test_utterances_per_speaker, "0 = all");
    v("max_train_frames", max_train_frames, "phone probe training frames (random subset)");
    v("epochs", epochs, "probe training epochs (Adam)");
    v("batch_size", batch_size, "probe minibatch (0 = full batch)");
    v("lr", lr, "probe learning rate");
    v("weight_decay", weight_decay, "probe L2 penalty");
    v("hidden", hidden, "> 0: also a one-hidden-layer MLP phone probe of this width");
    v("baselines", baselines, "random (same model, untrained) and/or mfcc");
    v("seed", seed);
  }
  void validate() const;
};

/// Features of one utterance: wave (1, samples) at 16 kHz → (frames, dim).
using SpeechFeatureFn = std::function<torch::Tensor(const torch::Tensor& wave)>;

/// Frame and utterance features of a split, ready for the probes.
struct SpeechFeatures {
  torch::Tensor frames;          // (N, D)
  torch::Tensor phone_labels;    // (N) int64
  torch::Tensor utterances;      // (U, D): mean over each utterance's frames
  torch::Tensor speaker_labels;  // (U) int64
  double audio_seconds = 0;
};

/// Runs `fn` over utterances `ids` (a split, optionally limited per speaker with a seeded choice)
/// and collects frame features with their phone labels and pooled utterance features with speakers.
SpeechFeatures extract_speech_features(const data::LibriSpeechDataset& dataset,
                                       const data::PhoneAlignments& alignments,
                                       const std::vector<std::string>& ids,
                                       std::int64_t per_speaker, std::uint64_t seed,
                                       const SpeechFeatureFn& fn);

/// One row of the results table.
struct SpeechProbeRow {
  std::string name;
  std::int64_t dim = 0;
  ProbeResult phone, speaker;
  ProbeResult phone_mlp;  // when hidden > 0
  double seconds = 0;     // feature extraction + probes
};

/// Extracts train/test features with `fn` and trains both probes.
SpeechProbeRow run_speech_probe(const std::string& name, const SpeechFeatureFn& fn,
                                const data::LibriSpeechDataset& dataset,
                                const data::PhoneAlignments& alignments,
                                const std::vector<std::string>& train_ids,
                                const std::vector<std::string>& test_ids,
                                const SpeechProbeConfig& config);

/// Markdown table of rows (phone and speaker accuracy in %), with chance levels and set sizes.
std::string speech_probe_markdown(const std::vector<SpeechProbeRow>& rows, bool with_mlp);

}  // namespace contra::eval
