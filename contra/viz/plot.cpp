#include "contra/viz/plot.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/subprocess.h"
#include "contra/viz/embedding_map.h"
#include "contra/viz/projector.h"

namespace contra::viz {
namespace fs = std::filesystem;

namespace {

// Tableau's 20 colours: distinct, readable on white.
const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                                "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"};
constexpr std::size_t kNumColours = sizeof(kColours) / sizeof(kColours[0]);
const int kPointTypes[] = {7, 5, 9, 13, 11};  // filled circle, square, triangles, diamond

// A gnuplot single-quoted string ('' is a literal quote inside).
std::string gp_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c != '\n' && c != '\r')
      out += c;
  }
  return out + "'";
}

std::string number(double v) { return fmt::format("{:.9g}", v); }

std::string header(const std::string& png_tmp, const Figure& f) {
  check<ConfigError>(f.width >= 100 && f.width <= 10000 && f.height >= 100 && f.height <= 10000,
                     "plot: figure size must be 100..10000 pixels (got {}x{})", f.width, f.height);
  std::string s =
      fmt::format("set terminal pngcairo size {},{} noenhanced font 'sans,10'\nset output {}\n",
                  f.width, f.height, gp_string(png_tmp));
  s += fmt::format("set title {}\nset xlabel {}\nset ylabel {}\n", gp_string(f.title),
                   gp_string(f.xlabel), gp_string(f.ylabel));
  s += "set grid lc rgb '#dddddd'\nset border lc rgb '#555555'\n";
  if (f.log_y) s += "set logscale y\n";
  return s;
}

// Runs gnuplot on `script` producing `png` (written to a temporary sibling, renamed on success).
void run_gnuplot(const std::string& png, const std::string& png_tmp, const std::string& script) {
  const std::string gnuplot = find_gnuplot();
  const std::string script_path = temp_sibling(png) + ".gp";
  write_file_atomic(script_path, script);
  ProcessResult r;
  try {
    r = run_process({gnuplot, script_path});
  } catch (...) {
    remove_all(script_path);
    throw;
  }
  remove_all(script_path);
  std::error_code ec;
  if (r.exit_code != 0 || !fs::is_regular_file(png_tmp, ec) || fs::file_size(png_tmp, ec) == 0) {
    remove_all(png_tmp);
    throw IoError(fmt::format("plot: gnuplot ('{}') failed writing '{}' (exit {}): {}", gnuplot,
                              png, r.exit_code, r.err));
  }
  fs::rename(png_tmp, png, ec);
  if (ec) throw IoError(fmt::format("plot: renaming to '{}': {}", png, ec.message()));
}

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// "acc_2" before "acc_10": names compared with their digit runs as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      std::string x = a.substr(i, ei - i), y = b.substr(j, ej - j);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size() - 1));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size() - 1));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

bool is_accuracy(const std::string& key) {
  return key.rfind("acc_", 0) == 0 || (key.size() > 4 && key.substr(key.size() - 4) == "_acc") ||
         key.find("accuracy") != std::string::npos;
}

struct Metrics {
  std::map<std::string, Series> series;  // by key, x = step
  std::int64_t rows = 0;
};

Metrics read_metrics(const std::string& path) {
  check<DataError>(path_exists(path),
                   "plot: no '{}' (expected a run directory written by contra train)", path);
  Metrics m;
  std::stringstream in(read_file(path));
  std::string line;
  std::int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      // A torn last line (a crash while writing) is skipped; anything else is an error.
      if (in.peek() == EOF) break;
      throw DataError(fmt::format("'{}' line {}: not valid JSON ({})", path, line_no, e.what()));
    }
    check<DataError>(row.is_object() && row.contains("step") && row["step"].is_number(),
                     "'{}' line {}: no numeric \"step\"", path, line_no);
    const double step = row["step"].get<double>();
    for (const auto& [k, v] : row.items()) {
      if (k == "step" || !v.is_number()) continue;
      const double value = v.get<double>();
      if (!std::isfinite(value)) continue;
      Series& s = m.series[k];
      s.name = k;
      s.x.push_back(step);
      s.y.push_back(value);
    }
    ++m.rows;
  }
  check<DataError>(m.rows > 0, "plot: '{}' has no rows (train for at least train.log_every steps)",
                   path);
  return m;
}

std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

}  // namespace

