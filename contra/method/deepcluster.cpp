#include "contra/method/deepcluster.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/logging.h"
#include "contra/data/sentences.h"
#include "contra/dist/collectives.h"

namespace contra::method {

void DeepClusterConfig::validate() const {
  encoder.validate();
  projection.validate();
  check<ConfigError>(clusters >= 2, "clusters: must be >= 2, got {}", clusters);
  check<ConfigError>(pca_dim >= 0, "pca_dim: must be >= 0 (0 = no PCA), got {}", pca_dim);
  check<ConfigError>(pca_dim <= projection.out,
                     "pca_dim: {} is more than the {} features (projection.out) it reduces",
                     pca_dim, projection.out);
  check<ConfigError>(kmeans_iterations >= 1, "kmeans_iterations: must be >= 1, got {}",
                     kmeans_iterations);
  check<ConfigError>(reassign_every >= 0, "reassign_every: must be >= 0 (0 = one epoch), got {}",
                     reassign_every);
  check<ConfigError>(feature_batch >= 1, "feature_batch: must be >= 1, got {}", feature_batch);
  check<ConfigError>(online_probe_classes == 0 || online_probe_classes >= 2,
                     "online_probe_classes: must be 0 (off) or >= 2, got {}", online_probe_classes);
}

namespace {

// Nearest centroid of each point (FAISS exact L2 search): assignments (n) int64, squared distances.
std::pair<torch::Tensor, torch::Tensor> nearest(const torch::Tensor& x,
                                                const torch::Tensor& centroids) {
  const int64_t n = x.size(0), d = x.size(1);
  faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(d));
  index.add(centroids.size(0), centroids.data_ptr<float>());
  torch::Tensor dist = torch::empty({n}, torch::kFloat);
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(n));
  index.search(n, x.data_ptr<float>(), 1, dist.data_ptr<float>(), labels.data());
  torch::Tensor a = torch::empty({n}, torch::kLong);
  std::copy(labels.begin(), labels.end(), a.data_ptr<int64_t>());
  return {a, dist};
}

}  // namespace

// ε keeps directions without variance (dead ReLUs) finite instead of dividing by 0 — with FAISS's
// PCAMatrix they become inf and k-means fails.
torch::Tensor pca_whiten(const torch::Tensor& x, int64_t d) {
  torch::Tensor xd = x.to(torch::kDouble);
  torch::Tensor centred = xd - xd.mean(0, /*keepdim=*/true);
  torch::Tensor cov =
      centred.t().mm(centred) / static_cast<double>(std::max<int64_t>(1, x.size(0) - 1));
  auto [values, vectors] = torch::linalg::eigh(cov, "L");  // ascending
  torch::Tensor top_values = values.flip(0).narrow(0, 0, d).clamp_min(0);
  torch::Tensor top_vectors = vectors.flip(1).narrow(1, 0, d);
  const double eps = 1e-8 * std::max(values.max().item<double>(), 1e-30);
  return (centred.mm(top_vectors) / (top_values + eps).sqrt()).to(torch::kFloat).contiguous();
}

int64_t fill_empty_clusters(const torch::Tensor& x, torch::Tensor& centroids,
                            torch::Tensor& assignments, uint64_t seed) {
  const int64_t k = centroids.size(0), d = centroids.size(1);
  std::mt19937_64 rng(seed);
  int64_t splits = 0;
  // Cluster sizes as plain numbers (k may be 10,000: no per-element tensor reads).
  auto sizes = [&] {
    torch::Tensor c = torch::bincount(assignments, {}, k).contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + k);
  };
  for (int round = 0; round < 1000; ++round) {
    std::vector<int64_t> counts = sizes();
    std::vector<int64_t> empty;
    for (int64_t j = 0; j < k; ++j) {
      if (counts[static_cast<size_t>(j)] == 0) empty.push_back(j);
    }
    if (empty.empty()) return splits;
    for (int64_t j : empty) {
      // A random donor among the clusters that can be split, weighted by size (as FAISS).
      std::vector<double> weights(static_cast<size_t>(k));
      bool any = false;
      for (size_t m = 0; m < weights.size(); ++m) {
        weights[m] = counts[m] > 1 ? static_cast<double>(counts[m] - 1) : 0.0;
        any = any || weights[m] > 0;
      }
      if (!any) break;
      std::discrete_distribution<int64_t> pick(weights.begin(), weights.end());
      const int64_t m = pick(rng);
      // ±δ around the donor's centroid: a random direction, 1/1024 of its norm (FAISS's EPS).
      std::normal_distribution<float> normal;
      std::vector<float> direction(static_cast<size_t>(d));
      for (auto& v : direction) v = normal(rng);
      torch::Tensor delta = torch::tensor(direction, torch::kFloat);
      const double scale = std::max(centroids[m].norm().item<double>(), 1e-3) / 1024.0;
      delta.mul_(scale / std::max(delta.norm().item<double>(), 1e-12));
      torch::Tensor c = centroids[m].clone();
      centroids[j].copy_(c + delta);
      centroids[m].copy_(c - delta);
      // The donor's points go to the nearer of the two.
      torch::Tensor members = assignments.eq(m).nonzero().squeeze(1);
      torch::Tensor pts = x.index_select(0, members);
      torch::Tensor to_j =
          (pts - centroids[j]).pow(2).sum(1).lt((pts - centroids[m]).pow(2).sum(1));
      assignments.index_put_({members.masked_select(to_j)}, j);
      const int64_t moved = to_j.sum().item<int64_t>();
      counts[static_cast<size_t>(j)] += moved;
      counts[static_cast<size_t>(m)] -= moved;
      ++splits;
    }
    // Every point to its nearest centroid (the split may have moved others' nearest too).
    assignments = nearest(x, centroids).first;
  }
  torch::Tensor counts = torch::bincount(assignments, {}, k);
  throw NumericalError(
      fmt::format("deepcluster: k-means leaves {} of {} clusters empty (the {} points have fewer "
                  "distinct values than clusters); lower method.clusters",
                  counts.eq(0).sum().item<int64_t>(), k, x.size(0)));
}

