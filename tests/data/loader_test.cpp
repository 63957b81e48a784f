#include "contra/data/prefetch_loader.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/data/audio.h"
#include "contra/data/audio_windows.h"
#include "contra/data/librispeech.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::TempDir;

TEST(PrefetchLoader, DeliversEveryStepInOrderWithManyThreads) {
  PrefetchLoader loader(
      [](int64_t step) {
        method::Batch b;
        b.input = torch::full({1}, static_cast<double>(step));
        return b;
      },
      3, 40, /*threads=*/3, /*capacity=*/2);
  for (int64_t s = 3; s < 40; ++s) {
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->input.item<double>(), static_cast<double>(s));
  }
  EXPECT_FALSE(loader.next().has_value());
}

TEST(PrefetchLoader, PropagatesErrors) {
  PrefetchLoader loader(
      [](int64_t step) -> method::Batch {
        if (step == 2) throw DataError("bad file at step 2");
        method::Batch b;
        b.input = torch::zeros({1});
        return b;
      },
      0, 10, 2, 4);
  EXPECT_TRUE(loader.next().has_value());
  EXPECT_TRUE(loader.next().has_value());
  EXPECT_THROW(loader.next(), DataError);
}

// A later step that fails while an earlier one is still loading must not cut the earlier one off:
// the steps before the failure arrive in order, then the earliest failure is raised.
TEST(PrefetchLoader, ErrorWaitsForItsStep) {
  std::atomic<bool> step1_may_finish{false};
  PrefetchLoader loader(
      [&](int64_t step) -> method::Batch {
        if (step == 1)
          while (!step1_may_finish) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (step == 2 || step == 3) throw DataError(fmt::format("bad file at step {}", step));
        method::Batch b;
        b.input = torch::full({1}, static_cast<double>(step));
        return b;
      },
      0, 10, 4, 8);
  // Releases step 1 on every way out of the test, before the loader joins its threads.
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = true; }
  } release{step1_may_finish};
  auto b0 = loader.next();
  ASSERT_TRUE(b0.has_value());
  EXPECT_EQ(b0->input.item<double>(), 0);
  // Give steps 2 and 3 time to fail while step 1 is held back.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  step1_may_finish = true;
  auto b1 = loader.next();
  ASSERT_TRUE(b1.has_value());
  EXPECT_EQ(b1->input.item<double>(), 1);
  try {
    loader.next();
    ADD_FAILURE() << "step 2 should have failed";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "bad file at step 2");
  }
}

// Utterance u of speaker s holds the constant 0.01·(10·s + u) plus a ramp, so a window tells where
// it came from.
std::string make_corpus(const TempDir& d, int speakers, int utts, int samples) {
  for (int s = 0; s < speakers; ++s) {
    std::string spk = std::to_string(100 + s), ch = "7";
    std::filesystem::create_directories(d.file(spk + "/" + ch));
    for (int u = 0; u < utts; ++u) {
      int n = samples + 500 * u;
      std::vector<float> x(n);
      for (int i = 0; i < n; ++i) x[i] = 0.01f * (10 * s + u) + 1e-5f * (i % 1000);
      write_audio(
          d.file(spk + "/" + ch + "/" + spk + "-" + ch + "-000" + std::to_string(u) + ".wav"),
          x.data(), n, 16000);
    }
  }
  return d.path();
}

TEST(AudioWindows, BatchesAreDeterministicSlicesWithSpeakerLabels) {
  TempDir d;
  LibriSpeechDataset ds(make_corpus(d, 4, 3, 3000));
  std::vector<std::string> ids;
  for (auto& u : ds.utterances()) ids.push_back(u.id);
  AudioWindowOptions o;
  o.window = 2048;
  AudioWindowSource src(ds, ids, o);
  EXPECT_EQ(src.utterances(), 12u);
  EXPECT_EQ(src.speakers(), 4u);
  auto a = src.batch(5, 6, 0, 42), b = src.batch(5, 6, 0, 42), c = src.batch(6, 6, 0, 42);
  EXPECT_EQ(a.input.sizes(), (torch::IntArrayRef{6, 1, 2048}));
  EXPECT_TRUE(torch::equal(a.input, b.input));
  EXPECT_FALSE(torch::equal(a.input, c.input));
  for (int64_t i = 0; i < 6; ++i) {
    auto idx = static_cast<size_t>(a.index[i].item<int64_t>());
    EXPECT_EQ(a.labels[i].item<int64_t>(), ds.speaker_index(idx));
    // The window is a contiguous slice of its utterance.
    auto full = src.audio(idx);
    auto w = a.input[i][0];
    auto diffs = (full[0].unfold(0, 2048, 1) - w).abs().amax(1);
    EXPECT_LT(diffs.min().item<float>(), 1e-6f);
  }
}

TEST(AudioWindows, SpeakersPerBatchGroupsWindows) {
  TempDir d;
  LibriSpeechDataset ds(make_corpus(d, 5, 2, 3000));
  std::vector<std::string> ids;
  for (auto& u : ds.utterances()) ids.push_back(u.id);
  AudioWindowOptions o;
  o.window = 1024;
  AudioWindowSource src(ds, ids, o);
  auto b = src.batch(0, 8, 2, 1);
  auto labels = b.labels;
  EXPECT_TRUE((labels.slice(0, 0, 4) == labels[0]).all().item<bool>());
  EXPECT_TRUE((labels.slice(0, 4, 8) == labels[4]).all().item<bool>());
  EXPECT_NE(labels[0].item<int64_t>(), labels[4].item<int64_t>());
  EXPECT_THROW(src.batch(0, 8, 3, 1), ConfigError);   // 8 % 3 != 0
  EXPECT_THROW(src.batch(0, 12, 6, 1), ConfigError);  // only 5 speakers
}

TEST(AudioWindows, TooShortAndUnknownIds) {
  TempDir d;
  LibriSpeechDataset ds(make_corpus(d, 2, 1, 1000));
  AudioWindowOptions o;
  o.window = 20480;
  EXPECT_THROW(AudioWindowSource(ds, {ds.utterance(0).id}, o), DataError);
  EXPECT_THROW(AudioWindowSource(ds, {"9-9-9"}, o), DataError);
  o.window = 800;
  AudioWindowSource ok(ds, {ds.utterance(0).id, ds.utterance(1).id}, o);
  EXPECT_EQ(ok.utterances(), 2u);
}

TEST(AudioWindows, CacheIsBounded) {
  TempDir d;
  LibriSpeechDataset ds(make_corpus(d, 3, 3, 4000));
  std::vector<std::string> ids;
  for (auto& u : ds.utterances()) ids.push_back(u.id);
  AudioWindowOptions o;
  o.window = 1000;
  o.cache_bytes = 5000 * 4 * 2;  // room for about two utterances
  AudioWindowSource src(ds, ids, o);
  for (int step = 0; step < 20; ++step) {
    auto b = src.batch(step, 4, 0, 9);
    EXPECT_TRUE(torch::isfinite(b.input).all().item<bool>());
  }
  // Reading through a tiny cache gives the same windows as a large one.
  AudioWindowOptions big = o;
  big.cache_bytes = 1 << 30;
  AudioWindowSource src2(ds, ids, big);
  EXPECT_TRUE(torch::equal(src.batch(3, 4, 0, 9).input, src2.batch(3, 4, 0, 9).input));
}

}  // namespace
}  // namespace contra::data