std::string find_gnuplot() {
  const char* hint = "install the Debian package gnuplot-nox (apt-get install gnuplot-nox)";
  if (const char* env = std::getenv("CONTRA_GNUPLOT"); env && *env) {
    check<UnavailableError>(::access(env, X_OK) == 0,
                            "plot: CONTRA_GNUPLOT '{}' is not an executable program ({})", env,
                            hint);
    return env;
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream in(path);
    std::string d;
    while (std::getline(in, d, ':')) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  dirs.push_back("/usr/bin");
  for (const auto& d : dirs) {
    const std::string candidate = d + "/gnuplot";
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  throw UnavailableError(fmt::format("plot: gnuplot not found ({})", hint));
}

void line_plot(const std::string& png, const Figure& figure, const std::vector<Series>& series) {
  check<DataError>(!series.empty(), "plot '{}': no series", png);
  const std::string tmp = temp_sibling(png) + ".png";
  std::string script = header(tmp, figure);
  script += "set key outside right top\n";
  std::string plot;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    check<DataError>(!s.x.empty() && s.x.size() == s.y.size(),
                     "plot '{}': series '{}' has {} x and {} y values", png, s.name, s.x.size(),
                     s.y.size());
    script += fmt::format("$d{} << EOD\n", i);
    for (std::size_t k = 0; k < s.x.size(); ++k)
      script += number(s.x[k]) + " " + number(s.y[k]) + "\n";
    script += "EOD\n";
    plot += fmt::format("{}$d{} using 1:2 with {} lw 2 lc rgb '{}' title {}", i ? ", " : "plot ", i,
                        s.x.size() == 1 ? "points pt 7" : "lines", kColours[i % kNumColours],
                        gp_string(s.name));
  }
  run_gnuplot(png, tmp, script + plot + "\n");
}

void scatter_plot(const std::string& png, const Figure& figure, const torch::Tensor& points,
                  const std::vector<std::string>& labels) {
  check<DataError>(points.dim() == 2 && points.size(1) == 2 && points.size(0) >= 1,
                   "plot '{}': expected (N, 2) points", png);
  check<DataError>(static_cast<std::int64_t>(labels.size()) == points.size(0),
                   "plot '{}': {} labels for {} points", png, labels.size(), points.size(0));
  std::vector<std::string> names(labels.begin(), labels.end());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (std::all_of(names.begin(), names.end(), is_number)) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return std::strtod(a.c_str(), nullptr) < std::strtod(b.c_str(), nullptr);
    });
  } else {
    std::sort(names.begin(), names.end(), natural_less);
  }
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < names.size(); ++i) index[names[i]] = i;
  std::vector<std::string> blocks(names.size());
  torch::Tensor p = points.to(torch::kCPU, torch::kDouble).contiguous();
  const double* xy = p.data_ptr<double>();
  for (std::size_t i = 0; i < labels.size(); ++i)
    blocks[index[labels[i]]] += number(xy[2 * i]) + " " + number(xy[2 * i + 1]) + "\n";
  const std::string tmp = temp_sibling(png) + ".png";
  std::string script = header(tmp, figure);
  script += names.size() <= 30 ? fmt::format("set key outside right top {}\n",
                                             names.size() > 15 ? "maxrows 30 font 'sans,8'" : "")
                               : "unset key\n";
  std::string plot;
  const double size = p.size(0) > 3000 ? 0.4 : p.size(0) > 500 ? 0.6 : 0.9;
  for (std::size_t i = 0; i < names.size(); ++i) {
    script += fmt::format("$d{} << EOD\n{}EOD\n", i, blocks[i]);
    plot += fmt::format("{}$d{} using 1:2 with points pt {} ps {} lc rgb '{}' title {}",
                        i ? ", " : "plot ", i, kPointTypes[(i / kNumColours) % 5], size,
                        kColours[i % kNumColours], gp_string(names[i]));
  }
  run_gnuplot(png, tmp, script + plot + "\n");
}