KMeansResult kmeans(const torch::Tensor& points, int64_t k, int64_t iterations, uint64_t seed) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) > 0, "kmeans: points must be (n, d), got ",
              points.sizes());
  check<ConfigError>(points.size(0) >= k,
                     "method.clusters: k-means of {} points into {} clusters (needs >= k points)",
                     points.size(0), k);
  torch::Tensor x = points.to(torch::kFloat).contiguous();
  const int64_t n = x.size(0), d = x.size(1);
  faiss::ClusteringParameters cp;
  cp.niter = static_cast<int>(iterations);
  cp.seed = static_cast<int>(seed & 0x7fffffff);
  cp.verbose = false;
  cp.min_points_per_centroid = 1;
  cp.max_points_per_centroid = 10000000;  // no subsampling (the official setting)
  faiss::Clustering clustering(static_cast<int>(d), static_cast<int>(k), cp);
  faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(d));
  clustering.train(n, x.data_ptr<float>(), index);
  KMeansResult r;
  r.centroids = torch::from_blob(clustering.centroids.data(), {k, d}, torch::kFloat).clone();
  r.assignments = nearest(x, r.centroids).first;
  r.splits = fill_empty_clusters(x, r.centroids, r.assignments, seed ^ 0x5eed5eedULL);
  auto [a, dist] = nearest(x, r.centroids);
  r.assignments = a;
  r.objective = dist.to(torch::kDouble).sum().item<double>();
  return r;
}

double normalized_mutual_information(const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(a.dim() == 1 && a.sizes() == b.sizes() && a.numel() > 0,
              "normalized_mutual_information: two labelings of the same items");
  torch::Tensor x = a.to(torch::kLong).contiguous(), y = b.to(torch::kLong).contiguous();
  const int64_t n = x.numel();
  const int64_t* px = x.data_ptr<int64_t>();
  const int64_t* py = y.data_ptr<int64_t>();
  std::map<int64_t, double> ca, cb;
  std::map<std::pair<int64_t, int64_t>, double> joint;
  for (int64_t i = 0; i < n; ++i) {
    ca[px[i]] += 1;
    cb[py[i]] += 1;
    joint[{px[i], py[i]}] += 1;
  }
  const double nn = static_cast<double>(n);
  auto entropy = [&](const std::map<int64_t, double>& c) {
    double h = 0;
    for (const auto& [label, count] : c) h -= count / nn * std::log(count / nn);
    return h;
  };
  double mi = 0;
  for (const auto& [key, count] : joint) {
    mi += count / nn * std::log(count * nn / (ca[key.first] * cb[key.second]));
  }
  const double ha = entropy(ca), hb = entropy(cb);
  if (ha == 0 && hb == 0) return 1.0;  // both a single cluster: the same partition
  if (ha == 0 || hb == 0) return 0.0;
  return std::clamp(mi / std::sqrt(ha * hb), 0.0, 1.0);
}

