#include "contra/index/vector_index.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <unordered_map>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/index_io.h>
#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/version.h"
#include "contra/embed/embed.h"
#include "contra/io/safetensors.h"

namespace contra::index {
namespace fs = std::filesystem;

void IndexOptions::validate() const {
  check<ConfigError>(type == "flat" || type == "ivf" || type == "hnsw",
                     "index: type must be flat, ivf or hnsw (got '{}')", type);
  check<ConfigError>(metric == "cosine" || metric == "l2",
                     "index: metric must be cosine or l2 (got '{}')", metric);
  check<ConfigError>(nlist >= 0, "index: nlist must be >= 0 (0 = auto) (got {})", nlist);
  check<ConfigError>(nprobe >= 0, "index: nprobe must be >= 0 (0 = auto) (got {})", nprobe);
  check<ConfigError>(train_size >= 0, "index: train_size must be >= 0 (0 = auto) (got {})",
                     train_size);
  check<ConfigError>(hnsw_m >= 2 && hnsw_m <= 256, "index: hnsw_m must be in [2, 256] (got {})",
                     hnsw_m);
  check<ConfigError>(ef_construction >= 1, "index: ef_construction must be >= 1 (got {})",
                     ef_construction);
  check<ConfigError>(ef_search >= 1, "index: ef_search must be >= 1 (got {})", ef_search);
}

struct IndexState {
  std::unique_ptr<faiss::Index> index;
  torch::Tensor vectors;  // (N, D) float32 as embedded
  torch::Tensor labels;   // (N) int64
  std::vector<std::string> ids;
  std::unordered_map<std::string, std::int64_t> rows;
  std::map<std::string, std::string> meta;
  std::string type, metric, checkpoint, features, modality;
  std::int64_t dim = 0, nprobe = 0, ef_search = 0;
  double build_seconds = 0;

  void index_ids() {
    rows.clear();
    rows.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check<DataError>(rows.emplace(ids[i], static_cast<std::int64_t>(i)).second,
                       "index: duplicate item id '{}'", ids[i]);
    }
  }
  void copy_fields() {
    auto get = [&](const char* k) {
      auto it = meta.find(k);
      return it == meta.end() ? std::string() : it->second;
    };
    type = get("type");
    metric = get("metric");
    checkpoint = get("checkpoint");
    features = get("features");
    modality = get("modality");
  }
};

namespace {

std::string shape_of(const torch::Tensor& t) {
  return t.defined() ? c10::str(t.sizes()) : std::string("undefined");
}

// CPU float32 contiguous copy; L2-normalised rows for cosine (zero rows stay zero).
torch::Tensor prepared(const torch::Tensor& x, const std::string& metric) {
  torch::Tensor y = x.detach().to(torch::kCPU, torch::kFloat).contiguous();
  if (metric == "cosine") y = (y / y.norm(2, 1, true).clamp_min(1e-12)).contiguous();
  return y;
}

faiss::MetricType faiss_metric(const std::string& metric) {
  return metric == "cosine" ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
}

std::int64_t auto_nlist(std::int64_t n) {
  auto nlist = static_cast<std::int64_t>(std::llround(4.0 * std::sqrt(static_cast<double>(n))));
  nlist = std::min<std::int64_t>(nlist, std::max<std::int64_t>(1, n / 39));
  return std::clamp<std::int64_t>(nlist, 1, 65536);
}

// Lists a query scans by default: 1/32 of them, at least 8, and at least enough lists to hold
// ~4096 vectors (small sets have few points a list, and their neighbours spread over many).
std::int64_t auto_nprobe(std::int64_t nlist, std::int64_t n) {
  const std::int64_t cover = (4096 * nlist + n - 1) / n;
  return std::max<std::int64_t>({8, nlist / 32, cover});
}

const char* kMetaFile = "meta.json";
const char* kIndexFile = "index.faiss";
const char* kVectorsFile = "vectors.safetensors";

bool is_numeric_key(const std::string& k) {
  static const std::set<std::string> keys = {"dim",        "count",  "nlist",           "nprobe",
                                             "train_size", "hnsw_m", "ef_construction", "ef_search",
                                             "seed"};
  return keys.count(k) > 0;
}

}  // namespace

