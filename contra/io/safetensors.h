#pragma once
/// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
/// "__metadata__": {string: string}}), then the tensors' little-endian bytes, contiguous and in
/// offset order. contra writes encoder exports and embedding files in this format, so PyTorch
/// (`safetensors.torch.load_file`, or a few lines of Python) reads them without contra.
///
///   SafetensorsFile f;
///   f.tensors.emplace_back("encoder.conv0.weight", w);
///   f.metadata["format"] = "pt";
///   write_safetensors("encoder.safetensors", f);            // atomic: temp file, fsync, rename
///   SafetensorsFile g = read_safetensors("encoder.safetensors");
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace contra::io {

struct SafetensorsFile {
  /// Tensors in file order (names unique). Written from CPU copies, contiguous, in their own dtype
  /// (float64/32/16, bfloat16, int64/32/16/8, uint8, bool).
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  /// The header's "__metadata__" (string values only, as the format requires).
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`; DataError naming `name` and the file's tensors when absent.
  const torch::Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
};

/// Writes `file` to `path` atomically (IoError when the disk is full or the folder missing; an
/// existing file at `path` stays intact then). ConfigError for duplicate names or an unsupported
/// dtype.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

/// Reads a whole file. DataError naming the file and what is wrong: too short, header length beyond
/// the file, invalid JSON, unknown dtype, shape/offset mismatch, overlapping or out-of-range
/// offsets.
SafetensorsFile read_safetensors(const std::string& path);

/// Only the header: tensor names with dtype/shape, and the metadata (no tensor bytes are read).
struct SafetensorsHeader {
  struct Entry {
    std::string name;
    torch::Dtype dtype;
    std::vector<std::int64_t> shape;
  };
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};
SafetensorsHeader read_safetensors_header(const std::string& path);

}  // namespace contra::io
