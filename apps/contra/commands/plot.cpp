// contra plot RUN_DIR: PNG figures of a run through gnuplot — loss, accuracy, learning-rate and
// throughput curves from metrics.jsonl, and 2-D maps (PCA, t-SNE) of the embedding sample that
// contra probe wrote to RUN_DIR/tensorboard/projector (docs/visualize.md).
#include <cstdio>
#include <memory>

#include "commands/commands.h"
#include "contra/core/runtime.h"
#include "contra/viz/plot.h"

namespace contra::cli {

namespace {

struct PlotCommandOptions {
  std::string run_dir;
  viz::PlotOptions plot;
  std::int64_t threads = 0;
};

int run_plot(const PlotCommandOptions& o) {
  if (o.threads > 0) set_threads(static_cast<int>(o.threads));
  viz::PlotResult r = viz::plot_run(o.run_dir, o.plot);
  for (const auto& note : r.notes) std::fprintf(stderr, "plot: %s\n", note.c_str());
  for (const auto& path : r.written) std::printf("%s\n", path.c_str());
  return 0;
}

}  // namespace

void register_plot(CLI::App& app) {
  auto o = std::make_shared<PlotCommandOptions>();
  auto* plot = app.add_subcommand(
      "plot",
      "PNG figures of a run (gnuplot): loss, accuracy, lr and throughput curves from "
      "metrics.jsonl; PCA and t-SNE maps of the embedding sample `contra probe` wrote");
  plot->add_option("run_dir", o->run_dir, "run directory (holds metrics.jsonl)")->required();
  plot->add_option("--out", o->plot.out_dir, "output folder (default RUN_DIR/plots)");
  plot->add_option("--width", o->plot.width, "figure width in pixels")
      ->check(CLI::Range(100, 10000))
      ->capture_default_str();
  plot->add_option("--height", o->plot.height, "figure height in pixels")
      ->check(CLI::Range(100, 10000))
      ->capture_default_str();
  plot->add_option("--tsne-max-points", o->plot.tsne_max_points,
                   "t-SNE only for samples up to this size (0 = PCA only)")
      ->check(CLI::Range(0, 5000))
      ->capture_default_str();
  plot->add_option("--tsne-iterations", o->plot.tsne_iterations, "t-SNE gradient steps")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  plot->add_option("--seed", o->plot.seed, "seeds the t-SNE initial map")->capture_default_str();
  plot->add_option("--threads", o->threads, "CPU threads (0 = the default)");
  plot->callback([o] { set_runner([o] { return run_plot(*o); }); });
}

}  // namespace contra::cli
