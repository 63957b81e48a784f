// contra embed: one vector per item of a dataset (safetensors; resumable).
// contra index build / info: a FAISS index (flat, IVF, HNSW) over an embeddings file.
// contra search: nearest items of an item id, an audio/image file or (CLIP) a text.
// docs/search.md describes the file layouts and the measured speed/recall.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/runtime.h"
#include "contra/embed/embed.h"
#include "contra/embed/encoder.h"
#include "contra/index/vector_index.h"

namespace contra::cli {
namespace fs = std::filesystem;

namespace {

struct EmbedCliOptions {
  embed::EmbedOptions o;
  bool json = false;
  bool no_progress = false;
};

int run_embed(const EmbedCliOptions& c) {
  embed::EmbedOptions o = c.o;
  o.progress = !c.no_progress;
  embed::EmbedSummary s = embed::embed_dataset(o);
  if (c.json) {
    nlohmann::json j = {{"out", s.out},
                        {"items", s.items},
                        {"count", s.count},
                        {"dim", s.dim},
                        {"chunks", s.chunks},
                        {"chunks_reused", s.chunks_reused},
                        {"already_complete", s.already_complete},
                        {"stopped", s.stopped},
                        {"seconds", s.seconds}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (s.already_complete) {
    std::printf(
        "%s is already complete (%lld vectors of dimension %lld); give --overwrite to "
        "embed again\n",
        s.out.c_str(), static_cast<long long>(s.count), static_cast<long long>(s.dim));
    return 0;
  }
  if (s.stopped) {
    std::printf(
        "stopped after the requested chunks; %s.partial holds the finished chunks (rerun "
        "the same command to continue)\n",
        s.out.c_str());
    return 0;
  }
  std::printf("embeddings   %s\n", s.out.c_str());
  std::printf("items        %lld (%lld vectors of dimension %lld)\n",
              static_cast<long long>(s.items), static_cast<long long>(s.count),
              static_cast<long long>(s.dim));
  if (s.chunks_reused > 0)
    std::printf("resumed      after %lld of %lld chunks\n", static_cast<long long>(s.chunks_reused),
                static_cast<long long>(s.chunks));
  std::printf("time         %.1f s\n", s.seconds);
  return 0;
}

struct IndexBuildCliOptions {
  std::string embeddings, out;
  index::IndexOptions o;
  std::int64_t threads = 0;
  bool json = false;
};

nlohmann::json meta_json(const index::VectorIndex& ix) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : ix.meta()) j[k] = v;
  return j;
}

int run_index_build(const IndexBuildCliOptions& c) {
  if (c.threads > 0) set_threads(static_cast<int>(c.threads));
  index::VectorIndex ix = index::VectorIndex::build(c.embeddings, c.o);
  ix.save(c.out);
  if (c.json) {
    std::printf("%s\n", nlohmann::json({{"out", c.out}, {"meta", meta_json(ix)}}).dump(2).c_str());
    return 0;
  }
  std::printf("index        %s (%s, %s)\n", c.out.c_str(), ix.type().c_str(), ix.metric().c_str());
  std::printf("vectors      %lld of dimension %lld\n", static_cast<long long>(ix.size()),
              static_cast<long long>(ix.dim()));
  for (const char* k :
       {"nlist", "nprobe", "train_size", "hnsw_m", "ef_construction", "ef_search"}) {
    auto it = ix.meta().find(k);
    if (it != ix.meta().end()) std::printf("%-12s %s\n", k, it->second.c_str());
  }
  std::printf("build time   %.2f s\n", ix.build_seconds());
  return 0;
}

struct IndexInfoCliOptions {
  std::string dir;
  bool json = false;
};

int run_index_info(const IndexInfoCliOptions& c) {
  index::VectorIndex ix = index::VectorIndex::load(c.dir);
  if (c.json) {
    std::printf("%s\n", meta_json(ix).dump(2).c_str());
    return 0;
  }
  for (const auto& [k, v] : ix.meta()) std::printf("%-16s %s\n", k.c_str(), v.c_str());
  return 0;
}

struct IndexEvalCliOptions {
  std::string dir;
  std::int64_t k = 10, queries = 0, nprobe = 0, ef_search = 0;
  bool json = false;
};

// Leave-one-out neighbour quality: every (or every n/queries-th) labelled item searches k + 1
// neighbours; its own hit is dropped and the others' labels are compared with its label.
int run_index_eval(const IndexEvalCliOptions& c) {
  check<UsageError>(c.k >= 1, "index eval: -k must be >= 1 (got {})", c.k);
  index::VectorIndex ix = index::VectorIndex::load(c.dir);
  ix.set_search_params(c.nprobe, c.ef_search);
  const std::int64_t n = ix.size();
  const std::int64_t q = c.queries > 0 ? std::min(c.queries, n) : n;
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < q; ++i) rows.push_back(i * n / q);
  std::int64_t self_first = 0, labelled = 0, same = 0, compared = 0;
  const std::int64_t batch = 1024;
  for (std::size_t b = 0; b < rows.size(); b += batch) {
    const std::size_t e = std::min(rows.size(), b + static_cast<std::size_t>(batch));
    std::vector<torch::Tensor> qs;
    for (std::size_t i = b; i < e; ++i) qs.push_back(ix.vector_of(ix.id_at(rows[i])));
    auto hits = ix.search(torch::stack(qs), c.k + 1);
    for (std::size_t i = b; i < e; ++i) {
      const auto& h = hits[i - b];
      const std::int64_t row = rows[i];
      if (!h.empty() && h[0].row == row) ++self_first;
      const std::int64_t label = ix.label_at(row);
      if (label < 0) continue;
      ++labelled;
      std::int64_t taken = 0;
      for (const auto& hit : h) {
        if (hit.row == row || taken == c.k) continue;
        ++taken;
        ++compared;
        same += hit.label == label ? 1 : 0;
      }
    }
  }
  const double self_rate = static_cast<double>(self_first) / static_cast<double>(q);
  const double precision =
      compared > 0 ? static_cast<double>(same) / static_cast<double>(compared) : -1;
  if (c.json) {
    nlohmann::json j = {
        {"index", c.dir},          {"queries", q},         {"k", c.k},
        {"self_first", self_rate}, {"labelled", labelled}, {"label_precision", precision}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("index            %s (%s, %s, %lld items)\n", c.dir.c_str(), ix.type().c_str(),
              ix.metric().c_str(), static_cast<long long>(n));
  std::printf("queries          %lld (items of the index, leave-one-out)\n",
              static_cast<long long>(q));
  std::printf("itself first     %.2f%%\n", 100 * self_rate);
  if (precision >= 0)
    std::printf("label precision  %.2f%% of the %lld nearest others share the label\n",
                100 * precision, static_cast<long long>(c.k));
  else
    std::printf("label precision  - (no labelled items)\n");
  return 0;
}

struct SearchCliOptions {
  std::string index, query, text, checkpoint, device = "cpu";
  std::int64_t k = 10, nprobe = 0, ef_search = 0;
  bool json = false;
};

int run_search(const SearchCliOptions& c) {
  if (c.query.empty() == c.text.empty())
    throw UsageError("search: give exactly one of --query ITEM_ID_OR_FILE and --text TEXT");
  check<UsageError>(c.k >= 1, "search: -k must be >= 1 (got {})", c.k);
  index::VectorIndex ix = index::VectorIndex::load(c.index);
  ix.set_search_params(c.nprobe, c.ef_search);
  std::string kind;
  torch::Tensor q;
  auto open_encoder = [&]() {
    const std::string checkpoint = c.checkpoint.empty() ? ix.checkpoint() : c.checkpoint;
    if (checkpoint.empty()) {
      throw UsageError(
          fmt::format("search: the index '{}' records no checkpoint to encode the query with; give "
                      "--checkpoint",
                      c.index));
    }
    auto enc = embed::QueryEncoder::open(checkpoint, ix.features(), parse_device(c.device));
    check<DataError>(enc->dim() == ix.dim(),
                     "search: the checkpoint '{}' encodes vectors of dimension {}, the index '{}' "
                     "holds dimension {}",
                     checkpoint, enc->dim(), c.index, ix.dim());
    return enc;
  };
  if (!c.text.empty()) {
    kind = "text";
    q = open_encoder()->encode_text(c.text);
  } else if (fs::is_regular_file(c.query)) {
    kind = "file";
    q = open_encoder()->encode_file(c.query);
  } else {
    kind = "item";
    q = ix.vector_of(c.query);
  }
  auto hits = ix.search(q.unsqueeze(0), c.k)[0];
  const char* score_name = ix.metric() == "cosine" ? "cosine" : "sq_l2";
  if (c.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& h : hits)
      rows.push_back({{"id", h.id}, {"label", h.label}, {"score", h.score}, {"row", h.row}});
    nlohmann::json j = {{"query", c.text.empty() ? c.query : c.text},
                        {"query_kind", kind},
                        {"index", c.index},
                        {"metric", ix.metric()},
                        {"score", score_name},
                        {"hits", rows}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("query: %s (%s); %s index of %lld, metric %s\n",
              (c.text.empty() ? c.query : "\"" + c.text + "\"").c_str(), kind.c_str(),
              ix.type().c_str(), static_cast<long long>(ix.size()), ix.metric().c_str());
  std::printf("%4s  %9s  %6s  %s\n", "rank", score_name, "label", "id");
  int rank = 1;
  for (const auto& h : hits)
    std::printf("%4d  %9.4f  %6lld  %s\n", rank++, h.score, static_cast<long long>(h.label),
                h.id.c_str());
  return 0;
}

}  // namespace

void register_search(CLI::App& app) {
  auto e = std::make_shared<EmbedCliOptions>();
  auto* embed = app.add_subcommand(
      "embed",
      "one vector per item of a dataset (images, utterances or frames, captions) → a "
      "safetensors file with ids and labels; resumable (docs/search.md)");
  embed->add_option("--checkpoint", e->o.checkpoint, "run directory or checkpoint file")
      ->required();
  embed->add_option("--data", e->o.data,
                    "items: mnist:DIR[:train|test], cifar10:DIR[:train|test], images:DIR, "
                    "speech:ROOT[:train|test|all|SPLITFILE], audio:DIR, captions:FILE, "
                    "recipe[:train|test], or a path (default: the recipe's test split)");
  embed->add_option("--out", e->o.out, "output file (.safetensors)")->required();
  embed->add_option("--features", e->o.features,
                    "representation (default: the recipe's probe.features; CLIP: embedding)");
  embed->add_flag("--frames", e->o.frames,
                  "speech: one vector per frame (ids utt#t, phone labels) instead of the "
                  "utterance mean");
  embed->add_option("--batch-size", e->o.batch_size, "items per forward pass")
      ->capture_default_str();
  embed->add_option("--chunk-size", e->o.chunk_size, "items per resumable chunk (0 = 16 batches)")
      ->capture_default_str();
  embed->add_option("--device", e->o.device, "cpu | cuda[:N]")->capture_default_str();
  embed->add_option("--threads", e->o.threads, "CPU threads (0 = default)");
  embed->add_flag("--overwrite", e->o.overwrite, "replace a complete output file");
  embed->add_flag("--restart", e->o.restart,
                  "discard an unfinished OUT.partial made with other arguments");
  embed
      ->add_option("--stop-after-chunks", e->o.stop_after_chunks,
                   "stop after this many new chunks (testing resumption)")
      ->group("");
  embed->add_flag("--no-progress", e->no_progress, "no progress bar");
  embed->add_flag("--json", e->json, "print the summary as JSON");
  embed->callback([e] { set_runner([e] { return run_embed(*e); }); });

  auto* index = app.add_subcommand("index", "nearest-neighbour indexes over embeddings");
  index->require_subcommand(1);
  auto b = std::make_shared<IndexBuildCliOptions>();
  auto* build = index->add_subcommand("build", "build a flat / IVF / HNSW index folder");
  build->add_option("--embeddings", b->embeddings, "a complete `contra embed` output")->required();
  build->add_option("--type", b->o.type, "flat (exact) | ivf | hnsw")
      ->capture_default_str()
      ->check(CLI::IsMember({"flat", "ivf", "hnsw"}));
  build->add_option("--metric", b->o.metric, "cosine | l2")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "l2"}));
  build->add_option("--out", b->out, "index folder (replaced atomically)")->required();
  build->add_option("--nlist", b->o.nlist, "ivf: lists (0 = 4·√N, at most N/39)");
  build->add_option("--nprobe", b->o.nprobe,
                    "ivf: lists searched (0 = max(8, nlist/32, 4096·nlist/N))");
  build->add_option("--train-size", b->o.train_size, "ivf: k-means sample (0 = 64·nlist)");
  build->add_option("--hnsw-m", b->o.hnsw_m, "hnsw: graph degree M")->capture_default_str();
  build->add_option("--ef-construction", b->o.ef_construction, "hnsw: build beam")
      ->capture_default_str();
  build->add_option("--ef-search", b->o.ef_search, "hnsw: search beam")->capture_default_str();
  build->add_option("--seed", b->o.seed, "ivf: sample and k-means seed")->capture_default_str();
  build->add_option("--threads", b->threads, "CPU threads (0 = default)");
  build->add_flag("--json", b->json, "print the index description as JSON");
  build->callback([b] { set_runner([b] { return run_index_build(*b); }); });