DeepCluster::DeepCluster(DeepClusterConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t d = config_.encoder.output_size();
  encoder = nn::make_image_encoder(config_.encoder);
  register_module("encoder", encoder.ptr());
  projector = register_module("projector", nn::ProjectionHead(config_.projection.options(d)));
  top = register_module("top", torch::nn::Linear(config_.projection.out, config_.clusters));
  if (config_.online_probe_classes > 0) {
    probe = register_module("probe", OnlineProbe(d, config_.online_probe_classes));
  }
  assignments = register_buffer("assignments", torch::zeros({0}, torch::kLong));
  centroids = register_buffer("centroids", torch::zeros({0}));
  assigned_phase = register_buffer("assigned_phase", torch::full({}, -1, torch::kLong));
}

void DeepCluster::check_batch(int64_t batch_size, int64_t views) const {
  check<ConfigError>(
      views == 1, "augment.views: DeepCluster trains on 1 augmented view per image, got {}", views);
  check<ConfigError>(batch_size >= 2,
                     "train.batch_size: DeepCluster needs >= 2 images (BatchNorm), got {}",
                     batch_size);
}

void DeepCluster::set_training_set(int64_t size, ImagesFn images, torch::Tensor labels,
                                   uint64_t seed) {
  check<ConfigError>(size >= config_.clusters,
                     "method.clusters: {} clusters for a training set of {} images",
                     config_.clusters, size);
  size_ = size;
  images_ = std::move(images);
  labels_ = std::move(labels);
  seed_ = seed;
}

int64_t DeepCluster::phase_steps(int64_t global_batch) const {
  check<ConfigError>(global_batch > 0, "deepcluster: the global batch must be > 0");
  if (config_.reassign_every > 0) return config_.reassign_every;
  check<ConfigError>(size_ > 0, "deepcluster: set_training_set first");
  return (size_ + global_batch - 1) / global_batch;
}

torch::Tensor DeepCluster::training_features() {
  check<ConfigError>(size_ > 0 && images_, "deepcluster: set_training_set first");
  dist::Group& group = dist::world();
  const int64_t ranks = group.size(), share = (size_ + ranks - 1) / ranks;
  const int64_t begin = std::min(size_, group.rank() * share), end = std::min(size_, begin + share);
  const bool was_training = is_training();
  eval();
  torch::NoGradGuard no_grad;
  auto device = projector->parameters().front().device();
  auto dtype = projector->parameters().front().scalar_type();
  torch::Tensor mine =
      torch::zeros({share, config_.projection.out}, torch::TensorOptions().dtype(dtype));
  for (int64_t i = begin; i < end; i += config_.feature_batch) {
    const int64_t j = std::min(end, i + config_.feature_batch);
    torch::Tensor x = images_(i, j).to(device, dtype);
    mine.narrow(0, i - begin, j - i).copy_(features(x, "projection").cpu());
  }
  train(was_training);
  if (ranks == 1) return mine.narrow(0, 0, size_).to(torch::kFloat);
  // Every rank's share, padded to the same size, in rank order.
  torch::Tensor all = dist::concat_all_gather(mine.to(group.device())).cpu();
  return all.narrow(0, 0, size_).to(torch::kFloat);
}

void DeepCluster::recluster(int64_t phase) {
  torch::Tensor feats = training_features();
  dist::Group& group = dist::world();
  const int64_t k = config_.clusters;
  const int64_t d = config_.pca_dim > 0 ? config_.pca_dim : feats.size(1);
  torch::Tensor labels = torch::empty({size_}, torch::kLong);
  torch::Tensor cents = torch::empty({k, d}, torch::kFloat);
  torch::Tensor stats = torch::zeros({2}, torch::kDouble);
  if (group.is_main()) {
    torch::Tensor x = feats.contiguous();
    if (config_.pca_dim > 0) x = pca_whiten(x, d);
    x = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1))
            .contiguous();
    KMeansResult r = kmeans(x, k, config_.kmeans_iterations,
                            data::mix_seed(seed_, static_cast<uint64_t>(phase), 0xdc));
    labels = r.assignments;
    cents = r.centroids;
    stats[0] = r.objective / static_cast<double>(size_);
    stats[1] = static_cast<double>(r.splits);
  }
  if (group.size() > 1) {
    torch::Tensor l = labels.to(group.device()), c = cents.to(group.device()),
                  s = stats.to(group.device());
    group.broadcast_(l, 0);
    group.broadcast_(c, 0);
    group.broadcast_(s, 0);
    labels = l.cpu();
    cents = c.cpu();
    stats = s.cpu();
  }
  cluster_metrics_.clear();
  if (assignments.numel() == size_) {
    cluster_metrics_["nmi_prev"] = normalized_mutual_information(assignments.cpu(), labels);
  }
  if (labels_.defined() && labels_.numel() == size_ && labels_.min().item<int64_t>() >= 0) {
    cluster_metrics_["nmi_labels"] = normalized_mutual_information(labels_, labels);
  }
  cluster_metrics_["kmeans_loss"] = stats[0].item<double>();
  cluster_metrics_["empty_splits"] = stats[1].item<double>();
  torch::NoGradGuard no_grad;
  assignments.set_(labels.to(assignments.device(), assignments.scalar_type()));
  centroids.set_(cents.to(centroids.device(), centroids.scalar_type()));
  assigned_phase.fill_(phase);
  std::string line =
      fmt::format("deepcluster: phase {} k-means of {} images into {} clusters", phase, size_, k);
  for (const auto& [key, v] : cluster_metrics_) line += fmt::format(", {} {:.4f}", key, v);
  if (group.is_main()) log().info("{}", line);
}

