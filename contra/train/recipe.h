#pragma once
/// A recipe: one YAML file with every setting of a run (DESIGN.md §4), resolved once into typed
/// sections. Sections: run, data, corpus, method, augment, train, optim, probe, finetune.
///
///   Recipe r = load_recipe(ConfigTree::load_file("configs/cpc_speech.yaml"));
///   TrainSummary s = train_recipe(r, /*resume=*/false);
///   auto rows = probe_recipe(r, latest_checkpoint(r.run_dir()));
#include <memory>
#include <string>
#include <vector>

#include "contra/core/config.h"
#include "contra/data/librispeech.h"
#include "contra/data/speech_corpus.h"
#include "contra/eval/speech_finetune.h"
#include "contra/eval/speech_probe.h"
#include "contra/train/train_config.h"
#include "contra/train/trainer.h"
#include "contra/transforms/audio_augment.h"

namespace contra::train {

struct RunConfig {
  std::string name = "cpc_speech";  // run directory = dir/name
  std::string dir = "runs";
  template <class V>
  void visit(V& v) {
    v("name", name, "run name (folder under dir)");
    v("dir", dir, "folder of run directories");
  }
  void validate() const;
};

/// `data:` a LibriSpeech-layout speech corpus with CPC alignments (the built-in one by default).
struct SpeechDataConfig {
  std::string root = "data/speech";
  std::string train_split = "train_split.txt";  // relative to root unless absolute
  std::string test_split = "test_split.txt";
  std::string alignments = "converted_aligned_phones.txt";
  std::string phones = "phones.txt";  // "" when the corpus has none
  std::int64_t window = 20480;        // samples per training window (1.28 s)
  std::int64_t cache_mb = 2048;       // decoded audio kept in memory
  bool generate = true;               // build the built-in corpus (corpus:) if root is missing
  template <class V>
  void visit(V& v) {
    v("root", root, "corpus root (LibriSpeech layout)");
    v("train_split", train_split, "utterance ids for training (relative to root)");
    v("test_split", test_split, "utterance ids for testing the probes");
    v("alignments", alignments, "CPC phone alignments (converted_aligned_phones.txt)");
    v("phones", phones, "phone id -> symbol list (\"\" = none)");
    v("window", window, "samples per training window");
    v("cache_mb", cache_mb, "decoded audio cache in MiB");
    v("generate", generate, "generate the built-in corpus when root does not exist");
  }
  void validate() const;
  /// `name` resolved against root.
  std::string path(const std::string& name) const;
};

/// `augment:` the audio augmentation chain applied to training windows in the loader threads (off
/// by default; see contra/transforms/audio_augment.h). Each batch's augmentation is seeded by
/// (train.seed, batch index), so it is reproducible and resumes exactly.
struct AudioAugmentConfig {
  double speed_p = 0, speed_min = 0.9, speed_max = 1.1;
  double shift_p = 0;
  std::int64_t max_shift = 800;
  double band_reject_p = 0, band_min_hz = 100, band_max_hz = 6000, width_min_hz = 50,
         width_max_hz = 800;
  double gain_p = 0, gain_min_db = -6, gain_max_db = 6;
  double noise_p = 0, snr_min_db = 5, snr_max_db = 30;
  std::string region = "all";  // all | past_only | future_only
  std::int64_t split_sample = -1;
  template <class V>
  void visit(V& v) {
    v("speed_p", speed_p, "probability of speed/pitch perturbation by resampling");
    v("speed_min", speed_min);
    v("speed_max", speed_max);
    v("shift_p", shift_p, "probability of a time shift");
    v("max_shift", max_shift, "samples");
    v("band_reject_p", band_reject_p, "probability of a band-reject filter");
    v("band_min_hz", band_min_hz);
    v("band_max_hz", band_max_hz);
    v("width_min_hz", width_min_hz);
    v("width_max_hz", width_max_hz);
    v("gain_p", gain_p, "probability of a random gain");
    v("gain_min_db", gain_min_db);
    v("gain_max_db", gain_max_db);
    v("noise_p", noise_p, "probability of additive noise");
    v("snr_min_db", snr_min_db);
    v("snr_max_db", snr_max_db);
    v("region", region, "all | past_only | future_only");
    v("split_sample", split_sample, "end of the past region (-1 = middle of the window)");
  }
  transforms::AudioAugmentOptions options() const;
  void validate() const;
};

struct Recipe {
  ConfigTree tree;
  RunConfig run;
  SpeechDataConfig data;
  data::SpeechCorpusConfig corpus;
  AudioAugmentConfig augment;
  TrainConfig train;
  OptimConfig optim;
  eval::SpeechProbeConfig probe;
  eval::FinetuneConfig finetune;

  std::string run_dir() const { return run.dir + "/" + run.name; }
  /// The fully resolved config (every section, defaults filled in, schema_version).
  std::string resolved_yaml() const;
};

/// Reads every section (unknown sections and keys rejected with file:line).
Recipe load_recipe(const ConfigTree& tree);

/// The opened speech corpus of a recipe.
struct SpeechData {
  std::unique_ptr<data::LibriSpeechDataset> dataset;
  std::unique_ptr<data::PhoneAlignments> alignments;
  std::vector<std::string> train_ids, test_ids;
};
/// Opens (and, when allowed and missing, first generates) the corpus.
SpeechData open_speech_data(const Recipe& recipe);

/// Trains the recipe's method into run_dir(); `resume` continues from its last checkpoint.
TrainSummary train_recipe(const Recipe& recipe, bool resume);

/// Probes the checkpoint (and the baselines of probe.baselines) and writes results.json /
/// results.md into `out_dir`. Returns the rows, model first.
std::vector<eval::SpeechProbeRow> probe_recipe(const Recipe& recipe, const std::string& checkpoint,
                                               const std::string& out_dir);

/// Fine-tunes the checkpoint's encoder (+ context network) with a linear phone head on each
/// finetune.fraction of the labelled train-split utterances and, with finetune.scratch, the same
/// architecture from its initial weights (seed train.seed) on the same labels and crops; tests on
/// the test split. Writes results_finetune.json / results_finetune.md into `out_dir`. DataError
/// when the corpus has no phone alignments.
std::vector<eval::FinetuneRow> finetune_recipe(const Recipe& recipe, const std::string& checkpoint,
                                               const std::string& out_dir);

}  // namespace contra::train