  auto i = std::make_shared<IndexInfoCliOptions>();
  auto* info = index->add_subcommand("info", "what an index folder holds (meta.json)");
  info->add_option("dir", i->dir, "index folder")->required();
  info->add_flag("--json", i->json, "print as JSON");
  info->callback([i] { set_runner([i] { return run_index_info(*i); }); });

  auto ev = std::make_shared<IndexEvalCliOptions>();
  auto* eval = index->add_subcommand(
      "eval",
      "leave-one-out neighbour quality: label precision@k and how often an item finds itself");
  eval->add_option("dir", ev->dir, "index folder")->required();
  eval->add_option("-k", ev->k, "neighbours")->capture_default_str();
  eval->add_option("--queries", ev->queries, "items used as queries, evenly spaced (0 = all)");
  eval->add_option("--nprobe", ev->nprobe, "ivf: lists searched (0 = the index's)");
  eval->add_option("--ef-search", ev->ef_search, "hnsw: search beam (0 = the index's)");
  eval->add_flag("--json", ev->json, "print as JSON");
  eval->callback([ev] { set_runner([ev] { return run_index_eval(*ev); }); });

  auto s = std::make_shared<SearchCliOptions>();
  auto* search = app.add_subcommand(
      "search",
      "nearest items in an index: of an item id, of an audio/image file (encoded with the "
      "index's checkpoint) or of a text (CLIP)");
  search->add_option("--index", s->index, "index folder (contra index build)")->required();
  search->add_option("--query", s->query,
                     "an item id of the index, or an audio/image file to encode");
  search->add_option("--text", s->text, "CLIP: a text query, encoded by the text encoder");
  search->add_option("-k", s->k, "hits")->capture_default_str();
  search->add_option("--checkpoint", s->checkpoint,
                     "encode file/text queries with this checkpoint instead of the index's");
  search->add_option("--nprobe", s->nprobe, "ivf: lists searched (0 = the index's)");
  search->add_option("--ef-search", s->ef_search, "hnsw: search beam (0 = the index's)");
  search->add_option("--device", s->device, "cpu | cuda[:N]")->capture_default_str();
  search->add_flag("--json", s->json, "print the hits as JSON");
  search->callback([s] { set_runner([s] { return run_search(*s); }); });
}

}  // namespace contra::cli