std::vector<torch::Tensor> DeepCluster::begin_phase(int64_t phase) {
  std::vector<torch::Tensor> reset;
  if (assigned_phase.item<int64_t>() != phase || assignments.numel() != size_) {
    recluster(phase);
    torch::NoGradGuard no_grad;
    // A fresh top layer for the new pseudo-classes (the official code's N(0, 0.01), bias 0),
    // drawn from a generator of (seed, phase) so that every rank draws the same.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        data::mix_seed(seed_, static_cast<uint64_t>(phase), 0x70b));
    top->weight.copy_(torch::randn(top->weight.sizes(), gen, torch::kDouble).mul_(0.01));
    top->bias.zero_();
    reset = {top->weight, top->bias};
  }
  // The phase's order: uniform over the non-empty clusters (UnifLabelSampler).
  // (Module::to(dtype) converts integer buffers too: read them as int64.)
  torch::Tensor labels = assignments.cpu().to(torch::kLong).contiguous();
  const int64_t k = config_.clusters;
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(k));
  const int64_t* pl = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < size_; ++i) members[static_cast<size_t>(pl[i])].push_back(i);
  int64_t nonempty = 0;
  for (const auto& m : members) nonempty += m.empty() ? 0 : 1;
  const int64_t per_cluster = size_ / nonempty + 1;
  std::mt19937_64 rng(data::mix_seed(seed_, static_cast<uint64_t>(phase), 0x5a3));
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(per_cluster * nonempty));
  for (auto& m : members) {
    if (m.empty()) continue;
    if (static_cast<int64_t>(m.size()) >= per_cluster) {
      std::shuffle(m.begin(), m.end(), rng);
      order.insert(order.end(), m.begin(), m.begin() + per_cluster);
    } else {
      std::uniform_int_distribution<size_t> pick(0, m.size() - 1);
      for (int64_t i = 0; i < per_cluster; ++i) order.push_back(m[pick(rng)]);
    }
  }
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<size_t>(size_));
  order_ = torch::tensor(order, torch::kLong);
  return reset;
}

torch::Tensor DeepCluster::phase_items(int64_t first, int64_t count) const {
  check<ConfigError>(order_.defined(), "deepcluster: begin_phase first");
  return order_.index_select(0, (torch::arange(count, torch::kLong) + first) % size_);
}

StepOutput DeepCluster::step(const Batch& batch) {
  check<DataError>(batch.input.defined() && batch.index.defined(),
                   "deepcluster: the batch must carry images and their dataset index");
  check<DataError>(assignments.numel() > 0,
                   "deepcluster: no pseudo-labels yet (begin_phase runs the clustering)");
  torch::Tensor h = encoder.forward(batch.input);
  torch::Tensor f = torch::relu(projector->forward(h));
  torch::Tensor logits = top->forward(f);
  torch::Tensor target = assignments.index_select(0, batch.index.to(assignments.device()))
                             .to(logits.device(), torch::kLong);
  StepOutput out;
  out.loss = torch::nn::functional::cross_entropy(logits, target);
  out.metrics = cluster_metrics_;
  out.metrics["dc_loss"] = out.loss.item<double>();
  out.metrics["pseudo_acc"] = logits.argmax(1).eq(target).to(torch::kDouble).mean().item<double>();
  if (probe) out.loss = out.loss + probe->forward(h, batch.labels, out.metrics);
  return out;
}

torch::Tensor DeepCluster::features(const torch::Tensor& input, const std::string& kind) {
  if (kind == "encoder") return encoder.forward(input);
  if (kind == "projection") return torch::relu(projector->forward(encoder.forward(input)));
  throw ConfigError(
      "features: deepcluster has 'encoder' (the representation) and 'projection', got '" + kind +
      "'");
}

}  // namespace contra::method
