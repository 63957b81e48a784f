#include "contra/data/audio.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "tests/data/wav_builder.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::TempDir;
using contra::testing::WavSpec;
using contra::testing::write_bytes;

std::vector<float> tone(int rate, double seconds, double freq, double amp = 0.5) {
  std::vector<float> out(static_cast<size_t>(rate * seconds));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = float(amp * std::sin(2 * M_PI * freq * i / rate));
  return out;
}

using contra::testing::expect_data_error;

TEST(Audio, FlacAndWavRoundTripWithin16BitLsb) {
  TempDir dir;
  auto x = tone(16000, 0.5, 440);
  for (const char* name : {"a.flac", "a.wav"}) {
    write_audio(dir.file(name), x.data(), int64_t(x.size()), 16000);
    auto y = read_audio(dir.file(name));
    ASSERT_EQ(y.sizes(), (torch::IntArrayRef{1, int64_t(x.size())}));
    auto ref = torch::from_blob(x.data(), {1, int64_t(x.size())}).clone();
    EXPECT_LE((y - ref).abs().max().item<float>(), 1.0f / 32767 + 1e-6f) << name;
    auto info = audio_info(dir.file(name));
    EXPECT_EQ(info.sample_rate, 16000);
    EXPECT_EQ(info.channels, 1);
    EXPECT_EQ(info.frames, int64_t(x.size()));
    EXPECT_NEAR(info.peak, 0.5, 1e-3);
    EXPECT_EQ(info.subtype, "PCM_16");
  }
  EXPECT_EQ(audio_info(dir.file("a.flac")).format, "FLAC");
  EXPECT_EQ(audio_info(dir.file("a.wav")).format, "WAV");
}

TEST(Audio, OneSecondToneAt22050ResamplesToExactly16000) {
  auto x = tone(22050, 1.0, 1000);
  auto y = resample(x.data(), int64_t(x.size()), 22050, 16000);
  EXPECT_EQ(y.size(), 16000u);
  // The tone survives: compare the middle against an ideal 1 kHz tone at 16 kHz (phase-aligned).
  auto ideal = tone(16000, 1.0, 1000);
  double err = 0;
  for (size_t i = 2000; i < 14000; ++i) err = std::max(err, double(std::fabs(y[i] - ideal[i])));
  EXPECT_LT(err, 0.01);
}

TEST(Audio, ReadResamplesFileAndMixesStereoToMono) {
  TempDir dir;
  auto left = tone(22050, 1.0, 500, 0.8);
  std::vector<float> stereo;
  for (float v : left) {
    stereo.push_back(v);
    stereo.push_back(0.0f);
  }
  WavSpec spec;
  spec.channels = 2;
  spec.rate = 22050;
  write_bytes(dir.file("s.wav"), contra::testing::wav_bytes(spec, contra::testing::pcm16(stereo)));
  auto y = read_audio(dir.file("s.wav"));
  EXPECT_EQ(y.size(1), 16000);
  EXPECT_NEAR(y.abs().max().item<float>(), 0.4f, 0.01f);  // mean of the channels
  AudioReadOptions keep;
  keep.sample_rate = 0;
  EXPECT_EQ(read_audio(dir.file("s.wav"), keep).size(1), 22050);
  AudioReadOptions strict;
  strict.resample = false;
  expect_data_error([&] { read_audio(dir.file("s.wav"), strict); },
                    "sample rate 22050 Hz (expected 16000 Hz)");
}

TEST(Audio, NormalizeGuardsSilence) {
  TempDir dir;
  auto x = tone(16000, 0.2, 300, 0.25);
  write_audio(dir.file("t.wav"), x.data(), int64_t(x.size()), 16000);
  AudioReadOptions norm;
  norm.normalize = true;
  EXPECT_NEAR(read_audio(dir.file("t.wav"), norm).abs().max().item<float>(), 1.0f, 1e-4f);
  std::vector<float> silence(1600, 0.0f);
  write_audio(dir.file("z.wav"), silence.data(), int64_t(silence.size()), 16000);
  auto z = read_audio(dir.file("z.wav"), norm);
  EXPECT_TRUE(torch::isfinite(z).all().item<bool>());
  EXPECT_EQ(z.abs().max().item<float>(), 0.0f);
}

TEST(Audio, FlacWriteClipsInsteadOfTruncating) {
  // libsndfile stops a FLAC stream at the first |x| > 1 unless clipping is on (see notes).
  TempDir dir;
  auto x = tone(16000, 1.0, 200, 1.6);
  write_audio(dir.file("loud.flac"), x.data(), int64_t(x.size()), 16000);
  auto info = audio_info(dir.file("loud.flac"));
  EXPECT_EQ(info.frames, 16000);
  EXPECT_LE(info.peak, 1.0);
  EXPECT_GT(info.peak, 0.99);
}

