#pragma once
/// PNG figures through gnuplot (Debian's gnuplot-nox; the pngcairo terminal), run as a subprocess
/// with the data inline in a temporary script. `contra plot RUN_DIR` is plot_run().
///
/// The gnuplot program: $CONTRA_GNUPLOT when set, else `gnuplot` from PATH (then /usr/bin);
/// UnavailableError naming the Debian package when it is missing.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::viz {

/// The gnuplot executable; UnavailableError ("install the Debian package gnuplot-nox") otherwise.
std::string find_gnuplot();

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct Figure {
  std::string title, xlabel, ylabel;
  std::int64_t width = 900, height = 560;  // pixels
  bool log_y = false;
};

/// Line plot of the series (one colour each, with a key). DataError for no series / no points or
/// x and y of different lengths; IoError when gnuplot fails (its message included).
void line_plot(const std::string& png, const Figure& figure, const std::vector<Series>& series);

/// Scatter plot of points (N, 2) coloured by label: one colour (and, past 20 labels, marker shape)
/// per distinct label, labels sorted (numerically when all are numbers), a key for up to 30 labels.
void scatter_plot(const std::string& png, const Figure& figure, const torch::Tensor& points,
                  const std::vector<std::string>& labels);

struct PlotOptions {
  std::string out_dir;  // "" = RUN_DIR/plots
  std::int64_t width = 900, height = 560;
  std::int64_t tsne_max_points = 5000;  // t-SNE only for samples up to this size (0 = never)
  std::int64_t tsne_iterations = 1000;
  std::uint64_t seed = 0;
};

struct PlotResult {
  std::vector<std::string> written;  // PNG paths, in the order written
  std::vector<std::string> notes;    // what was skipped and why
};

/// Reads RUN_DIR/metrics.jsonl → loss.png (every metric named *loss*), accuracy.png (acc_*, *_acc,
/// *accuracy*: one curve each), lr.png, throughput.png (items_per_s); and, when contra probe wrote
/// RUN_DIR/tensorboard/projector, embedding_pca_<column>.png and (N <= tsne_max_points)
/// embedding_tsne_<column>.png for every metadata column with 2..60 distinct values. DataError
/// naming metrics.jsonl when it is missing, empty or malformed.
PlotResult plot_run(const std::string& run_dir, const PlotOptions& options = {});

}  // namespace contra::viz