VectorIndex::VectorIndex() : state_(std::make_shared<IndexState>()) {}
VectorIndex::VectorIndex(std::shared_ptr<IndexState> state) : state_(std::move(state)) {}

VectorIndex VectorIndex::build(const std::string& embeddings_path, const IndexOptions& options) {
  options.validate();
  embed::Embeddings e = embed::read_embeddings(embeddings_path);
  std::map<std::string, std::string> meta = e.meta;
  meta.erase("complete");
  meta.erase("count");
  meta.erase("dim");
  meta.erase("format");
  meta["embeddings"] = fs::absolute(embeddings_path).lexically_normal().string();
  return build(e.vectors, e.labels, std::move(e.ids), options, meta);
}

VectorIndex VectorIndex::build(const torch::Tensor& vectors, const torch::Tensor& labels_in,
                               std::vector<std::string> ids, const IndexOptions& o,
                               const std::map<std::string, std::string>& extra) {
  o.validate();
  const auto start = std::chrono::steady_clock::now();
  check<DataError>(
      vectors.defined() && vectors.dim() == 2 && vectors.size(0) > 0 && vectors.size(1) > 0,
      "index: vectors must be a non-empty (N, D) tensor (got {})", shape_of(vectors));
  check<DataError>(vectors.is_floating_point(), "index: vectors must be floating point (got {})",
                   c10::toString(vectors.scalar_type()));
  const std::int64_t n = vectors.size(0), d = vectors.size(1);
  auto s = std::make_shared<IndexState>();
  s->vectors = vectors.detach().to(torch::kCPU, torch::kFloat).contiguous();
  check<DataError>(torch::isfinite(s->vectors).all().item<bool>(),
                   "index: the vectors contain NaN or Inf");
  if (labels_in.defined()) {
    check<DataError>(labels_in.numel() == n, "index: {} labels for {} vectors", labels_in.numel(),
                     n);
    s->labels = labels_in.to(torch::kCPU, torch::kLong).reshape({n}).contiguous();
  } else {
    s->labels = torch::full({n}, -1, torch::kLong);
  }
  if (ids.empty()) {
    ids.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) ids.push_back(std::to_string(i));
  }
  check<DataError>(static_cast<std::int64_t>(ids.size()) == n, "index: {} ids for {} vectors",
                   ids.size(), n);
  s->ids = std::move(ids);
  s->index_ids();
  s->dim = d;
  torch::Tensor x = prepared(s->vectors, o.metric);
  const float* xp = x.data_ptr<float>();
  const faiss::MetricType metric = faiss_metric(o.metric);
  std::map<std::string, std::string> params = {{"type", o.type}, {"metric", o.metric}};
  try {
    if (o.type == "flat") {
      s->index = std::make_unique<faiss::IndexFlat>(static_cast<faiss::Index::idx_t>(d), metric);
      s->index->add(n, xp);
    } else if (o.type == "ivf") {
      const std::int64_t nlist = o.nlist > 0 ? o.nlist : auto_nlist(n);
      check<ConfigError>(nlist <= n, "index: nlist {} exceeds the {} vectors", nlist, n);
      const std::int64_t nprobe = std::min(nlist, o.nprobe > 0 ? o.nprobe : auto_nprobe(nlist, n));
      const std::int64_t train =
          std::min(n, o.train_size > 0 ? std::max(o.train_size, nlist) : 64 * nlist);
      auto quantizer = new faiss::IndexFlat(static_cast<faiss::Index::idx_t>(d), metric);
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer, d, nlist, metric);
      ivf->own_fields = true;
      ivf->cp.seed = static_cast<int>(o.seed);
      if (train < n) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(o.seed));
        auto pick =
            torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong)).narrow(0, 0, train);
        auto sample = x.index_select(0, pick).contiguous();
        ivf->train(train, sample.data_ptr<float>());
      } else {
        ivf->train(n, xp);
      }
      ivf->add(n, xp);
      ivf->nprobe = static_cast<std::size_t>(nprobe);
      s->nprobe = nprobe;
      params["nlist"] = std::to_string(nlist);
      params["nprobe"] = std::to_string(nprobe);
      params["train_size"] = std::to_string(train);
      params["seed"] = std::to_string(o.seed);
      s->index = std::move(ivf);
    } else {
      auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(d),
                                                         static_cast<int>(o.hnsw_m), metric);
      hnsw->hnsw.efConstruction = static_cast<int>(o.ef_construction);
      hnsw->hnsw.efSearch = static_cast<int>(o.ef_search);
      hnsw->add(n, xp);
      s->ef_search = o.ef_search;
      params["hnsw_m"] = std::to_string(o.hnsw_m);
      params["ef_construction"] = std::to_string(o.ef_construction);
      params["ef_search"] = std::to_string(o.ef_search);
      s->index = std::move(hnsw);
    }
  } catch (const faiss::FaissException& e) {
    throw DataError(fmt::format("index: FAISS failed to build the {} index: {}", o.type, e.what()));
  }
  s->meta = extra;
  for (const auto& [k, v] : params) s->meta[k] = v;
  s->meta["dim"] = std::to_string(d);
  s->meta["count"] = std::to_string(n);
  s->meta["contra_version"] = CONTRA_VERSION;
  s->build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s->meta["build_seconds"] = fmt::format("{:.3f}", s->build_seconds);
  s->copy_fields();
  return VectorIndex(s);
}

