#include "contra/viz/plot.h"

#include <cstdlib>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "contra/viz/projector.h"
#include "tests/support/support.h"

namespace contra::viz {
namespace {

using contra::testing::TempDir;

struct PngInfo {
  std::uint32_t width = 0, height = 0;
  std::uint64_t bytes = 0;
  std::size_t colours = 0;
};

// Checks the signature and the IHDR chunk, then decodes the image (stb) and counts its colours.
PngInfo check_png(const std::string& path) {
  PngInfo info;
  const std::string b = read_file(path);
  EXPECT_GE(b.size(), 33u) << path;
  if (b.size() < 33) return info;
  EXPECT_EQ(b.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path;
  EXPECT_EQ(b.substr(12, 4), "IHDR") << path;
  auto be32 = [&](std::size_t at) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
  };
  info.width = be32(16);
  info.height = be32(20);
  info.bytes = b.size();
  torch::Tensor img = data::read_image_file(path, 3);  // (3, H, W) uint8
  EXPECT_EQ(img.size(1), info.height);
  EXPECT_EQ(img.size(2), info.width);
  torch::Tensor packed =
      (img[0].to(torch::kInt) * 65536 + img[1].to(torch::kInt) * 256 + img[2].to(torch::kInt))
          .flatten();
  info.colours = static_cast<std::size_t>(std::get<0>(at::_unique(packed)).numel());
  return info;
}

TEST(LinePlot, WritesAValidPngOfTheRequestedSize) {
  TempDir d;
  Series a{"loss", {}, {}}, b{"other_loss", {}, {}};
  for (int i = 1; i <= 50; ++i) {
    a.x.push_back(i * 10);
    a.y.push_back(3.0 / i);
    b.x.push_back(i * 10);
    b.y.push_back(2.0 / std::sqrt(i));
  }
  Figure f;
  f.title = "a title with_underscores and 'quotes'";
  f.xlabel = "step";
  f.ylabel = "loss";
  f.width = 640;
  f.height = 400;
  line_plot(d.file("loss.png"), f, {a, b});
  PngInfo info = check_png(d.file("loss.png"));
  EXPECT_EQ(info.width, 640u);
  EXPECT_EQ(info.height, 400u);
  EXPECT_GT(info.bytes, 5000u);
  EXPECT_GT(info.colours, 8u);  // anti-aliased lines in two colours, text, grid
  // No temporary file is left behind.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path())) files += e.exists();
  EXPECT_EQ(files, 1u);
  contra::testing::expect_data_error([&] { line_plot(d.file("x.png"), f, {}); }, "no series");
  Series bad{"bad", {1, 2}, {1}};
  contra::testing::expect_data_error([&] { line_plot(d.file("x.png"), f, {bad}); }, "bad");
}

TEST(ScatterPlot, ColoursEachLabel) {
  TempDir d;
  torch::manual_seed(0);
  torch::Tensor points = torch::randn({300, 2});
  std::vector<std::string> labels;
  for (int i = 0; i < 300; ++i) labels.push_back(std::to_string(i % 10));
  Figure f;
  f.title = "scatter";
  scatter_plot(d.file("s.png"), f, points, labels);
  PngInfo info = check_png(d.file("s.png"));
  EXPECT_EQ(info.width, 900u);
  EXPECT_EQ(info.height, 560u);
  EXPECT_GT(info.bytes, 10000u);
  EXPECT_GT(info.colours, 20u);
  EXPECT_THROW(scatter_plot(d.file("t.png"), f, torch::randn({3, 3}), {"a", "b", "c"}), DataError);
}

TEST(Gnuplot, MissingProgramNamesTheDebianPackage) {
  ::setenv("CONTRA_GNUPLOT", "/nonexistent/gnuplot", 1);
  try {
    find_gnuplot();
    ADD_FAILURE() << "no UnavailableError";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("gnuplot-nox"), std::string::npos) << e.what();
  }
  ::unsetenv("CONTRA_GNUPLOT");
  EXPECT_NE(find_gnuplot().find("gnuplot"), std::string::npos);
}

void write_metrics(const std::string& run, int rows) {
  std::string text;
  for (int i = 1; i <= rows; ++i) {
    text += fmt::format(
        "{{\"step\": {}, \"loss\": {}, \"lr\": {}, \"items_per_s\": {}, \"acc_1\": {}, "
        "\"online_acc\": {}, \"ms_per_batch\": 3.0}}\n",
        i * 10, 4.0 / i, 1e-3 * std::min(1.0, i / 5.0), 1000 + i, 1 - 1.0 / (i + 1),
        0.5 + 0.01 * i);
  }
  make_dirs(run);
  write_file_atomic(run + "/metrics.jsonl", text);
}

TEST(PlotRun, CurvesAndMapsFromARunDirectory) {
  TempDir d;
  const std::string run = d.file("myrun");
  write_metrics(run, 30);
  // An embedding sample: 3 separated blobs of 60 points in 16-d.
  torch::manual_seed(2);
  EmbeddingSample s;
  std::vector<torch::Tensor> parts;
  for (int c = 0; c < 3; ++c) {
    parts.push_back(torch::randn({60, 16}) + torch::randn({1, 16}) * 10);
    for (int i = 0; i < 60; ++i)
      s.rows.push_back({std::string(1, static_cast<char>('a' + c)), std::to_string(c * 60 + i)});
  }
  s.points = torch::cat(parts);
  s.columns = {"label", "index"};
  write_projector(run + "/tensorboard/projector", s);
  PlotOptions o;
  o.tsne_iterations = 300;
  PlotResult r = plot_run(run, o);
  const std::vector<std::string> expected{run + "/plots/loss.png",
                                          run + "/plots/accuracy.png",
                                          run + "/plots/lr.png",
                                          run + "/plots/throughput.png",
                                          run + "/plots/embedding_pca_label.png",
                                          run + "/plots/embedding_tsne_label.png"};
  EXPECT_EQ(r.written, expected);
  for (const auto& png : r.written) {
    PngInfo info = check_png(png);
    EXPECT_EQ(info.width, 900u) << png;
    EXPECT_EQ(info.height, 560u) << png;
    EXPECT_GT(info.bytes, 5000u) << png;
    EXPECT_GT(info.colours, 8u) << png;
  }
  EXPECT_TRUE(r.notes.empty());
  // --out and a size; t-SNE off.
  o.out_dir = d.file("elsewhere");
  o.width = 400;
  o.height = 300;
  o.tsne_max_points = 0;
  r = plot_run(run, o);
  ASSERT_EQ(r.written.size(), 5u);
  EXPECT_EQ(r.written[4], d.file("elsewhere/embedding_pca_label.png"));
  EXPECT_EQ(check_png(r.written[0]).width, 400u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("t-SNE skipped"), std::string::npos);
}

TEST(PlotRun, ErrorCases) {
  TempDir d;
  // No metrics.jsonl: a DataError naming it.
  contra::testing::expect_data_error([&] { plot_run(d.path()); }, d.file("metrics.jsonl"));
  // Malformed rows name the file and line.
  write_file_atomic(d.file("metrics.jsonl"), "{\"step\": 1, \"loss\": 2}\nnot json\n{}\n");
  contra::testing::expect_data_error([&] { plot_run(d.path()); }, "line 2");
  write_file_atomic(d.file("metrics.jsonl"), "{\"loss\": 2}\n");
  contra::testing::expect_data_error([&] { plot_run(d.path()); }, "\"step\"");
  write_file_atomic(d.file("metrics.jsonl"), "");
  contra::testing::expect_data_error([&] { plot_run(d.path()); }, "no rows");
  // No projector sample: the curves, and a note that the map needs contra probe.
  write_metrics(d.path(), 5);
  PlotResult r = plot_run(d.path());
  EXPECT_EQ(r.written.size(), 4u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("contra probe"), std::string::npos) << r.notes[0];
}

TEST(PlotCli, PrintsPathsAndExits2WithoutMetrics) {
  TempDir d;
  write_metrics(d.file("run"), 4);
  const std::string contra = contra::testing::bin_dir() + "/contra";
  auto ok = contra::testing::run_command(contra + " plot " + d.file("run") + " --width 500");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find(d.file("run/plots/loss.png")), std::string::npos) << ok.out;
  EXPECT_NE(ok.err.find("contra probe"), std::string::npos) << ok.err;
  EXPECT_EQ(check_png(d.file("run/plots/loss.png")).width, 500u);
  auto bad = contra::testing::run_command(contra + " plot " + d.file("nothing"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("metrics.jsonl"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace contra::viz
