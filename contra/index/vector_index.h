#pragma once
/// Nearest-neighbour indexes over embedding files (contra embed → contra index build → contra
/// search). Backed by FAISS (flat = exact, IVF-flat, HNSW-flat); see docs/search.md for the
/// directory layout and the measured speed/recall of each type.
///
///   VectorIndex ix = VectorIndex::build("emb.safetensors", IndexOptions{});   // flat, cosine
///   ix.save("runs/byol_mnist/index");
///   VectorIndex ix2 = VectorIndex::load("runs/byol_mnist/index");
///   auto hits = ix2.search(ix2.vector_of("test/00042").unsqueeze(0), 10);
///
/// Scores: metric "cosine" → cosine similarity (vectors L2-normalised, inner product; higher is
/// better); metric "l2" → squared Euclidean distance (lower is better). Hits are best first.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::index {

struct IndexOptions {
  std::string type = "flat";      // flat | ivf | hnsw
  std::string metric = "cosine";  // cosine | l2
  // ivf: nlist 0 = auto: 4·√N rounded, clamped to [1, N/39] (FAISS wants ≥ 39 training points a
  // list) and to at most 65536; nprobe 0 = auto: min(nlist, max(8, nlist/32, ⌈4096·nlist/N⌉))
  // (≥ 8 lists, ≥ 1/32 of them, ≥ ~4096 vectors scanned; search-time, stored in the index,
  // overridable with set_search_params / contra search --nprobe).
  std::int64_t nlist = 0;
  std::int64_t nprobe = 0;
  // ivf: k-means training sample, chosen with `seed` (0 = auto: min(N, 64·nlist)).
  std::int64_t train_size = 0;
  // hnsw: graph degree M, build beam efConstruction, search beam efSearch (stored, overridable).
  std::int64_t hnsw_m = 32;
  std::int64_t ef_construction = 40;
  std::int64_t ef_search = 128;
  std::int64_t seed = 1;
  /// Throws ConfigError naming the option for an unknown type/metric or an out-of-range value.
  void validate() const;
};

struct Hit {
  std::string id;
  std::int64_t label;  // -1 = none
  float score;         // cosine similarity (cosine) or squared L2 distance (l2)
  std::int64_t row;    // row in the embeddings file
};

struct IndexState;  // faiss index, ids, labels, vectors, meta (vector_index.cpp)

class VectorIndex {
 public:
  /// Reads an embeddings file (contra embed's layout, docs/search.md) and builds the index.
  /// DataError naming the file when it is missing, incomplete (metadata complete != "true") or
  /// malformed; ConfigError for bad options.
  static VectorIndex build(const std::string& embeddings_path, const IndexOptions& options);
  /// The same from tensors: vectors (N, D) float, labels (N) int64 (undefined = all -1), ids (N
  /// unique; empty = "0", "1", ...), `meta` extra metadata kept in meta.json (checkpoint, features,
  /// modality, ...).
  static VectorIndex build(const torch::Tensor& vectors, const torch::Tensor& labels,
                           std::vector<std::string> ids, const IndexOptions& options,
                           const std::map<std::string, std::string>& meta = {});

  /// Writes the directory: meta.json, index.faiss, vectors.safetensors (vectors, labels, ids).
  /// The whole directory is staged then moved into place (contra::replace_directory).
  void save(const std::string& dir) const;
  /// DataError naming the file for a corrupt/missing part.
  static VectorIndex load(const std::string& dir);

  std::int64_t size() const;
  std::int64_t dim() const;
  const std::string& metric() const;
  const std::string& type() const;
  /// Recorded from the embeddings file ("" when none).
  const std::string& checkpoint() const;
  const std::string& features() const;
  const std::string& modality() const;
  /// Every meta.json entry (type, metric, dim, count, build params, checkpoint, ...), as strings.
  const std::map<std::string, std::string>& meta() const;
  /// Seconds build() took (0 for a loaded index).
  double build_seconds() const;

  /// Search-time knobs: ivf nprobe, hnsw efSearch (0 = keep). Not thread-safe against search().
  void set_search_params(std::int64_t nprobe, std::int64_t ef_search);

  /// queries (Q,D) float → Q lists of min(k, size()) hits, best first (score: cosine similarity
  /// or squared L2 distance). Safe to call from several threads at once. DataError when D !=
  /// dim() (naming both); ConfigError when k < 1.
  std::vector<std::vector<Hit>> search(const torch::Tensor& queries, std::int64_t k) const;
  /// Raw result: (Q, k) scores and (Q, k) int64 rows (-1 where fewer than k were found).
  std::pair<torch::Tensor, torch::Tensor> search_rows(const torch::Tensor& queries,
                                                      std::int64_t k) const;

  /// The stored vector of an item id (D), as embedded (not normalised); DataError naming the id
  /// when unknown.
  torch::Tensor vector_of(const std::string& id) const;
  /// Row of an id, or -1 when unknown.
  std::int64_t row_of(const std::string& id) const;
  const std::string& id_at(std::int64_t row) const;
  std::int64_t label_at(std::int64_t row) const;

  VectorIndex();
  explicit VectorIndex(std::shared_ptr<IndexState> state);

 private:
  std::shared_ptr<IndexState> state_;
};

}  // namespace contra::index
