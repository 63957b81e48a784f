#pragma once
/// `contra embed`: one vector per item of a dataset, written to a safetensors file (layout in
/// docs/search.md):
///   "embeddings" float32 (N, D), "labels" int64 (N) (-1 = none), "ids" uint8 (bytes) = the N item
///   ids joined by '\n' (ids never contain '\n'); metadata: checkpoint, method, features,
///   modality, pooling, data, count, dim, step, contra_version and complete = "true".
///
/// Large inputs are embedded in chunks written to OUT.partial/ (manifest.json + one
/// chunk-NNNNNN.safetensors per chunk); rerunning the same command continues after the last
/// complete chunk. OUT itself appears (atomically) only when every chunk is done.
///
///   EmbedOptions o;
///   o.checkpoint = "runs/byol_mnist"; o.data = "mnist:data/mnist:test"; o.out = "emb.safetensors";
///   EmbedSummary s = embed_dataset(o);
///   Embeddings e = read_embeddings("emb.safetensors");
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::embed {

struct EncoderState;

struct EmbedOptions {
  std::string checkpoint;  // run directory or checkpoint file
  /// Items to embed ("" = the recipe's test split). Syntax (docs/search.md):
  ///   mnist:DIR[:train|test]  cifar10:DIR[:train|test]  images:DIR  speech:ROOT[:SPLIT]
  ///   audio:DIR  captions:FILE  captions:mnist[:train|test]  recipe[:train|test]  or a plain
  ///   path (detected: MNIST/CIFAR folder → test split, LibriSpeech layout, a folder of images or
  ///   audio files, a .txt/.tsv caption file).
  std::string data;
  std::string out;
  std::string features;  // "" = the method's default representation
  std::string device = "cpu";
  bool frames = false;                 // audio: one vector per frame ("utt#t"), phone labels
  std::int64_t batch_size = 256;       // items per forward pass (speech: utterances per chunk step)
  std::int64_t chunk_size = 0;         // items per resumable chunk (0 = 16 batches)
  bool overwrite = false;              // replace a complete OUT
  bool restart = false;                // discard an OUT.partial made with other arguments
  std::int64_t stop_after_chunks = 0;  // testing: stop (as if interrupted) after this many chunks
  bool progress = true;
  /// Threads for the forward passes (0 = keep).
  std::int64_t threads = 0;
};

struct EmbedSummary {
  std::string out;
  std::int64_t items = 0;  // input items (utterances, images, captions)
  std::int64_t count = 0;  // rows written (frames with --frames)
  std::int64_t dim = 0;
  std::int64_t chunks = 0, chunks_reused = 0;
  bool already_complete = false;  // OUT existed and was complete: nothing done
  bool stopped = false;           // stop_after_chunks reached: OUT not written
  double seconds = 0;
};

/// Embeds a dataset. Errors: DataError (missing/corrupt checkpoint, unreadable data, a partial
/// folder of other arguments without `restart`), UsageError (bad data spec, OUT complete without
/// `overwrite` is reported through already_complete instead), ConfigError (bad options).
EmbedSummary embed_dataset(const EmbedOptions& options);

/// An embeddings file in memory.
struct Embeddings {
  torch::Tensor vectors;  // float32 (N, D)
  torch::Tensor labels;   // int64 (N)
  std::vector<std::string> ids;
  std::map<std::string, std::string> meta;
};

/// Writes the layout above (meta gets count, dim and complete = "true"), atomically.
void write_embeddings(const std::string& path, const Embeddings& e);
/// Reads and checks a complete embeddings file: DataError naming the file when it is missing,
/// marked incomplete (or a partial folder), or its tensors disagree (shapes, id count, duplicate
/// ids).
Embeddings read_embeddings(const std::string& path);

/// '\n'-joined ids ↔ uint8 tensor.
torch::Tensor pack_ids(const std::vector<std::string>& ids);
std::vector<std::string> unpack_ids(const torch::Tensor& bytes, std::int64_t expected,
                                    const std::string& file);

}  // namespace contra::embed
