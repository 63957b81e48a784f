#include "contra/data/librispeech.h"

#include <filesystem>
#include <functional>

#include <gtest/gtest.h>

#include "contra/core/error.h"
#include "contra/data/audio.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::TempDir;
using contra::testing::write_bytes;

using contra::testing::expect_data_error;

void make_utt(const std::string& root, const std::string& spk, const std::string& ch,
              const std::string& utt, int samples = 1600) {
  std::string dir = root + "/" + spk + "/" + ch;
  std::filesystem::create_directories(dir);
  std::vector<float> x(samples, 0.1f);
  write_audio(dir + "/" + spk + "-" + ch + "-" + utt + ".flac", x.data(), samples, 16000);
}

TEST(LibriSpeech, ScansLayoutWithTranscriptsAndSpeakers) {
  TempDir d;
  make_utt(d.path(), "19", "198", "0001");
  make_utt(d.path(), "19", "198", "0000");
  make_utt(d.path(), "26", "495", "0000");
  write_bytes(d.file("19/198/19-198.trans.txt"),
              "19-198-0000 HELLO WORLD\n19-198-0001 SECOND ONE\n");
  LibriSpeechDataset ds(d.path());
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.utterance(0).id, "19-198-0000");
  EXPECT_EQ(ds.utterance(0).transcript, "HELLO WORLD");
  EXPECT_EQ(ds.utterance(2).transcript, "");
  EXPECT_EQ(ds.speakers(), (std::vector<std::string>{"19", "26"}));
  EXPECT_EQ(ds.speaker_index(2), 1);
  EXPECT_EQ(ds.index_of("19-198-0001"), 1u);
  expect_data_error([&] { ds.index_of("1-2-3"); }, "unknown utterance id '1-2-3'");
}

TEST(LibriSpeech, BadLayouts) {
  TempDir d;
  expect_data_error([&] { LibriSpeechDataset(d.file("nope")); }, "not a directory");
  expect_data_error([&] { LibriSpeechDataset{d.path()}; }, "no <speaker>/<chapter>");
  make_utt(d.path(), "19", "198", "0000");
  write_bytes(d.file("19/198/19-198.trans.txt"), "19-198-0000 OK\n19-198-0007 NO AUDIO\n");
  expect_data_error([&] { LibriSpeechDataset{d.path()}; },
                    "19-198.trans.txt:2: transcript for '19-198-0007'");
  write_bytes(d.file("19/198/19-198.trans.txt"), "garbage\n");
  expect_data_error([&] { LibriSpeechDataset{d.path()}; }, "19-198.trans.txt:1: expected");
  std::filesystem::remove(d.file("19/198/19-198.trans.txt"));
  make_utt(d.path(), "20", "198", "0000");  // file 20-198-0000 in folder 20/198: fine
  std::filesystem::create_directories(d.file("21/5"));
  std::filesystem::copy_file(d.file("20/198/20-198-0000.flac"), d.file("21/5/20-198-0001.flac"));
  expect_data_error([&] { LibriSpeechDataset{d.path()}; }, "does not match its folders");
}

TEST(PhoneAlignments, ReadsLabelsAndPhoneList) {
  TempDir d;
  write_bytes(d.file("al.txt"), "a-1-0 0 0 3 3 2\nb-1-0 1 1\n");
  write_bytes(d.file("phones.txt"), "0 SIL\n1 a\n2 b\n3 c\n4 d\n");
  PhoneAlignments al(d.file("al.txt"), d.file("phones.txt"));
  EXPECT_EQ(al.size(), 2u);
  EXPECT_EQ(al.labels("a-1-0"), (std::vector<int16_t>{0, 0, 3, 3, 2}));
  EXPECT_EQ(al.num_classes(), 5);
  EXPECT_EQ(al.symbol(3), "c");
  EXPECT_EQ(al.check_length("a-1-0", 5), 5);
  EXPECT_EQ(al.check_length("a-1-0", 6), 5);  // one frame of rounding is allowed
  EXPECT_EQ(al.check_length("a-1-0", 4), 4);
  expect_data_error([&] { al.check_length("a-1-0", 8); },
                    "'a-1-0' has 5 labels but its audio has 8 frames");
  expect_data_error([&] { al.labels("zzz"); }, "unknown utterance id 'zzz'");
  PhoneAlignments no_list(d.file("al.txt"));
  EXPECT_EQ(no_list.num_classes(), 4);
  // The CPC release writes phones as "<symbol> <id>"; both orders are accepted.
  write_bytes(d.file("phones2.txt"), "SIL 0\na 1\nb 2\nc 3\n");
  EXPECT_EQ(PhoneAlignments(d.file("al.txt"), d.file("phones2.txt")).symbol(1), "a");
}

TEST(PhoneAlignments, BadFiles) {
  TempDir d;
  expect_data_error([&] { PhoneAlignments(d.file("missing.txt")); }, "cannot open");
  write_bytes(d.file("nonint.txt"), "a-1-0 0 1\nb-1-0 1 x 2\n");
  expect_data_error([&] { PhoneAlignments(d.file("nonint.txt")); },
                    "nonint.txt:2: utterance 'b-1-0': phone id 'x'");
  write_bytes(d.file("neg.txt"), "a-1-0 0 -1\n");
  expect_data_error([&] { PhoneAlignments(d.file("neg.txt")); }, "neg.txt:1");
  write_bytes(d.file("dup.txt"), "a-1-0 0\na-1-0 1\n");
  expect_data_error([&] { PhoneAlignments(d.file("dup.txt")); }, "appears twice");
  write_bytes(d.file("empty_labels.txt"), "a-1-0\n");
  expect_data_error([&] { PhoneAlignments(d.file("empty_labels.txt")); }, "has no labels");
  write_bytes(d.file("range.txt"), "a-1-0 0 7\n");
  write_bytes(d.file("phones.txt"), "0 SIL\n1 a\n");
  expect_data_error([&] { PhoneAlignments(d.file("range.txt"), d.file("phones.txt")); },
                    "phone id 7 is not in");
  write_bytes(d.file("empty.txt"), "");
  expect_data_error([&] { PhoneAlignments(d.file("empty.txt")); }, "empty");
}

TEST(Split, ReadsIdsAndRejectsDuplicates) {
  TempDir d;
  write_bytes(d.file("s.txt"), "a\nb\n\nc\n");
  EXPECT_EQ(read_split(d.file("s.txt")), (std::vector<std::string>{"a", "b", "c"}));
  write_bytes(d.file("dup.txt"), "a\nb\na\n");
  expect_data_error([&] { read_split(d.file("dup.txt")); },
                    "dup.txt:3: utterance 'a' listed twice");
  write_bytes(d.file("empty.txt"), "\n");
  expect_data_error([&] { read_split(d.file("empty.txt")); }, "no utterance ids");
}

}  // namespace
}  // namespace contra::data
