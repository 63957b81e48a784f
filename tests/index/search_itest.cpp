// Integration: `contra embed`, `contra index build|info` and `contra search` through the real
// binary — an interrupted embed resumed, search by item id and by image file, and the exit code 2
// errors (missing checkpoint, unknown id, corrupt index, dimension mismatch, text on a non-CLIP
// index).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/embed/embed.h"
#include "tests/embed/embed_fixtures.h"
#include "tests/support/support.h"

namespace contra {
namespace {

using contra::testing::run_command;
using contra::testing::TempDir;

std::string contra_bin() { return contra::testing::bin_dir() + "/contra"; }

TEST(SearchCli, EmbedIndexSearchEndToEnd) {
  TempDir d;
  const std::string run = contra::testing::make_image_checkpoint(d.path());
  const std::string embed =
      contra_bin() + " embed --checkpoint " + run + " --data mnist:" + d.file("mnist") +
      ":test --batch-size 4 --chunk-size 8 --no-progress" + " --out " + d.file("e.st");
  // Interrupted after 2 of 4 chunks, then resumed.
  auto part = run_command(embed + " --stop-after-chunks 2");
  ASSERT_EQ(part.exit_code, 0) << part.err;
  EXPECT_FALSE(path_exists(d.file("e.st")));
  auto early = run_command(contra_bin() + " index build --embeddings " + d.file("e.st.partial") +
                           " --out " + d.file("ix"));
  EXPECT_EQ(early.exit_code, 2);
  EXPECT_NE(early.err.find("unfinished"), std::string::npos) << early.err;
  auto rest = run_command(embed + " --json");
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  auto js = nlohmann::json::parse(rest.out);
  EXPECT_EQ(js["chunks_reused"], 2);
  EXPECT_EQ(js["count"], 30);
  auto again = run_command(embed);
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("already complete"), std::string::npos) << again.out;

  for (const char* type : {"flat", "ivf", "hnsw"}) {
    const std::string ix = d.file(std::string("ix_") + type);
    auto b = run_command(contra_bin() + " index build --embeddings " + d.file("e.st") + " --type " +
                         type + " --out " + ix);
    ASSERT_EQ(b.exit_code, 0) << b.err;
    auto info = run_command(contra_bin() + " index info " + ix + " --json");
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_EQ(nlohmann::json::parse(info.out)["type"], type);
    auto s =
        run_command(contra_bin() + " search --index " + ix + " --query test/00011 -k 3 --json");
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto j = nlohmann::json::parse(s.out);
    ASSERT_EQ(j["hits"].size(), 3u);
    EXPECT_EQ(j["hits"][0]["id"], "test/00011") << type;
    EXPECT_EQ(j["query_kind"], "item");
  }
  auto ev = run_command(contra_bin() + " index eval " + d.file("ix_flat") + " -k 3 --json");
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  auto je = nlohmann::json::parse(ev.out);
  EXPECT_EQ(je["self_first"], 1.0);
  EXPECT_EQ(je["queries"], 30);
  EXPECT_GE(je["label_precision"].get<double>(), 0.0);
  // An image file is encoded with the checkpoint the index records: its own item comes first.
  const auto test = data::read_mnist(d.file("mnist"), "test");
  data::write_png(d.file("q.png"), test.images[21]);
  auto f = run_command(contra_bin() + " search --index " + d.file("ix_flat") + " --query " +
                       d.file("q.png") + " -k 2 --json");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto jf = nlohmann::json::parse(f.out);
  EXPECT_EQ(jf["query_kind"], "file");
  EXPECT_EQ(jf["hits"][0]["id"], "test/00021");
  EXPECT_NEAR(jf["hits"][0]["score"].get<double>(), 1.0, 1e-4);
  auto table =
      run_command(contra_bin() + " search --index " + d.file("ix_flat") + " --query test/00002");
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("test/00002"), std::string::npos);

  // Errors: exit 2 with one clear line.
  auto unknown =
      run_command(contra_bin() + " search --index " + d.file("ix_flat") + " --query test/99999");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("test/99999"), std::string::npos) << unknown.err;
  auto text = run_command(contra_bin() + " search --index " + d.file("ix_flat") + " --text seven");
  EXPECT_EQ(text.exit_code, 2);
  EXPECT_NE(text.err.find("no text encoder"), std::string::npos) << text.err;
  auto missing = run_command(contra_bin() + " embed --checkpoint " + d.file("nope") + " --out " +
                             d.file("x.st"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
  // The index's checkpoint is gone: a file query says which checkpoint is missing.
  auto other = run_command(contra_bin() + " search --index " + d.file("ix_flat") + " --query " +
                           d.file("q.png") + " --checkpoint " + d.file("gone"));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("gone"), std::string::npos) << other.err;
  // Dimension mismatch: an index of 5-dimensional vectors searched with an image of this model.
  embed::Embeddings small;
  small.vectors = torch::randn({6, 5});
  small.labels = torch::full({6}, -1, torch::kLong);
  small.ids = {"a", "b", "c", "d", "e", "f"};
  small.meta = {{"checkpoint", run}, {"features", "encoder"}};
  embed::write_embeddings(d.file("small.st"), small);
  ASSERT_EQ(run_command(contra_bin() + " index build --embeddings " + d.file("small.st") +
                        " --out " + d.file("ix_small"))
                .exit_code,
            0);
  auto dim = run_command(contra_bin() + " search --index " + d.file("ix_small") + " --query " +
                         d.file("q.png"));
  EXPECT_EQ(dim.exit_code, 2);
  EXPECT_NE(dim.err.find("dimension 5"), std::string::npos) << dim.err;
  // Corrupt index folder.
  const std::string faiss_file = d.file("ix_hnsw/index.faiss");
  write_file_atomic(faiss_file, read_file(faiss_file).substr(0, 100));
  auto corrupt =
      run_command(contra_bin() + " search --index " + d.file("ix_hnsw") + " --query test/00001");
  EXPECT_EQ(corrupt.exit_code, 2);
  EXPECT_NE(corrupt.err.find("index.faiss"), std::string::npos) << corrupt.err;
  auto none = run_command(contra_bin() + " search --index " + d.file("ix_flat"));
  EXPECT_EQ(none.exit_code, 2);
}

}  // namespace
}  // namespace contra