TEST(Audio, WriteIsAtomicAndChecksInput) {
  TempDir dir;
  std::vector<float> bad = {0.1f, NAN, 0.2f};
  EXPECT_THROW(write_audio(dir.file("n.flac"), bad.data(), 3, 16000), DataError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("n.flac")));
  EXPECT_THROW(write_audio(dir.file("x.mp3"), bad.data(), 1, 16000), DataError);
  std::vector<float> ok(100, 0.1f);
  EXPECT_THROW(write_audio(dir.file("no/such/dir/a.flac"), ok.data(), 100, 16000), IoError);
  // No temporary files are left behind.
  write_audio(dir.file("ok.flac"), ok.data(), 100, 16000);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Audio, MissingEmptyAndNonAudioFiles) {
  TempDir dir;
  expect_data_error([&] { read_audio(dir.file("missing.flac")); }, "no such file");
  write_bytes(dir.file("empty.wav"), "");
  expect_data_error([&] { read_audio(dir.file("empty.wav")); }, "empty file");
  write_bytes(dir.file("text.flac"), "this is not audio at all, just some text in a file\n");
  expect_data_error([&] { read_audio(dir.file("text.flac")); }, "not a readable audio file");
  expect_data_error([&] { audio_info(dir.file("text.flac")); }, "text.flac");
}

TEST(Audio, ZeroChannelsAndAbsurdRates) {
  TempDir dir;
  WavSpec zero;
  zero.channels = 0;
  write_bytes(dir.file("zero.wav"), contra::testing::wav_bytes(zero, std::string(64, '\0')));
  expect_data_error([&] { read_audio(dir.file("zero.wav")); }, "zero.wav");
  WavSpec slow;
  slow.rate = 10;
  write_bytes(dir.file("slow.wav"),
              contra::testing::wav_bytes(slow, contra::testing::pcm16({0.1f, 0.2f})));
  expect_data_error([&] { read_audio(dir.file("slow.wav")); }, "slow.wav");
}

TEST(Audio, TruncatedFlacIsReported) {
  TempDir dir;
  auto x = tone(16000, 2.0, 440);
  write_audio(dir.file("full.flac"), x.data(), int64_t(x.size()), 16000);
  std::ifstream in(dir.file("full.flac"), std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir.file("cut.flac"), all.substr(0, all.size() / 2));
  expect_data_error([&] { read_audio(dir.file("cut.flac")); }, "cut.flac");
}

TEST(Audio, TruncatedWavHeaderClaimsMoreThanData) {
  TempDir dir;
  WavSpec spec;
  spec.declared_data_bytes = 1 << 30;  // header claims 1 GiB, the file holds 200 bytes
  write_bytes(
      dir.file("lie.wav"),
      contra::testing::wav_bytes(spec, contra::testing::pcm16(std::vector<float>(100, 0.1f))));
  try {
    auto y = read_audio(dir.file("lie.wav"));
    // libsndfile may clamp the frame count to the real data; then we must get exactly that, not 1
    // GiB.
    EXPECT_EQ(y.size(1), 100);
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("lie.wav"), std::string::npos) << e.what();
  }
}

TEST(Audio, NonFiniteSamplesRejected) {
  TempDir dir;
  WavSpec spec;
  spec.format = 3;
  spec.bits = 32;
  write_bytes(dir.file("nan.wav"),
              contra::testing::wav_bytes(spec, contra::testing::f32({0.1f, NAN, 0.3f})));
  expect_data_error([&] { read_audio(dir.file("nan.wav")); }, "non-finite sample at frame 1");
}

TEST(Audio, TooLongIsRefusedBeforeAllocating) {
  TempDir dir;
  auto x = tone(16000, 1.0, 440);
  write_audio(dir.file("a.flac"), x.data(), int64_t(x.size()), 16000);
  AudioReadOptions o;
  o.max_duration_s = 0.5;
  expect_data_error([&] { read_audio(dir.file("a.flac"), o); }, "longer than the limit");
}

TEST(Audio, UnsupportedRateConversions) {
  std::vector<float> x(100, 0.0f);
  EXPECT_THROW(resample(x.data(), 100, 16000, 100), DataError);
  EXPECT_THROW(resample(x.data(), 100, 8000, 384000 * 2), DataError);
  EXPECT_THROW(resample(x.data(), 100, 1000, 192000), DataError);  // ratio 192 > 64
  EXPECT_EQ(resample(x.data(), 100, 16000, 16000).size(), 100u);
}

}  // namespace
}  // namespace contra::data