void VectorIndex::save(const std::string& dir) const {
  const IndexState& s = *state_;
  check<DataError>(s.index != nullptr, "index: nothing to save (empty index)");
  const std::string staged = temp_sibling(fs::path(dir).lexically_normal().string());
  make_dirs(staged);
  try {
    try {
      faiss::write_index(s.index.get(), (staged + "/" + kIndexFile).c_str());
    } catch (const faiss::FaissException& e) {
      throw IoError(fmt::format("index: cannot write '{}/{}': {}", staged, kIndexFile, e.what()));
    }
    io::SafetensorsFile f;
    f.tensors.emplace_back("embeddings", s.vectors);
    f.tensors.emplace_back("labels", s.labels);
    f.tensors.emplace_back("ids", embed::pack_ids(s.ids));
    f.metadata["count"] = std::to_string(s.ids.size());
    io::write_safetensors(staged + "/" + kVectorsFile, f);
    nlohmann::json j = nlohmann::json::object();
    j["format"] = "contra-index-1";
    for (const auto& [k, v] : s.meta) {
      if (is_numeric_key(k)) {
        j[k] = std::stoll(v);
      } else if (k == "build_seconds") {
        j[k] = std::stod(v);
      } else {
        j[k] = v;
      }
    }
    write_file_atomic(staged + "/" + kMetaFile, j.dump(2) + "\n");
    fsync_dir(staged);
    replace_directory(staged, dir, "index save");
  } catch (...) {
    remove_all(staged);
    throw;
  }
}

