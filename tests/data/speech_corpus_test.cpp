#include "contra/data/speech_corpus.h"

#include <set>

#include <gtest/gtest.h>

#include "contra/core/config.h"
#include "contra/core/error.h"

namespace contra::data {
namespace {

TEST(SpeechCorpus, FrameLabelRuleUsesFrameCentres) {
  // Phones start at 0 (SIL), 100 (1), 250 (2), 250 (3: zero length, shares a start), 400 (0).
  std::vector<int64_t> starts = {0, 100, 250, 250, 400};
  std::vector<int16_t> ids = {0, 1, 2, 3, 0};
  // Frame centres: 80, 240, 400, 560.
  EXPECT_EQ(label_frames(starts, ids, 4), (std::vector<int16_t>{0, 1, 0, 0}));
  std::vector<int64_t> starts2 = {90, 300};
  std::vector<int16_t> ids2 = {5, 6};
  EXPECT_EQ(label_frames(starts2, ids2, 3), (std::vector<int16_t>{0, 5, 6}));  // before first: 0
  EXPECT_EQ(label_frames(starts, ids, 0).size(), 0u);
}

TEST(SpeechCorpus, SpeakersAreDistinctAndDeterministic) {
  SpeechCorpusConfig config;
  config.speakers = 60;
  auto a = make_speakers(config);
  auto b = make_speakers(config);
  ASSERT_EQ(a.size(), 60u);
  std::set<std::string> first_variants, all;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].variant, b[i].variant);
    EXPECT_EQ(a[i].pitch, b[i].pitch);
    if (i < config.variants.size()) first_variants.insert(a[i].variant);
    all.insert(a[i].voice + "+" + a[i].variant);
    EXPECT_GE(a[i].pitch, config.pitch_min);
    EXPECT_LE(a[i].pitch, config.pitch_max);
    EXPECT_GE(a[i].rate, config.rate_min);
    EXPECT_LE(a[i].rate, config.rate_max);
  }
  EXPECT_EQ(first_variants.size(), config.variants.size());  // every timbre before any repeats
  EXPECT_EQ(all.size(), 60u);                                // no (voice, variant) pair twice
  config.seed = 2;
  auto c = make_speakers(config);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i)
    differs |= a[i].variant != c[i].variant || a[i].pitch != c[i].pitch;
  EXPECT_TRUE(differs);
}

TEST(SpeechCorpus, ConfigErrorsNameTheKey) {
  auto check_error = [](const std::string& yaml, const std::string& needle) {
    auto tree = ConfigTree::from_string(yaml, "c.yaml");
    try {
      tree.get<SpeechCorpusConfig>("corpus");
      FAIL() << yaml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  check_error("corpus:\n  speakers: 1\n", "corpus.speakers: must be in 2..10000 (got 1)");
  check_error("corpus:\n  utterances: 1\n", "corpus.utterances");
  check_error("corpus:\n  test_fraction: 1.0\n", "corpus.test_fraction");
  check_error("corpus:\n  rate_max: 900\n", "corpus.rate_min");
  check_error("corpus:\n  variants: []\n", "variants: must not be empty");
  check_error("corpus:\n  degradation:\n    rt60_min: 0\n", "corpus.degradation.rt60_min");
  check_error("corpus:\n  speeker: 3\n", "c.yaml:2: unknown key 'corpus.speeker'");
}

TEST(SpeechCorpus, MissingSynthesiserIsUnavailable) {
  SpeechCorpusConfig config;
  config.speechgen = "/nonexistent/contra-speechgen";
  EXPECT_THROW(generate_speech_corpus(config, "/tmp/contra-never-created"), UnavailableError);
}

}  // namespace
}  // namespace contra::data
