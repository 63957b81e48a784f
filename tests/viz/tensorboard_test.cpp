#include "contra/viz/tensorboard.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "tests/support/support.h"

namespace contra::viz {
namespace {

using contra::testing::TempDir;

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) B.4 and the usual check value.
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string up;
  for (int i = 0; i < 32; ++i) up.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  // Continuing a CRC over a split buffer gives the CRC of the whole.
  EXPECT_EQ(crc32c("6789", crc32c("12345")), 0xE3069283u);
}

TEST(Crc32c, MaskedIsRotatedPlusConstant) {
  const std::uint32_t c = crc32c("abc");
  EXPECT_EQ(masked_crc32c("abc"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  EXPECT_NE(masked_crc32c("abc"), c);
}

TEST(EventFile, NameAndRoundTrip) {
  TempDir dir;
  std::string path;
  {
    EventWriter w(dir.file("tb"));
    path = w.path();
    w.add_scalars(10, {{"loss", 2.5}, {"lr", 1e-3}, {"acc_1", 0.25}});
    w.add_scalar(20, "loss", 1.25);
    w.add_scalar(-3, "negative/step", -7.5);
    w.flush();
  }
  const std::string name = std::filesystem::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(event_files(dir.file("tb")), std::vector<std::string>{path});
  auto events = read_events(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(events[0].scalars.empty());
  EXPECT_GT(events[0].wall_time, 1.6e9);  // seconds since 1970, not a placeholder
  EXPECT_EQ(events[1].step, 10);
  ASSERT_EQ(events[1].scalars.size(), 3u);
  EXPECT_EQ(events[1].scalars[0].first, "acc_1");
  EXPECT_FLOAT_EQ(events[1].scalars[0].second, 0.25f);
  EXPECT_EQ(events[1].scalars[1].first, "loss");
  EXPECT_FLOAT_EQ(events[1].scalars[1].second, 2.5f);
  EXPECT_FLOAT_EQ(events[1].scalars[2].second, 1e-3f);
  EXPECT_EQ(events[2].step, 20);
  EXPECT_EQ(events[3].step, -3);
  EXPECT_FLOAT_EQ(events[3].scalars[0].second, -7.5f);
  auto scalars = read_scalars(dir.file("tb"));
  ASSERT_EQ(scalars["loss"].size(), 2u);
  EXPECT_EQ(scalars["loss"][1].step, 20);
  EXPECT_FLOAT_EQ(scalars["loss"][1].value, 1.25f);
}

TEST(EventFile, CorruptionIsDetected) {
  TempDir dir;
  std::string path;
  {
    EventWriter w(dir.path());
    path = w.path();
    w.add_scalar(1, "loss", 1.0);
  }
  const std::string good = read_file(path);
  // A flipped bit in the data, in the length, and a truncated tail: each names the file.
  for (std::size_t at : {good.size() - 6, good.size() - 30, std::size_t(3)}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    contra::testing::write_bytes(path, bad);
    try {
      read_events(path);
      ADD_FAILURE() << "no error for a flipped byte at " << at;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
    }
  }
  contra::testing::write_bytes(path, good.substr(0, good.size() - 2));
  contra::testing::expect_data_error([&] { read_events(path); }, "truncated");
}

// TensorBoard's purge: a START at step s forgets the points at steps >= s read before it.
TEST(EventFile, SessionStartPurgesOrphanedSteps) {
  TempDir dir;
  {
    EventWriter first(dir.path());
    for (int step : {2, 4, 6, 8}) first.add_scalar(step, "loss", step);
  }
  // A second process (the resume from step 4) writes its own file, named later.
  const std::string second_name = dir.file("events.out.tfevents.9999999999.host.1");
  {
    EventWriter second(dir.file("second"));
    second.add_session_start(5);
    for (int step : {6, 8}) second.add_scalar(step, "loss", 100 + step);
    second.flush();
    std::filesystem::rename(second.path(), second_name);
  }
  auto loss = read_scalars(dir.path())["loss"];
  ASSERT_EQ(loss.size(), 4u);
  EXPECT_EQ(loss[0].step, 2);
  EXPECT_EQ(loss[1].step, 4);
  EXPECT_EQ(loss[2].step, 6);
  EXPECT_FLOAT_EQ(loss[2].value, 106.f);
  EXPECT_FLOAT_EQ(loss[3].value, 108.f);
}

// The same file through an independent Python reader (its own CRC32C and protobuf decoding).
TEST(EventFile, PythonReaderAgrees) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 missing";
  TempDir dir;
  std::string path;
  std::map<std::string, double> values{{"loss", 0.123456}, {"train/acc", 0.75}, {"lr", 3e-4}};
  {
    EventWriter w(dir.path());
    path = w.path();
    w.add_scalars(300, values);
    w.add_session_start(301);
    w.add_scalar(1ll << 40, "big/step", 42.0);
  }
  auto r = contra::testing::run_command("/usr/bin/python3 " + contra::testing::source_dir() +
                                        "/tests/viz/read_events.py '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> lines;
  std::stringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0]["file_version"], "brain.Event:2");
  EXPECT_EQ(lines[1]["step"], 300);
  ASSERT_EQ(lines[1]["scalars"].size(), 3u);
  for (const auto& [tag, v] : values)
    EXPECT_EQ(lines[1]["scalars"][tag].get<double>(), static_cast<double>(static_cast<float>(v)));
  EXPECT_EQ(lines[2]["session_status"], 1);
  EXPECT_EQ(lines[2]["step"], 301);
  EXPECT_EQ(lines[3]["step"].get<std::int64_t>(), 1ll << 40);
  EXPECT_EQ(lines[3]["scalars"]["big/step"], 42.0);
  // And a corrupted copy is refused by the Python reader too (so it does check the CRCs).
  std::string bad = read_file(path);
  bad[bad.size() - 7] ^= 1;
  contra::testing::write_bytes(dir.file("bad"), bad);
  auto rb = contra::testing::run_command("/usr/bin/python3 " + contra::testing::source_dir() +
                                         "/tests/viz/read_events.py '" + dir.file("bad") + "'");
  EXPECT_NE(rb.exit_code, 0);
  EXPECT_NE(rb.err.find("CRC mismatch"), std::string::npos) << rb.err;
}

TEST(ProbeScalars, SpeechImageAndClipResults) {
  TempDir dir;
  write_file_atomic(dir.file("results.json"), R"J({
    "checkpoint": "x", "step": 1500,
    "rows": [
      {"features": "cpc (1500 steps)", "dim": 256, "phone_accuracy": 0.62,
       "phone_train_accuracy": 0.7, "phone_chance": 0.1, "speaker_accuracy": 0.97, "seconds": 3},
      {"features": "MFCC (13 + deltas)", "phone_accuracy": 0.4, "speaker_accuracy": 0.5}]})J");
  auto tags = log_probe_results(dir.path());
  EXPECT_EQ(tags,
            (std::vector<std::string>{
                "probe/mfcc_13_deltas/phone_accuracy", "probe/mfcc_13_deltas/speaker_accuracy",
                "probe/model/phone_accuracy", "probe/model/speaker_accuracy"}));
  auto scalars = read_scalars(dir.file("tensorboard"));
  ASSERT_EQ(scalars["probe/model/phone_accuracy"].size(), 1u);
  EXPECT_EQ(scalars["probe/model/phone_accuracy"][0].step, 1500);
  EXPECT_FLOAT_EQ(scalars["probe/model/phone_accuracy"][0].value, 0.62f);

  TempDir clip;
  write_file_atomic(clip.file("results.json"), R"J({
    "step": 40, "zero_shot": 0.8, "retrieval": {"image→text": {"R@1": 0.5, "R@5": 0.9,
    "chance_R@1": 0.01}}, "attributes": {"thin vs thick": {"accuracy": 0.7, "images": 10}},
    "probe": [{"features": "clip (40 steps)", "linear_accuracy": 0.9, "knn_top1": 0.85}]})J");
  tags = log_probe_results(clip.path());
  EXPECT_EQ(tags, (std::vector<std::string>{
                      "clip/attributes/thin_vs_thick", "clip/retrieval/image_text/R@1",
                      "clip/retrieval/image_text/R@5", "clip/zero_shot", "probe/model/knn_top1",
                      "probe/model/linear_accuracy"}));

  TempDir empty;
  contra::testing::expect_data_error([&] { log_probe_results(empty.path()); }, "results.json");
  write_file_atomic(empty.file("results.json"), R"({"step": 3, "rows": []})");
  contra::testing::expect_data_error([&] { log_probe_results(empty.path()); }, "no accuracies");
  write_file_atomic(empty.file("results.json"), "{");
  contra::testing::expect_data_error([&] { log_probe_results(empty.path()); }, "not valid JSON");
}

}  // namespace
}  // namespace contra::viz