VectorIndex VectorIndex::load(const std::string& dir) {
  check<DataError>(fs::is_directory(dir), "index: '{}' is not an index folder (no such folder)",
                   dir);
  auto s = std::make_shared<IndexState>();
  const std::string meta_path = dir + "/" + kMetaFile;
  check<DataError>(path_exists(meta_path), "index: '{}' is missing (not a contra index folder?)",
                   meta_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(meta_path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("index: '{}' is not valid JSON ({})", meta_path, e.what()));
  }
  check<DataError>(j.is_object() && j.value("format", "") == "contra-index-1",
                   "index: '{}' is not a contra index description (format != contra-index-1)",
                   meta_path);
  for (const char* key : {"type", "metric", "dim", "count"}) {
    check<DataError>(j.contains(key), "index: '{}' lacks the key '{}'", meta_path, key);
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "format") continue;
    s->meta[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  }
  s->copy_fields();
  std::int64_t count = 0;
  try {
    s->dim = std::stoll(s->meta.at("dim"));
    count = std::stoll(s->meta.at("count"));
    if (s->meta.count("nprobe")) s->nprobe = std::stoll(s->meta.at("nprobe"));
    if (s->meta.count("ef_search")) s->ef_search = std::stoll(s->meta.at("ef_search"));
  } catch (const std::exception&) {
    throw DataError(
        fmt::format("index: '{}': dim/count/nprobe/ef_search must be integers", meta_path));
  }
  check<DataError>((s->type == "flat" || s->type == "ivf" || s->type == "hnsw") &&
                       (s->metric == "cosine" || s->metric == "l2") && s->dim > 0 && count > 0,
                   "index: '{}': bad type/metric/dim/count ('{}', '{}', {}, {})", meta_path,
                   s->type, s->metric, s->dim, count);
  const std::string index_path = dir + "/" + kIndexFile;
  check<DataError>(path_exists(index_path), "index: '{}' is missing", index_path);
  try {
    s->index.reset(faiss::read_index(index_path.c_str()));
  } catch (const std::exception& e) {
    throw DataError(fmt::format("index: '{}' is corrupt or truncated ({})", index_path, e.what()));
  }
  check<DataError>(s->index != nullptr, "index: '{}' could not be read", index_path);
  bool kind_ok = s->type == "flat"  ? dynamic_cast<faiss::IndexFlat*>(s->index.get()) != nullptr
                 : s->type == "ivf" ? dynamic_cast<faiss::IndexIVFFlat*>(s->index.get()) != nullptr
                                    : dynamic_cast<faiss::IndexHNSW*>(s->index.get()) != nullptr;
  check<DataError>(kind_ok, "index: '{}' does not hold a {} index (as '{}' says)", index_path,
                   s->type, meta_path);
  check<DataError>(s->index->d == s->dim && s->index->ntotal == count,
                   "index: '{}' holds {} vectors of dimension {}, but '{}' says {} of {}",
                   index_path, s->index->ntotal, s->index->d, meta_path, count, s->dim);
  check<DataError>(s->index->metric_type == faiss_metric(s->metric),
                   "index: '{}' uses another metric than '{}' says ({})", index_path, meta_path,
                   s->metric);
  const std::string vectors_path = dir + "/" + kVectorsFile;
  check<DataError>(path_exists(vectors_path), "index: '{}' is missing", vectors_path);
  io::SafetensorsFile f = io::read_safetensors(vectors_path);
  s->vectors = f.at("embeddings");
  s->labels = f.at("labels");
  check<DataError>(s->vectors.dim() == 2 && s->vectors.size(0) == count &&
                       s->vectors.size(1) == s->dim && s->vectors.scalar_type() == torch::kFloat,
                   "index: '{}': embeddings {} {} do not match '{}' ({} × {} float32)",
                   vectors_path, c10::toString(s->vectors.scalar_type()), shape_of(s->vectors),
                   meta_path, count, s->dim);
  check<DataError>(
      s->labels.dim() == 1 && s->labels.size(0) == count && s->labels.scalar_type() == torch::kLong,
      "index: '{}': labels {} must be int64 ({})", vectors_path, shape_of(s->labels), count);
  s->ids = embed::unpack_ids(f.at("ids"), count, vectors_path);
  try {
    s->index_ids();
  } catch (const Error&) {
    rethrow_with_context(vectors_path);
  }
  return VectorIndex(s);
}

std::int64_t VectorIndex::size() const { return static_cast<std::int64_t>(state_->ids.size()); }
std::int64_t VectorIndex::dim() const { return state_->dim; }
const std::string& VectorIndex::metric() const { return state_->metric; }
const std::string& VectorIndex::type() const { return state_->type; }
const std::string& VectorIndex::checkpoint() const { return state_->checkpoint; }
const std::string& VectorIndex::features() const { return state_->features; }
const std::string& VectorIndex::modality() const { return state_->modality; }
const std::map<std::string, std::string>& VectorIndex::meta() const { return state_->meta; }
double VectorIndex::build_seconds() const { return state_->build_seconds; }

void VectorIndex::set_search_params(std::int64_t nprobe, std::int64_t ef_search) {
  check<ConfigError>(nprobe >= 0 && ef_search >= 0,
                     "index: nprobe and ef_search must be >= 0 (got {}, {})", nprobe, ef_search);
  if (nprobe > 0) state_->nprobe = nprobe;
  if (ef_search > 0) {
    state_->ef_search = ef_search;
    // FAISS 1.7.3 sizes the HNSW candidate queue from the index's own efSearch, so a per-call
    // SearchParametersHNSW can lower the beam but not widen it: keep the stored value in step.
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(state_->index.get()))
      hnsw->hnsw.efSearch = static_cast<int>(ef_search);
  }
}

