#include "contra/io/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "tests/support/support.h"

namespace contra::io {
namespace {

using contra::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A file from a literal header (padded to 8 bytes like the writer) and a data buffer.
std::string raw_file(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  std::uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + h + data;
}

// The DataError message `read_safetensors(path)` throws (and checks the header reader agrees).
std::string data_error(const std::string& path) {
  std::string message = "<no DataError>";
  try {
    read_safetensors(path);
  } catch (const DataError& e) {
    message = e.what();
  }
  try {
    read_safetensors_header(path);
  } catch (const DataError& e) {
    // The header-only reader checks the same things (everything but the BOOL bytes).
    if (message.find("BOOL") == std::string::npos) EXPECT_EQ(message, e.what());
  }
  return message;
}

TEST(Safetensors, RoundTripsEveryDtypeShapeAndMetadata) {
  TempDir d;
  torch::manual_seed(0);
  SafetensorsFile f;
  f.tensors.emplace_back("f64", torch::randn({3, 4}, torch::kFloat64));
  f.tensors.emplace_back("f32", torch::randn({2, 3, 5}));
  f.tensors.emplace_back("f16", torch::randn({7}).to(torch::kFloat16));
  f.tensors.emplace_back("bf16", torch::randn({2, 2}).to(torch::kBFloat16));
  f.tensors.emplace_back("i64",
                         torch::tensor({std::int64_t{1} << 40, std::int64_t{-5}}, torch::kInt64));
  f.tensors.emplace_back("i32", torch::tensor({-2147483647, 3}, torch::kInt32));
  f.tensors.emplace_back("i16", torch::tensor({-300, 300}, torch::kInt16));
  f.tensors.emplace_back("i8", torch::tensor({-128, 127}, torch::kInt8));
  f.tensors.emplace_back("u8", torch::tensor({0, 255}, torch::kUInt8));
  f.tensors.emplace_back("bool", torch::tensor({true, false, true}));
  f.tensors.emplace_back("scalar", torch::tensor(3.5));  // 0-dim
  f.tensors.emplace_back("empty", torch::zeros({0, 4}));
  f.tensors.emplace_back("after_empty", torch::arange(5, torch::kInt32));
  f.metadata["format"] = "pt";
  f.metadata["architecture"] = R"({"a": [1, 2], "s": "x\"y"})";
  f.metadata["unicode"] = "grüße ✓";
  write_safetensors(d.file("a.safetensors"), f);

  SafetensorsFile g = read_safetensors(d.file("a.safetensors"));
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    SCOPED_TRACE(f.tensors[i].first);
    EXPECT_EQ(g.tensors[i].first, f.tensors[i].first);  // file order kept
    const auto& a = f.tensors[i].second;
    const auto& b = g.tensors[i].second;
    EXPECT_EQ(b.scalar_type(), a.scalar_type());
    EXPECT_EQ(b.sizes(), a.sizes());
    EXPECT_TRUE(torch::equal(a, b));
  }
  EXPECT_EQ(g.at("scalar").dim(), 0);
  EXPECT_EQ(g.metadata, f.metadata);
  EXPECT_TRUE(g.contains("f16"));
  EXPECT_FALSE(g.contains("nope"));

  SafetensorsHeader h = read_safetensors_header(d.file("a.safetensors"));
  ASSERT_EQ(h.entries.size(), f.tensors.size());
  EXPECT_EQ(h.entries[1].name, "f32");
  EXPECT_EQ(h.entries[1].dtype, torch::kFloat32);
  EXPECT_EQ(h.entries[1].shape, (std::vector<std::int64_t>{2, 3, 5}));
  EXPECT_EQ(h.entries[10].shape, std::vector<std::int64_t>{});
  EXPECT_EQ(h.metadata, f.metadata);
  // The header (after the 8-byte length) is padded to a multiple of 8 bytes.
  std::string bytes = slurp(d.file("a.safetensors"));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, EmptyFileAndNoMetadataRoundTrip) {
  TempDir d;
  write_safetensors(d.file("e.safetensors"), SafetensorsFile{});
  EXPECT_EQ(slurp(d.file("e.safetensors")), raw_file("{}", ""));
  SafetensorsFile g = read_safetensors(d.file("e.safetensors"));
  EXPECT_TRUE(g.tensors.empty());
  EXPECT_TRUE(g.metadata.empty());
}

