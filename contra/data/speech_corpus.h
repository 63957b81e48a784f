#pragma once
/// The built-in speech corpus: English sentences synthesised by espeak-ng with many distinct
/// speakers, written in the LibriSpeech layout with CPC-format frame-level phone alignments
/// (DESIGN.md §10).
///
/// espeak-ng is GPL-3.0 and keeps global, thread-unsafe state, so synthesis runs in the separate
/// `contra-speechgen` program (apps/speechgen), one fresh process per speaker and `jobs` at a time.
/// Output is byte-for-byte identical for the same config, whatever `jobs` is.
///
///   SpeechCorpusConfig config;                      // 48 speakers × 40 utterances
///   CorpusStats stats = generate_speech_corpus(config, "data/speech");
///
/// Frame rule: each FLAC is padded with silence to a whole number of 10 ms frames (160 samples), so
/// frames = samples / 160 exactly; frame i is labelled with the last phone whose start (mapped
/// 22050 → 16000 Hz) is at or before its centre, sample 160·i + 80. eSpeak pauses (`_`, `_:`, `_!`
/// …) are one class, `SIL`, id 0; the other phone symbols get ids 1.. in sorted order (phones.txt).
#include <cstdint>
#include <string>
#include <vector>

#include "contra/data/degrade.h"

namespace contra::data {

/// Version of the generator's output; bump when the same config would produce different bytes.
inline constexpr int kSpeechCorpusVersion = 1;

struct SpeechCorpusConfig {
  std::int64_t speakers = 48;
  std::int64_t utterances = 40;  // per speaker
  std::int64_t seed = 1;
  std::string text = "sentences";  // sentences | digits
  double test_fraction = 0.2;      // per speaker, at least one utterance each side
  std::int64_t jobs = 0;           // worker processes; 0 = number of cores
  std::vector<std::string> voices = {"en-us",  "en",        "en-gb-scotland", "en-gb-x-rp",
                                     "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"};
  std::vector<std::string> variants = {
      "m1",   "m2",    "m3",    "m4",      "m5",       "m6",    "m7",     "m8",
      "f1",   "f2",    "f3",    "f4",      "f5",       "klatt", "klatt2", "klatt3",
      "adam", "Andy",  "anika", "belinda", "benjamin", "david", "edward", "iven",
      "john", "linda", "max",   "paul",    "steph",    "victor"};
  std::int64_t pitch_min = 25, pitch_max = 75;  // espeak pitch 0..100
  std::int64_t range_min = 30, range_max = 80;  // espeak pitch range 0..100
  std::int64_t rate_min = 135, rate_max = 195;  // words per minute 80..450
  bool degrade = true;
  DegradeConfig degradation;
  /// Path of contra-speechgen; "" = beside the running executable.
  std::string speechgen;

  template <class V>
  void visit(V& v) {
    v("speakers", speakers, "number of speakers (2..10000)");
    v("utterances", utterances, "utterances per speaker (>= 2)");
    v("seed", seed, "seed of sentences, speakers, splits and degradations");
    v("text", text,
      "sentences (the phrase grammar) | digits (one spoken digit word per utterance: utterance u "
      "of speaker s says (u + s) mod 10)");
    v("test_fraction", test_fraction, "share of each speaker's utterances in test_split.txt");
    v("jobs", jobs, "parallel synthesiser processes (0 = all cores)");
    v("voices", voices, "espeak-ng English voices to draw accents from");
    v("variants", variants, "espeak-ng voice variants (files of espeak-ng-data/voices/!v)");
    v("pitch_min", pitch_min);
    v("pitch_max", pitch_max);
    v("range_min", range_min);
    v("range_max", range_max);
    v("rate_min", rate_min);
    v("rate_max", rate_max);
    v("degrade", degrade, "add noise / reverberation / gain variation");
    v("degradation", degradation);
    v("speechgen", speechgen, "path of contra-speechgen (\"\" = beside contra)");
  }
  void validate() const;
};

/// One synthetic speaker.
struct SpeakerSpec {
  std::string id;       // LibriSpeech-style numeric id, e.g. "1001"
  std::string voice;    // espeak-ng voice (accent)
  std::string variant;  // espeak-ng variant (timbre)
  std::int64_t pitch = 50, range = 50, rate = 160;
};

struct CorpusStats {
  std::int64_t speakers = 0;
  std::int64_t utterances = 0;
  std::int64_t train_utterances = 0;
  std::int64_t test_utterances = 0;
  double hours = 0;
  std::int64_t frames = 0;
  std::int64_t phone_classes = 0;
  double silence_fraction = 0;  // share of frames labelled SIL
  double seconds = 0;           // generation wall time (not written into corpus.json)
  std::string out_dir;
};

/// The speakers a config produces (deterministic from the seed; distinct voice/variant/pitch/rate).
std::vector<SpeakerSpec> make_speakers(const SpeechCorpusConfig& config);

/// Generates the corpus into `out_dir` (created). The corpus is assembled in a temporary sibling
/// folder and renamed into place only when complete. An existing non-empty `out_dir` is an IoError
/// unless `overwrite`. Throws ConfigError (bad config, unknown variant), UnavailableError (no
/// speechgen), DataError (a worker rejected its input), IoError (disk).
CorpusStats generate_speech_corpus(const SpeechCorpusConfig& config, const std::string& out_dir,
                                   bool overwrite = false);

/// Reads corpus.json of a generated corpus (for printing statistics of an existing corpus).
CorpusStats read_corpus_stats(const std::string& dir);

/// Labels frames from phone starts: frame i gets the last phone whose start <= 160·i + 80.
/// `starts` ascending, `ids` the same length; `frames` the number of frames; before the first start
/// → 0.
std::vector<std::int16_t> label_frames(const std::vector<std::int64_t>& starts,
                                       const std::vector<std::int16_t>& ids, std::int64_t frames);

}  // namespace contra::data
