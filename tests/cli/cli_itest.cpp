// Integration: the real `contra` binary — exit codes and messages.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "tests/support/support.h"

namespace contra {
namespace {

using contra::testing::bin_dir;
using contra::testing::run_command;
using contra::testing::TempDir;

std::string contra_bin() { return bin_dir() + "/contra"; }

TEST(Cli, VersionHelpAndUsageErrors) {
  auto v = run_command(contra_bin() + " --version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("contra 0."), std::string::npos);
  auto h = run_command(contra_bin() + " --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("corpus"), std::string::npos);
  for (const char* sub : {"env", "corpus speech", "audio info", "data mnist", "data info"}) {
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

}  // namespace
}  // namespace contra
