// Integration: the real `contra` binary — exit codes and messages.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "tests/support/support.h"

namespace contra {
namespace {

using contra::testing::bin_dir;
using contra::testing::run_command;
using contra::testing::TempDir;
using contra::testing::write_bytes;

std::string contra_bin() { return bin_dir() + "/contra"; }

TEST(Cli, VersionHelpAndUsageErrors) {
  auto v = run_command(contra_bin() + " --version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("contra 0."), std::string::npos);
  auto h = run_command(contra_bin() + " --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("corpus"), std::string::npos);
  for (const char* sub :
       {"env", "corpus speech", "audio info", "data mnist", "data info", "augment preview"}) {
    auto r = run_command(contra_bin() + " " + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
  }
  EXPECT_EQ(run_command(contra_bin()).exit_code, 2);
  EXPECT_EQ(run_command(contra_bin() + " frobnicate").exit_code, 2);
  EXPECT_EQ(run_command(contra_bin() + " env --threads notanumber").exit_code, 2);
}

TEST(Cli, EnvReportsRuntime) {
  auto r = run_command(contra_bin() + " env --json --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_TRUE(j["libtorch"].get<std::string>().rfind("1.", 0) == 0 ||
              j["libtorch"].get<std::string>().rfind("2.", 0) == 0);
  EXPECT_TRUE(j.contains("blas"));
  EXPECT_TRUE(j["allocator_tuned"].get<bool>());
  EXPECT_GT(j["matmul_gflops"].get<double>(), 0.0);
}

TEST(Cli, AudioInfoErrorsExitTwoWithOneLine) {
  TempDir d;
  auto r = run_command(contra_bin() + " audio info " + d.file("missing.flac"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("missing.flac"), std::string::npos);
  contra::testing::write_bytes(d.file("junk.wav"), "junk");
  EXPECT_EQ(run_command(contra_bin() + " audio info " + d.file("junk.wav")).exit_code, 2);
}

TEST(Cli, CorpusSpeechEndToEndAndConfigErrors) {
  TempDir d;
  auto bad_key =
      run_command(contra_bin() + " corpus speech --out " + d.file("c") + " --set corpus.bogus=1");
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_NE(bad_key.err.find("unknown key 'corpus.bogus'"), std::string::npos) << bad_key.err;
  contra::testing::write_bytes(d.file("bad.yaml"), "corpus:\n  speakers: [1, 2\n");
  auto bad_yaml = run_command(contra_bin() + " corpus speech --out " + d.file("c") + " --config " +
                              d.file("bad.yaml"));
  EXPECT_EQ(bad_yaml.exit_code, 2);
  EXPECT_NE(bad_yaml.err.find("bad.yaml:"), std::string::npos) << bad_yaml.err;
  contra::testing::write_bytes(d.file("sec.yaml"), "train:\n  steps: 3\n");
  auto bad_section = run_command(contra_bin() + " corpus speech --out " + d.file("c") +
                                 " --config " + d.file("sec.yaml"));
  EXPECT_EQ(bad_section.exit_code, 2);
  EXPECT_NE(bad_section.err.find("unknown section 'train'"), std::string::npos) << bad_section.err;

  contra::testing::write_bytes(d.file("ok.yaml"), "corpus:\n  speakers: 2\n  utterances: 3\n");
  auto ok = run_command(contra_bin() + " corpus speech --json --out " + d.file("c") + " --config " +
                        d.file("ok.yaml") + " --set corpus.seed=5");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["utterances"], 6);
  auto resolved = read_file(d.file("c/config.yaml"));
  EXPECT_NE(resolved.find("seed: 5"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("schema_version: 1"), std::string::npos) << resolved;
  auto again = run_command(contra_bin() + " corpus speech --out " + d.file("c"));
  EXPECT_EQ(again.exit_code, 2);
  auto if_missing = run_command(contra_bin() + " corpus speech --if-missing --out " + d.file("c"));
  EXPECT_EQ(if_missing.exit_code, 0) << if_missing.err;
  EXPECT_NE(if_missing.out.find("utterances        6"), std::string::npos) << if_missing.out;
  auto info = run_command(contra_bin() + " audio info --json " +
                          d.file("c/1000/20000/1000-20000-0000.flac"));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)[0]["sample_rate"], 16000);
}

// Width and height from a PNG's IHDR chunk (big-endian at bytes 16 and 20).
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& bytes) {
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes.at(at + i));
    return v;
  };
  return {be32(16), be32(20)};
}

TEST(Cli, AugmentPreviewWritesADeterministicGrid) {
  TempDir d;
  make_dirs(d.file("mnist"));
  torch::manual_seed(0);
  data::write_idx_images(d.file("mnist/train-images-idx3-ubyte"),
                         torch::randint(0, 256, {20, 1, 28, 28}, torch::kInt64).to(torch::kUInt8));
  data::write_idx_labels(d.file("mnist/train-labels-idx1-ubyte"),
                         torch::arange(20, torch::kInt64).remainder(10));
  const std::string base = contra_bin() + " augment preview --data " + d.file("mnist");
  // 4 rows × (1 + 3) columns of 28·2 = 56 pixel cells, 2 pixels of padding.
  auto r = run_command(base + " --images 4 --views 3 --scale 2 --seed 7 --out " + d.file("a.png"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(d.file("a.png")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("234x234 pixels"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("augment.preset"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("simclr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("augment.scale_min"), std::string::npos) << r.out;
  const std::string a = read_file(d.file("a.png"));
  EXPECT_EQ(png_size(a), (std::pair<std::uint32_t, std::uint32_t>{4 * 56 + 5 * 2, 4 * 56 + 5 * 2}));

  // The same seed gives the same bytes; another seed other views.
  auto again =
      run_command(base + " --images 4 --views 3 --scale 2 --seed 7 --out " + d.file("b.png"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_file(d.file("b.png")), a);
  auto other =
      run_command(base + " --images 4 --views 3 --scale 2 --seed 8 --out " + d.file("c.png"));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(read_file(d.file("c.png")), a);

  // Defaults (8 rows, 6 views, 4x) and a recipe's augment: section with --set on top.
  write_bytes(d.file("recipe.yaml"), "augment:\n  preset: moco_v2\n  scale_min: 0.5\n");
  auto recipe = run_command(base + " --config " + d.file("recipe.yaml") +
                            " --set augment.flip_p=0 --out " + d.file("d.png"));
  ASSERT_EQ(recipe.exit_code, 0) << recipe.err;
  EXPECT_NE(recipe.out.find("moco_v2"), std::string::npos) << recipe.out;
  EXPECT_EQ(png_size(read_file(d.file("d.png"))),
            (std::pair<std::uint32_t, std::uint32_t>{7 * 112 + 8 * 2, 8 * 112 + 9 * 2}));

  // Errors exit 2 with one line naming what is wrong.
  auto bad_preset = run_command(base + " --preset bogus --out " + d.file("e.png"));
  EXPECT_EQ(bad_preset.exit_code, 2);
  EXPECT_NE(bad_preset.err.find("augment.preset"), std::string::npos) << bad_preset.err;
  EXPECT_FALSE(path_exists(d.file("e.png")));
  auto bad_key = run_command(base + " --set augment.bogus=1 --out " + d.file("e.png"));
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_NE(bad_key.err.find("augment.bogus"), std::string::npos) << bad_key.err;
  EXPECT_EQ(run_command(base + " --images 0 --out " + d.file("e.png")).exit_code, 2);
  EXPECT_EQ(run_command(base + " --views 0 --out " + d.file("e.png")).exit_code, 2);
  auto no_data = run_command(contra_bin() + " augment preview --data " + d.file("nope") +
                             " --out " + d.file("e.png"));
  EXPECT_EQ(no_data.exit_code, 2);
  EXPECT_NE(no_data.err.find("nope"), std::string::npos) << no_data.err;
  auto bad_out = run_command(base + " --out " + d.file("no/such/dir/e.png"));
  EXPECT_EQ(bad_out.exit_code, 2);
  EXPECT_NE(bad_out.err.find("e.png"), std::string::npos) << bad_out.err;
}

}  // namespace
}  // namespace contra