TEST(Safetensors, WritesNonContiguousTensorsByValue) {
  TempDir d;
  torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  SafetensorsFile f;
  f.tensors.emplace_back("t", base.t());                // transposed view
  f.tensors.emplace_back("s", base.slice(1, 1, 6, 2));  // strided slice
  f.tensors.emplace_back("x", base.expand({2, 4, 6}));  // zero stride
  write_safetensors(d.file("n.safetensors"), f);
  SafetensorsFile g = read_safetensors(d.file("n.safetensors"));
  EXPECT_TRUE(torch::equal(g.at("t"), base.t()));
  EXPECT_TRUE(torch::equal(g.at("s"), base.slice(1, 1, 6, 2)));
  EXPECT_TRUE(torch::equal(g.at("x"), base.expand({2, 4, 6})));
  EXPECT_TRUE(g.at("t").is_contiguous());
}

TEST(Safetensors, ByteExactLayoutOfATinyFile) {
  TempDir d;
  SafetensorsFile f;
  f.tensors.emplace_back("a", torch::tensor({1.0f, -2.0f}));
  f.metadata["k"] = "v";
  write_safetensors(d.file("t.safetensors"), f);
  // 79 bytes of JSON + 1 space of padding = 80 = 0x50; then 1.0f and -2.0f little-endian.
  const std::string json =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  ASSERT_EQ(json.size(), 80u);
  std::string expected("\x50\0\0\0\0\0\0\0", 8);
  expected += json;
  expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(slurp(d.file("t.safetensors")), expected);

  // And a file written by hand in the reference layout reads back.
  contra::testing::write_bytes(d.file("hand.safetensors"), expected);
  SafetensorsFile g = read_safetensors(d.file("hand.safetensors"));
  EXPECT_TRUE(torch::equal(g.at("a"), torch::tensor({1.0f, -2.0f})));
  EXPECT_EQ(g.metadata.at("k"), "v");
}

TEST(Safetensors, WriterRejectsDuplicateNamesAndUnsupportedDtypes) {
  TempDir d;
  SafetensorsFile dup;
  dup.tensors.emplace_back("w", torch::zeros({1}));
  dup.tensors.emplace_back("w", torch::zeros({1}));
  EXPECT_THROW(
      {
        try {
          write_safetensors(d.file("d.safetensors"), dup);
        } catch (const ConfigError& e) {
          EXPECT_NE(std::string(e.what()).find("duplicate tensor name 'w'"), std::string::npos);
          throw;
        }
      },
      ConfigError);
  SafetensorsFile complex;
  complex.tensors.emplace_back("c", torch::zeros({2}, torch::kComplexFloat));
  EXPECT_THROW(
      {
        try {
          write_safetensors(d.file("c.safetensors"), complex);
        } catch (const ConfigError& e) {
          EXPECT_NE(std::string(e.what()).find("'c' has unsupported dtype"), std::string::npos);
          throw;
        }
      },
      ConfigError);
  SafetensorsFile reserved;
  reserved.tensors.emplace_back("__metadata__", torch::zeros({1}));
  EXPECT_THROW(write_safetensors(d.file("r.safetensors"), reserved), ConfigError);
  EXPECT_FALSE(path_exists(d.file("d.safetensors")));
  EXPECT_FALSE(path_exists(d.file("c.safetensors")));
}

TEST(Safetensors, AtNamesTheMissingTensorAndTheOnesPresent) {
  SafetensorsFile f;
  f.tensors.emplace_back("enc.w", torch::zeros({1}));
  try {
    f.at("enc.b");
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'enc.b'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("enc.w"), std::string::npos);
  }
}

TEST(Safetensors, WriteIntoMissingFolderThrowsIoErrorAndLeavesNothing) {
  TempDir d;
  SafetensorsFile f;
  f.tensors.emplace_back("w", torch::ones({3}));
  EXPECT_THROW(write_safetensors(d.file("missing/x.safetensors"), f), IoError);
  EXPECT_FALSE(path_exists(d.file("missing")));
  EXPECT_TRUE(std::filesystem::is_empty(d.path()));
}

