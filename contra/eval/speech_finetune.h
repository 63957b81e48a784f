#pragma once
/// Fine-tuning a speech model on few labels (the semi-supervised comparison of CPC-style papers:
/// Oord et al. 2018, arXiv:1807.03748; Kahn et al. 2020, Libri-light, arXiv:1912.07875): the
/// pretrained encoder (+ context network) with a linear phone head on c_t (or z_t) is trained end
/// to end with frame-level cross-entropy on a fraction of the labelled training utterances, and
/// compared with the same architecture trained from scratch on the same labels.
///
/// Frame alignment (docs/cpc.md): feature frame t of a crop that starts at sample 160·f₀ is
/// compared with alignment label f₀ + t. Crops therefore start on multiples of 160 samples; a batch
/// uses one crop length, min(window, shortest usable utterance of the batch), so no padding frames
/// enter the loss or the BatchNorm statistics.
///
///   auto subset = labelled_subset(dataset, train_ids, 0.1, 1);   // 10%, stratified by speaker
///   FinetuneResult r = finetune_phones(*model, dataset, alignments, subset, test_ids, config);
///   fmt::print("{:.1f}%\n", 100 * r.test_accuracy);
#include <cstdint>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "contra/data/librispeech.h"
#include "contra/method/method.h"

namespace contra::eval {

/// `finetune:` section of a speech recipe.
struct FinetuneConfig {
  std::vector<double> fractions = {0.01, 0.1};  // of the train-split utterances, each in (0, 1]
  std::string features = "context";             // context (c_t) | encoder (z_t): the head's input
  std::int64_t steps = 300;
  std::int64_t batch_size = 8;    // crops per step
  std::int64_t window = 20480;    // samples per crop (shorter utterances: the batch is cut to them)
  double encoder_lr = 1e-4;       // encoder + context network (Adam)
  double head_lr = 1e-3;          // the linear phone head
  double scratch_encoder_lr = 0;  // the from-scratch model's encoder lr; 0 = encoder_lr
  double clip_grad_norm = 1.0;    // 0 = off
  std::int64_t test_utterances_per_speaker = 0;  // 0 = the whole test split
  bool scratch = true;                           // also train the from-scratch baseline
  std::int64_t seed = 1;

  template <class V>
  void visit(V& v) {
    v("fractions", fractions, "fractions of the train-split utterances that keep their labels");
    v("features", features, "context (c_t) | encoder (z_t): input of the linear phone head");
    v("steps", steps, "optimizer steps per model");
    v("batch_size", batch_size, "crops per step");
    v("window", window, "samples per crop (multiple of 160)");
    v("encoder_lr", encoder_lr, "Adam learning rate of the encoder and context network");
    v("head_lr", head_lr, "Adam learning rate of the phone head");
    v("scratch_encoder_lr", scratch_encoder_lr, "from-scratch model's encoder lr (0 = encoder_lr)");
    v("clip_grad_norm", clip_grad_norm, "global gradient-norm clipping (0 = off)");
    v("test_utterances_per_speaker", test_utterances_per_speaker, "0 = the whole test split");
    v("scratch", scratch, "also train the same architecture from scratch on the same labels");
    v("seed", seed, "labelled subset, crops, head initialisation");
  }
  void validate() const;
};

/// A seeded choice of max(1, round(fraction · |ids|)) utterances, stratified by speaker: every
/// speaker's utterances are shuffled, then taken round-robin over the speakers (in a shuffled
/// order), so a small subset covers as many speakers as it can and speakers contribute evenly.
/// Subsets of one seed are nested: a smaller fraction's subset is part of a larger one's. Returns
/// ids in sorted order. ConfigError for a fraction outside (0, 1], DataError for empty `ids`.
std::vector<std::string> labelled_subset(const data::LibriSpeechDataset& dataset,
                                         const std::vector<std::string>& ids, double fraction,
                                         std::uint64_t seed);

struct FinetuneResult {
  double test_accuracy = 0;    // frame phone accuracy on the test utterances (model in eval mode)
  double train_accuracy = 0;   // on the last training batch, in train mode
  std::vector<double> losses;  // training cross-entropy per step
  std::int64_t train_utterances = 0, train_frames = 0;  // the labelled subset
  std::int64_t test_utterances = 0, test_frames = 0;
  std::int64_t classes = 0;
  double chance_accuracy = 0;  // test accuracy of the most frequent training phone
  double seconds = 0;          // training + evaluation
};

/// Trains `model` (its parameters through `model.features(x, config.features)`) plus a fresh linear
/// phone head (initialised from `config.seed`) with frame cross-entropy on utterances `train_ids`
/// for `config.steps` Adam steps (encoder_lr for the model, head_lr for the head; `encoder_lr`
/// overrides config.encoder_lr when > 0), then measures frame phone accuracy on `test_ids` (limited
/// to test_utterances_per_speaker) with the model in eval mode. Batch i is a pure function of
/// (config.seed, i): the same crops for every model. Parameters that `features` does not reach
/// (e.g. CPC's predictors) get no gradient and stay as they are. Throws ConfigError for an invalid
/// config or a crop shorter than the model's receptive field, DataError for utterances without
/// alignments or whose label count does not match the frame count.
FinetuneResult finetune_phones(method::Method& model, const data::LibriSpeechDataset& dataset,
                               const data::PhoneAlignments& alignments,
                               const std::vector<std::string>& train_ids,
                               const std::vector<std::string>& test_ids,
                               const FinetuneConfig& config, double encoder_lr = 0,
                               c10::Device device = c10::Device(c10::kCPU));

/// One row of the results table: one labelled fraction, pretrained and from-scratch.
struct FinetuneRow {
  double fraction = 0;
  FinetuneResult pretrained, scratch;
  bool has_scratch = false;
};

/// Markdown table of rows (accuracies in %), with the chance level and test-set size.
std::string finetune_markdown(const std::vector<FinetuneRow>& rows);

}  // namespace contra::eval
