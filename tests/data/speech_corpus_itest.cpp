// Integration: runs the real espeak-ng worker (contra-speechgen) to build a small corpus.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/audio.h"
#include "contra/data/librispeech.h"
#include "contra/data/speech_corpus.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::TempDir;
namespace fs = std::filesystem;

SpeechCorpusConfig small_config() {
  SpeechCorpusConfig c;
  c.speakers = 4;
  c.utterances = 5;
  c.seed = 3;
  c.jobs = 2;
  return c;
}

std::map<std::string, std::string> all_files(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file())
      out[fs::relative(e.path(), root).string()] = read_file(e.path().string());
  }
  return out;
}

TEST(SpeechCorpusIntegration, SameConfigGivesIdenticalBytesWhateverTheJobCount) {
  TempDir d;
  auto config = small_config();
  generate_speech_corpus(config, d.file("a"));
  generate_speech_corpus(config, d.file("b"));
  config.jobs = 1;
  generate_speech_corpus(config, d.file("c"));
  auto a = all_files(d.file("a")), b = all_files(d.file("b")), c = all_files(d.file("c"));
  ASSERT_GT(a.size(), 20u);
  EXPECT_EQ(a, b);
  for (auto& [name, bytes] : a) {
    if (name == "config.yaml") continue;  // records the job count
    EXPECT_EQ(bytes, c[name]) << name;
  }
  config.seed = 4;
  generate_speech_corpus(config, d.file("e"));
  EXPECT_NE(read_file(d.file("a/converted_aligned_phones.txt")),
            read_file(d.file("e/converted_aligned_phones.txt")));
}

TEST(SpeechCorpusIntegration, AlignmentsMatchAudioAndSplitsCoverSpeakers) {
  TempDir d;
  auto stats = generate_speech_corpus(small_config(), d.file("c"));
  EXPECT_EQ(stats.utterances, 20);
  EXPECT_GT(stats.hours, 20 * 1.0 / 3600);
  std::string root = d.file("c");
  LibriSpeechDataset ds(root);
  PhoneAlignments al(root + "/converted_aligned_phones.txt", root + "/phones.txt");
  ASSERT_EQ(ds.size(), 20u);
  EXPECT_EQ(ds.speakers().size(), 4u);
  EXPECT_EQ(al.num_classes(), stats.phone_classes);
  EXPECT_EQ(al.symbol(0), "SIL");
  bool saw_pause = false;
  std::set<int> used;
  for (const auto& u : ds.utterances()) {
    EXPECT_FALSE(u.transcript.empty()) << u.id;
    auto info = audio_info(u.path);
    EXPECT_EQ(info.sample_rate, 16000);
    EXPECT_EQ(info.frames % kSamplesPerFrame, 0) << u.id;
    const auto& labels = al.labels(u.id);
    EXPECT_EQ(static_cast<int64_t>(labels.size()), info.frames / kSamplesPerFrame) << u.id;
    for (auto l : labels) {
      EXPECT_GE(l, 0);
      EXPECT_LT(l, al.num_classes());
      used.insert(l);
    }
    saw_pause |= labels.front() == 0 || labels.back() == 0;
    EXPECT_LE(info.peak, 0.99 + 1e-4);
  }
  EXPECT_TRUE(saw_pause);
  EXPECT_GT(used.size(), 20u);
  auto train = read_split(root + "/train_split.txt");
  auto test = read_split(root + "/test_split.txt");
  EXPECT_EQ(train.size() + test.size(), 20u);
  std::set<std::string> train_spk, test_spk;
  for (auto& id : train) train_spk.insert(ds.utterance(ds.index_of(id)).speaker);
  for (auto& id : test) {
    test_spk.insert(ds.utterance(ds.index_of(id)).speaker);
    EXPECT_EQ(std::count(train.begin(), train.end(), id), 0);
  }
  EXPECT_EQ(train_spk.size(), 4u);
  EXPECT_EQ(test_spk, train_spk);
  auto back = read_corpus_stats(root);
  EXPECT_EQ(back.utterances, 20);
  EXPECT_EQ(back.phone_classes, stats.phone_classes);
}

TEST(SpeechCorpusIntegration, RefusesToOverwriteAndKeepsOldOnFailure) {
  TempDir d;
  fs::create_directories(d.file("out"));
  write_file_atomic(d.file("out/keep.txt"), "precious");
  EXPECT_THROW(generate_speech_corpus(small_config(), d.file("out")), IoError);
  EXPECT_EQ(read_file(d.file("out/keep.txt")), "precious");
  auto bad = small_config();
  bad.variants = {"m1", "no-such-variant"};
  try {
    generate_speech_corpus(bad, d.file("out"), /*overwrite=*/true);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown espeak-ng variant 'no-such-variant'"),
              std::string::npos);
  }
  EXPECT_EQ(read_file(d.file("out/keep.txt")), "precious");
  bad = small_config();
  bad.voices = {"en-gb"};  // listed by espeak-ng but not loadable by that name
  EXPECT_THROW(generate_speech_corpus(bad, d.file("x")), ConfigError);
  EXPECT_FALSE(fs::exists(d.file("x")));
  // No temporary siblings are left behind after failures.
  int entries = 0;
  for (auto& e : fs::directory_iterator(d.path())) entries += 1 + 0 * e.is_directory();
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace contra::data
