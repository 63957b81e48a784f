// Fine-tuning on few labels: the labelled subset, config checks, and end-to-end training of a tiny
// CPC model on a synthetic corpus whose "phones" are tones (loss falls, deterministic per seed).
#include "contra/eval/speech_finetune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "contra/core/error.h"
#include "contra/data/audio.h"
#include "contra/data/sentences.h"
#include "contra/method/cpc_audio.h"
#include "tests/support/support.h"

namespace contra::eval {
namespace {

using contra::testing::TempDir;
using contra::testing::write_bytes;

/// speakers × per_speaker utterances `<s>/10/<s>-10-<u>.flac` of tone segments: phone p ∈ [0, 3)
/// sounds as a sine of 400·(p+1) Hz, one label per 10 ms frame; lengths 0.8–1.6 s (some shorter
/// than a 20480-sample window). Writes converted_aligned_phones.txt and phones.txt into root.
std::vector<std::string> write_tone_corpus(const std::string& root, int speakers, int per_speaker) {
  data::SplitMix64 rng(7);
  std::string alignments;
  std::vector<std::string> ids;
  for (int s = 1; s <= speakers; ++s) {
    for (int u = 0; u < per_speaker; ++u) {
      const std::string id = fmt::format("{}-10-{:04d}", s, u);
      const auto frames = static_cast<std::int64_t>(80 + rng.below(81));
      std::vector<float> wave;
      std::string line = id;
      std::int64_t phone = 0, left = 0;
      double phase = 0;
      for (std::int64_t t = 0; t < frames; ++t) {
        if (left == 0) {
          phone = static_cast<std::int64_t>(rng.below(3));
          left = 5 + static_cast<std::int64_t>(rng.below(10));
        }
        --left;
        line += " " + std::to_string(phone);
        const double hz = 400.0 * static_cast<double>(phone + 1) * (1 + 0.05 * s);
        for (int i = 0; i < 160; ++i) {
          phase += 2 * M_PI * hz / 16000.0;
          wave.push_back(static_cast<float>(0.5 * std::sin(phase) + 0.01 * (rng.uniform() - 0.5)));
        }
      }
      alignments += line + "\n";
      const std::string dir = fmt::format("{}/{}/10", root, s);
      std::filesystem::create_directories(dir);
      data::write_audio(dir + "/" + id + ".flac", wave.data(),
                        static_cast<std::int64_t>(wave.size()), 16000);
      ids.push_back(id);
    }
  }
  write_bytes(root + "/converted_aligned_phones.txt", alignments);
  write_bytes(root + "/phones.txt", "0 a\n1 b\n2 c\n");
  return ids;
}

method::CpcAudioConfig tiny_cpc() {
  method::CpcAudioConfig c;
  c.encoder.channels = 16;
  c.context.hidden = 16;
  c.predictor.steps = 2;
  c.negatives.count = 4;
  return c;
}

class FinetuneTest : public contra::testing::SeededTest {};

TEST_F(FinetuneTest, LabelledSubsetIsStratifiedNestedAndSeeded) {
  TempDir d;
  auto ids = write_tone_corpus(d.path(), 4, 5);  // 20 utterances
  data::LibriSpeechDataset ds(d.path());
  auto speakers_of = [&](const std::vector<std::string>& subset) {
    std::set<std::string> s;
    for (const auto& id : subset) s.insert(ds.utterance(ds.index_of(id)).speaker);
    return s;
  };
  EXPECT_EQ(labelled_subset(ds, ids, 0.01, 1).size(), 1u);  // at least one utterance
  auto fifth = labelled_subset(ds, ids, 0.2, 1);
  ASSERT_EQ(fifth.size(), 4u);
  EXPECT_EQ(speakers_of(fifth).size(), 4u);  // one per speaker
  auto half = labelled_subset(ds, ids, 0.5, 1);
  ASSERT_EQ(half.size(), 10u);
  EXPECT_TRUE(std::includes(half.begin(), half.end(), fifth.begin(), fifth.end()));
  EXPECT_TRUE(std::is_sorted(half.begin(), half.end()));
  EXPECT_EQ(labelled_subset(ds, ids, 0.5, 1), half);
  EXPECT_EQ(labelled_subset(ds, ids, 1.0, 1).size(), ids.size());
  EXPECT_NE(labelled_subset(ds, ids, 0.2, 2), fifth);  // another seed, another choice
  EXPECT_THROW(labelled_subset(ds, ids, 0.0, 1), ConfigError);
  EXPECT_THROW(labelled_subset(ds, ids, 1.5, 1), ConfigError);
}

TEST_F(FinetuneTest, ConfigRejectsBadValues) {
  FinetuneConfig ok;
  EXPECT_NO_THROW(ok.validate());
  auto expect_error = [](FinetuneConfig c, const std::string& needle) {
    try {
      c.validate();
      FAIL() << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  FinetuneConfig c;
  c.fractions = {0.1, 0};
  expect_error(c, "fractions");
  c = {};
  c.fractions = {};
  expect_error(c, "fractions");
  c = {};
  c.window = 1000;
  expect_error(c, "window");
  c = {};
  c.features = "predictor";
  expect_error(c, "features");
  c = {};
  c.head_lr = 0;
  expect_error(c, "head_lr");
}

TEST_F(FinetuneTest, LossFallsOnATinyBatchAndIsDeterministic) {
  TempDir d;
  auto ids = write_tone_corpus(d.path(), 2, 3);
  data::LibriSpeechDataset ds(d.path());
  data::PhoneAlignments al(d.path() + "/converted_aligned_phones.txt", d.path() + "/phones.txt");
  std::vector<std::string> train{ids[0], ids[3]}, test{ids[1], ids[4]};
  FinetuneConfig config;
  config.steps = 40;
  config.batch_size = 2;
  config.window = 6400;
  config.encoder_lr = 1e-3;
  config.head_lr = 1e-2;

  torch::manual_seed(0);
  method::CpcAudio model(tiny_cpc());
  auto predictor_before = model.predictor->parameters()[0].clone();
  FinetuneResult r = finetune_phones(model, ds, al, train, test, config);
  ASSERT_EQ(r.losses.size(), 40u);
  for (double l : r.losses) EXPECT_TRUE(std::isfinite(l));
  auto mean = [](auto b, auto e) { return std::accumulate(b, e, 0.0) / std::distance(b, e); };
  const double first = mean(r.losses.begin(), r.losses.begin() + 5);
  const double last = mean(r.losses.end() - 5, r.losses.end());
  EXPECT_LT(last, 0.7 * first) << first << " -> " << last;
  EXPECT_EQ(r.classes, 3);
  EXPECT_EQ(r.train_utterances, 2);
  EXPECT_EQ(r.train_frames, al.labels(ids[0]).size() + al.labels(ids[3]).size());
  EXPECT_EQ(r.test_utterances, 2);
  EXPECT_GT(r.test_frames, 150);
  EXPECT_GE(r.test_accuracy, 0.0);
  EXPECT_LE(r.test_accuracy, 1.0);
  EXPECT_GT(r.chance_accuracy, 0.0);
  // CPC's predictors are not on the path to the features: untouched.
  EXPECT_TRUE(torch::equal(model.predictor->parameters()[0], predictor_before));

  // Same initial model and seed → the same losses (batches are a function of (seed, step)).
  config.steps = 4;
  torch::manual_seed(0);
  method::CpcAudio a(tiny_cpc());
  torch::manual_seed(0);
  method::CpcAudio b(tiny_cpc());
  auto ra = finetune_phones(a, ds, al, train, test, config);
  auto rb = finetune_phones(b, ds, al, train, test, config);
  EXPECT_EQ(ra.losses, rb.losses);
  EXPECT_EQ(ra.test_accuracy, rb.test_accuracy);
}

TEST_F(FinetuneTest, MissingAlignmentIsADataError) {
  TempDir d;
  auto ids = write_tone_corpus(d.path(), 1, 2);
  data::LibriSpeechDataset ds(d.path());
  write_bytes(d.file("partial.txt"), ids[0] + " 0 0 1\n");
  data::PhoneAlignments al(d.file("partial.txt"));
  method::CpcAudio model(tiny_cpc());
  FinetuneConfig config;
  config.steps = 1;
  try {
    finetune_phones(model, ds, al, {ids[1]}, {ids[1]}, config);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(ids[1]), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace contra::eval