std::pair<torch::Tensor, torch::Tensor> VectorIndex::search_rows(const torch::Tensor& queries,
                                                                 std::int64_t k) const {
  const IndexState& s = *state_;
  check<DataError>(s.index != nullptr, "index: search on an empty index");
  check<ConfigError>(k >= 1, "index: k must be >= 1 (got {})", k);
  check<DataError>(queries.defined() && (queries.dim() == 2 || queries.dim() == 1),
                   "index: queries must be (Q, D) (got {})", shape_of(queries));
  torch::Tensor q2 = queries.dim() == 1 ? queries.unsqueeze(0) : queries;
  check<DataError>(q2.size(1) == s.dim,
                   "index: query dimension {} does not match the index dimension {}", q2.size(1),
                   s.dim);
  check<DataError>(q2.is_floating_point(), "index: queries must be floating point (got {})",
                   c10::toString(q2.scalar_type()));
  torch::Tensor q = prepared(q2, s.metric);
  check<DataError>(torch::isfinite(q).all().item<bool>(), "index: the queries contain NaN or Inf");
  const std::int64_t nq = q.size(0);
  const std::int64_t kk = std::min<std::int64_t>(k, s.index->ntotal);
  torch::Tensor scores = torch::empty({nq, kk}, torch::kFloat);
  torch::Tensor rows = torch::empty({nq, kk}, torch::kLong);
  static_assert(sizeof(faiss::Index::idx_t) == sizeof(std::int64_t));
  auto* labels = reinterpret_cast<faiss::Index::idx_t*>(rows.data_ptr<std::int64_t>());
  try {
    if (s.type == "ivf") {
      faiss::SearchParametersIVF p;
      p.nprobe = static_cast<std::size_t>(s.nprobe);
      s.index->search(nq, q.data_ptr<float>(), kk, scores.data_ptr<float>(), labels, &p);
    } else if (s.type == "hnsw") {
      faiss::SearchParametersHNSW p;
      p.efSearch = static_cast<int>(std::max(s.ef_search, kk));
      s.index->search(nq, q.data_ptr<float>(), kk, scores.data_ptr<float>(), labels, &p);
    } else {
      s.index->search(nq, q.data_ptr<float>(), kk, scores.data_ptr<float>(), labels);
    }
  } catch (const faiss::FaissException& e) {
    throw DataError(fmt::format("index: FAISS search failed: {}", e.what()));
  }
  return {scores, rows};
}

std::vector<std::vector<Hit>> VectorIndex::search(const torch::Tensor& queries,
                                                  std::int64_t k) const {
  auto [scores, rows] = search_rows(queries, k);
  const IndexState& s = *state_;
  std::vector<std::vector<Hit>> out(static_cast<std::size_t>(rows.size(0)));
  auto sa = scores.accessor<float, 2>();
  auto ra = rows.accessor<std::int64_t, 2>();
  auto la = s.labels.accessor<std::int64_t, 1>();
  for (std::int64_t i = 0; i < rows.size(0); ++i) {
    for (std::int64_t j = 0; j < rows.size(1); ++j) {
      const std::int64_t r = ra[i][j];
      if (r < 0) continue;
      out[static_cast<std::size_t>(i)].push_back(
          {s.ids[static_cast<std::size_t>(r)], la[r], sa[i][j], r});
    }
  }
  return out;
}

std::int64_t VectorIndex::row_of(const std::string& id) const {
  auto it = state_->rows.find(id);
  return it == state_->rows.end() ? -1 : it->second;
}

torch::Tensor VectorIndex::vector_of(const std::string& id) const {
  const std::int64_t r = row_of(id);
  if (r < 0) {
    const auto& ids = state_->ids;
    throw DataError(fmt::format("index: unknown item id '{}' (the index holds {} items, e.g. '{}')",
                                id, ids.size(), ids.empty() ? "" : ids.front()));
  }
  return state_->vectors[r].clone();
}

const std::string& VectorIndex::id_at(std::int64_t row) const {
  check<DataError>(row >= 0 && row < size(), "index: row {} out of range [0, {})", row, size());
  return state_->ids[static_cast<std::size_t>(row)];
}

std::int64_t VectorIndex::label_at(std::int64_t row) const {
  check<DataError>(row >= 0 && row < size(), "index: row {} out of range [0, {})", row, size());
  return state_->labels[row].item<std::int64_t>();
}

}  // namespace contra::index