TEST(Safetensors, FailedWriteKeepsTheOldFileAndNoTemporaries) {
  TempDir d;
  SafetensorsFile old;
  old.tensors.emplace_back("w", torch::ones({3}));
  write_safetensors(d.file("x.safetensors"), old);
  const std::string before = slurp(d.file("x.safetensors"));
  SafetensorsFile bad;
  bad.tensors.emplace_back("w", torch::ones({3}));
  bad.tensors.emplace_back("w", torch::ones({3}));
  EXPECT_THROW(write_safetensors(d.file("x.safetensors"), bad), ConfigError);
  EXPECT_EQ(slurp(d.file("x.safetensors")), before);
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(d.path())) ++files;
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, MissingFileIsAnIoErrorNamingIt) {
  TempDir d;
  try {
    read_safetensors(d.file("nope.safetensors"));
    FAIL() << "no IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos);
  }
  EXPECT_THROW(read_safetensors_header(d.file("nope.safetensors")), IoError);
}

struct Corruption {
  const char* name;
  std::string bytes;
  const char* expected;  // a part of the message
};

class SafetensorsCorruption : public ::testing::TestWithParam<int> {};

std::vector<Corruption> corruptions() {
  const std::string f32x2("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  auto one = [](const std::string& entry) { return R"({"a":)" + entry + "}"; };
  std::string too_long =
      raw_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), f32x2);
  too_long[0] = static_cast<char>(0xf0);  // header length 240 + ... beyond the file
  std::string huge(8, '\0');
  huge[4] = 1;  // 2^32 bytes: over the 100 MB limit
  huge += "{}      ";
  return {
      {"empty", "", "file too short (0 bytes"},
      {"short", std::string("\x08\0\0", 3), "file too short (3 bytes"},
      {"length_beyond_file", too_long, "beyond the end of the file"},
      {"length_over_limit", huge, "exceeds the limit"},
      {"not_json", raw_file("{not json", ""), "not valid JSON"},
      {"not_object", raw_file("[1,2]", ""), "not a JSON object"},
      {"truncated_json", raw_file(R"({"a":{"dtype":"F32")", ""), "not valid JSON"},
      {"unknown_dtype",
       raw_file(one(R"({"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]})"),
                std::string(2, '\0')),
       "unknown dtype 'F8_E4M3'"},
      {"entry_not_object", raw_file(one("3"), ""), "entry is not an object"},
      {"missing_offsets", raw_file(one(R"({"dtype":"F32","shape":[2]})"), f32x2),
       "missing \"data_offsets\""},
      {"unknown_key",
       raw_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), f32x2),
       "unknown key 'x'"},
      {"negative_shape",
       raw_file(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), f32x2),
       "not a non-negative integer"},
      {"shape_mismatch",
       raw_file(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), f32x2),
       "needs 12 bytes"},
      {"dtype_mismatch",
       raw_file(one(R"({"dtype":"F64","shape":[2],"data_offsets":[0,8]})"), f32x2),
       "needs 16 bytes"},
      {"end_before_begin", raw_file(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})"), ""),
       "end before begin"},
      {"out_of_range", raw_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[4,12]})"), f32x2),
       "out of range"},
      {"truncated_data",
       raw_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), f32x2.substr(0, 5)),
       "out of range"},
      {"overlap",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                f32x2),
       "overlaps tensor"},
      {"hole", raw_file(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), f32x2),
       "hole in the data buffer"},
      {"trailing_bytes",
       raw_file(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), f32x2), "cover only 4"},
      {"metadata_not_strings", raw_file(R"({"__metadata__":{"step":3}})", ""),
       "value of 'step' is not a string"},
      {"bad_bool",
       raw_file(one(R"({"dtype":"BOOL","shape":[2],"data_offsets":[0,2]})"),
                std::string("\x01\x07", 2)),
       "BOOL data holds bytes other than 0 and 1"},
  };
}

TEST_P(SafetensorsCorruption, GivesADataErrorNamingTheFileAndTheProblem) {
  const Corruption c = corruptions()[GetParam()];
  SCOPED_TRACE(c.name);
  TempDir d;
  const std::string path = d.file(std::string(c.name) + ".safetensors");
  contra::testing::write_bytes(path, c.bytes);
  const std::string message = data_error(path);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(c.expected), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Cases, SafetensorsCorruption,
                         ::testing::Range(0, static_cast<int>(corruptions().size())),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(corruptions()[info.param].name);
                         });

}  // namespace
}  // namespace contra::io
