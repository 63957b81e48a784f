#include "contra/eval/knn.h"

#include <faiss/IndexFlat.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "contra/core/error.h"

namespace contra::eval {

namespace {

std::string shape_of(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

void check_options(const KnnOptions& options) {
  check<ConfigError>(options.k() >= 1, "knn: k must be >= 1 (got {})", options.k());
  check<ConfigError>(options.temperature() > 0, "knn: temperature must be > 0 (got {})",
                     options.temperature());
  check<ConfigError>(options.weighting() == "exp" || options.weighting() == "uniform",
                     "knn: weighting must be exp or uniform (got '{}')", options.weighting());
  check<ConfigError>(options.chunk() >= 1, "knn: chunk must be >= 1 (got {})", options.chunk());
}

/// Validates a feature matrix and returns it L2-normalised, CPU float32, contiguous: (N, D).
torch::Tensor prepare_features(const torch::Tensor& x, const char* name) {
  check<DataError>(x.defined() && x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0,
                   "knn: {} must be a non-empty (N, D) tensor (got shape {})", name, shape_of(x));
  check<DataError>(x.is_floating_point(), "knn: {} must be floating point (got {})", name,
                   c10::toString(x.scalar_type()));
  auto cpu = x.detach().to(torch::kCPU, torch::kFloat);
  check<DataError>(torch::isfinite(cpu).all().item<bool>(),
                   "knn: {} contains NaN or Inf (as float32)", name);
  // As F.normalize: a zero row stays zero (similarity 0 to everything).
  return (cpu / cpu.norm(2, 1, true).clamp_min(1e-12)).contiguous();
}

/// Validates a label vector of `rows` entries and returns it as CPU int64, contiguous.
torch::Tensor prepare_labels(const torch::Tensor& y, int64_t rows, const char* name,
                             const char* features) {
  check<DataError>(y.defined() && y.dim() == 1 && y.size(0) == rows,
                   "knn: {} must be one label per row of {} (got shape {}, expected [{}])", name,
                   features, shape_of(y), rows);
  check<DataError>(!y.is_floating_point() && !y.is_complex() && y.scalar_type() != torch::kBool,
                   "knn: {} must hold integer class ids (got {})", name,
                   c10::toString(y.scalar_type()));
  auto cpu = y.detach().to(torch::kCPU, torch::kLong).contiguous();
  const int64_t lowest = cpu.min().item<int64_t>();
  check<DataError>(lowest >= 0, "knn: {} labels must be >= 0 (got {})", name, lowest);
  return cpu;
}

struct Prepared {
  torch::Tensor train_x, train_y, test_x;  // (N, D) float, (N) int64, (M, D) float
  int64_t k = 0;
};

Prepared prepare(const torch::Tensor& train_x, const torch::Tensor& train_y,
                 const torch::Tensor& test_x, const KnnOptions& options) {
  check_options(options);
  Prepared p;
  p.train_x = prepare_features(train_x, "train_x");
  p.train_y = prepare_labels(train_y, p.train_x.size(0), "train_y", "train_x");
  p.test_x = prepare_features(test_x, "test_x");
  check<DataError>(p.train_x.size(1) == p.test_x.size(1),
                   "knn: train_x and test_x feature sizes differ ({} vs {})", p.train_x.size(1),
                   p.test_x.size(1));
  p.k = std::min(options.k(), p.train_x.size(0));
  return p;
}

/// Searches the k nearest training features of every test feature, `chunk` queries at a time, and
/// calls on_chunk(first, n, scores) with scores: (n, classes) summed votes, row-major.
template <class OnChunk>
void vote(const Prepared& p, int64_t classes, const KnnOptions& options, OnChunk&& on_chunk) {
  const int64_t N = p.train_x.size(0), D = p.train_x.size(1), M = p.test_x.size(0), k = p.k;
  faiss::IndexFlatIP index(D);  // exact inner-product search = cosine on unit vectors
  index.add(N, p.train_x.data_ptr<float>());

  const int64_t chunk = std::min(options.chunk(), M);
  std::vector<float> sims(chunk * k);                      // (chunk, k), decreasing per row
  std::vector<faiss::Index::idx_t> neighbours(chunk * k);  // (chunk, k) rows of train_x
  std::vector<double> scores(chunk * classes);             // (chunk, classes)
  const bool uniform = options.weighting() == "uniform";
  const double inv_t = 1.0 / options.temperature();
  const int64_t* labels = p.train_y.data_ptr<int64_t>();
  const float* queries = p.test_x.data_ptr<float>();

  for (int64_t first = 0; first < M; first += chunk) {
    const int64_t n = std::min(chunk, M - first);
    index.search(n, queries + first * D, k, sims.data(), neighbours.data());
    std::fill(scores.begin(), scores.begin() + n * classes, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const float* s = sims.data() + i * k;
      const faiss::Index::idx_t* id = neighbours.data() + i * k;
      double* row = scores.data() + i * classes;
      // Shifting by the best similarity scales every weight of the row alike: same argmax, and
      // exp cannot overflow for small temperatures.
      const double best = s[0];
      for (int64_t j = 0; j < k; ++j) {
        if (id[j] < 0) continue;  // FAISS's "no result" (cannot happen with k <= N)
        row[labels[id[j]]] += uniform ? 1.0 : std::exp((s[j] - best) * inv_t);
      }
    }
    on_chunk(first, n, scores.data());
  }
}

/// argmax of a score row; ties → lowest class id.
int64_t best_class(const double* row, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c) {
    if (row[c] > row[best]) best = c;
  }
  return best;
}

/// Position of `label` when the classes are sorted by decreasing score, ties by increasing id.
int64_t rank_of(const double* row, int64_t classes, int64_t label) {
  int64_t rank = 0;
  for (int64_t c = 0; c < classes; ++c) {
    if (row[c] > row[label] || (row[c] == row[label] && c < label)) ++rank;
  }
  return rank;
}

}  // namespace

KnnResult knn_classify(const torch::Tensor& train_x, const torch::Tensor& train_y,
                       const torch::Tensor& test_x, const torch::Tensor& test_y,
                       const KnnOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto p = prepare(train_x, train_y, test_x, options);
  auto truth = prepare_labels(test_y, p.test_x.size(0), "test_y", "test_x");

  KnnResult result;
  result.k = p.k;
  result.dim = p.train_x.size(1);
  result.train_size = p.train_x.size(0);
  result.test_size = p.test_x.size(0);
  result.classes = std::max(p.train_y.max().item<int64_t>(), truth.max().item<int64_t>()) + 1;

  const int64_t classes = result.classes;
  const int64_t* labels = truth.data_ptr<int64_t>();
  int64_t top1 = 0, top5 = 0;
  vote(p, classes, options, [&](int64_t first, int64_t n, const double* scores) {
    for (int64_t i = 0; i < n; ++i) {
      const double* row = scores + i * classes;
      const int64_t label = labels[first + i];
      if (best_class(row, classes) == label) ++top1;
      if (classes >= 5 && rank_of(row, classes, label) < 5) ++top5;
    }
  });
  const auto m = static_cast<double>(result.test_size);
  result.top1 = static_cast<double>(top1) / m;
  result.top5 =
      classes >= 5 ? static_cast<double>(top5) / m : std::numeric_limits<double>::quiet_NaN();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

torch::Tensor knn_predict(const torch::Tensor& train_x, const torch::Tensor& train_y,
                          const torch::Tensor& test_x, const KnnOptions& options) {
  auto p = prepare(train_x, train_y, test_x, options);
  const int64_t classes = p.train_y.max().item<int64_t>() + 1;
  auto predicted = torch::empty({p.test_x.size(0)}, torch::kLong);
  int64_t* out = predicted.data_ptr<int64_t>();
  vote(p, classes, options, [&](int64_t first, int64_t n, const double* scores) {
    for (int64_t i = 0; i < n; ++i) out[first + i] = best_class(scores + i * classes, classes);
  });
  return predicted;
}

}  // namespace contra::eval