PlotResult plot_run(const std::string& run_dir, const PlotOptions& o) {
  PlotResult result;
  Metrics m = read_metrics(run_dir + "/metrics.jsonl");
  const std::string out = o.out_dir.empty() ? run_dir + "/plots" : o.out_dir;
  make_dirs(out);
  const std::string run_name = fs::path(run_dir).lexically_normal().filename().string();
  auto figure = [&](const std::string& title, const std::string& ylabel) {
    Figure f;
    f.title = fmt::format("{}: {}", run_name.empty() ? run_dir : run_name, title);
    f.xlabel = "step";
    f.ylabel = ylabel;
    f.width = o.width;
    f.height = o.height;
    return f;
  };
  auto curves = [&](const std::string& file, Figure f, const std::vector<Series>& series) {
    if (series.empty()) return false;
    const std::string png = out + "/" + file;
    line_plot(png, f, series);
    result.written.push_back(png);
    return true;
  };
  std::vector<Series> losses, accuracies;
  for (const auto& [k, s] : m.series) {
    if (k.find("loss") != std::string::npos) losses.push_back(s);
    if (is_accuracy(k)) accuracies.push_back(s);
  }
  for (auto* list : {&losses, &accuracies}) {
    std::sort(list->begin(), list->end(),
              [](const Series& a, const Series& b) { return natural_less(a.name, b.name); });
  }
  {
    Figure f = figure("training loss", "loss");
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& s : losses) {
      for (double v : s.y) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    f.log_y = lo > 0 && hi / lo > 20;
    if (!curves("loss.png", f, losses)) result.notes.push_back("no loss in metrics.jsonl");
  }
  if (!curves("accuracy.png", figure("accuracy during training", "accuracy"), accuracies))
    result.notes.push_back(
        "no accuracy metric (acc_*, *_acc, *accuracy*) in metrics.jsonl: no accuracy.png");
  if (m.series.count("lr")) curves("lr.png", figure("learning rate", "lr"), {m.series["lr"]});
  if (m.series.count("items_per_s"))
    curves("throughput.png", figure("throughput", "items / s"), {m.series["items_per_s"]});

  const std::string projector = run_dir + "/tensorboard/projector";
  if (!path_exists(projector + "/tensors.tsv")) {
    result.notes.push_back(fmt::format(
        "no embedding sample at '{}': run `contra probe --checkpoint {}` first for the 2-D maps",
        projector, run_dir));
    return result;
  }
  EmbeddingSample s = read_projector(projector);
  const std::int64_t n = s.points.size(0), dims = s.points.size(1);
  check<DataError>(n >= 3 && dims >= 2,
                   "'{}': the embedding sample needs >= 3 points of >= 2 "
                   "dimensions (got {} of {})",
                   projector, n, dims);
  // The metadata columns worth colouring by: 2..60 distinct values, at most three.
  std::vector<std::size_t> columns;
  for (std::size_t c = 0; c < s.columns.size() && columns.size() < 3; ++c) {
    std::set<std::string> distinct;
    for (const auto& row : s.rows) distinct.insert(row[c]);
    if (distinct.size() >= 2 && distinct.size() <= 60) columns.push_back(c);
  }
  if (columns.empty()) {
    result.notes.push_back("the embedding sample has no label column with 2..60 values: no map");
    return result;
  }
  std::vector<std::pair<std::string, torch::Tensor>> maps{{"pca", pca(s.points, 2)}};
  const double perplexity = std::min(30.0, static_cast<double>(n - 1) / 3.0);
  if (n <= o.tsne_max_points && perplexity >= 2) {
    TsneOptions t;
    t.perplexity = perplexity;
    t.iterations = o.tsne_iterations;
    t.exaggeration_iterations = std::min<std::int64_t>(250, o.tsne_iterations / 4);
    t.seed = o.seed;
    const auto start = std::chrono::steady_clock::now();
    maps.emplace_back("tsne", tsne(s.points, t));
    log().info("t-SNE of {} points: {:.1f} s", n,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } else {
    result.notes.push_back(
        fmt::format("{} points: t-SNE skipped (limit {})", n, o.tsne_max_points));
  }
  for (const auto& [kind, xy] : maps) {
    for (std::size_t c : columns) {
      std::vector<std::string> labels;
      for (const auto& row : s.rows) labels.push_back(row[c]);
      Figure f;
      f.title = fmt::format("{}: {} of {} embeddings ({}-d), coloured by {}", run_name,
                            kind == "pca" ? "PCA" : "t-SNE", n, dims, s.columns[c]);
      f.xlabel = kind == "pca" ? "PC 1" : "t-SNE 1";
      f.ylabel = kind == "pca" ? "PC 2" : "t-SNE 2";
      f.width = o.width;
      f.height = o.height;
      const std::string png =
          fmt::format("{}/embedding_{}_{}.png", out, kind, safe_name(s.columns[c]));
      scatter_plot(png, f, xy, labels);
      result.written.push_back(png);
    }
  }
  return result;
}

}  // namespace contra::viz
