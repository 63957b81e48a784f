#include "contra/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error \
    "contra/io/safetensors.cpp writes the host's bytes as they are: it needs a little-endian host"
#endif

namespace contra::io {
namespace {

using Json = nlohmann::ordered_json;

// Longest header read (the reference implementation's limit is 100 MB too).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeName {
  torch::Dtype dtype;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kFloat64, "F64"},   {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"},
    {torch::kBFloat16, "BF16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
    {torch::kInt16, "I16"},     {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
    {torch::kBool, "BOOL"},
};

std::string supported_names() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

const char* dtype_name(torch::Dtype dtype, const std::string& path, const std::string& tensor) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  throw ConfigError(
      fmt::format("safetensors '{}': tensor '{}' has unsupported dtype {} (expected one of {})",
                  path, tensor, c10::toString(dtype), supported_names()));
}

// Parsed and validated header: entries in the header's order with their byte ranges.
struct ParsedHeader {
  struct Item {
    std::string name;
    torch::Dtype dtype;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
  };
  std::vector<Item> items;
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + header length
};

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw DataError(fmt::format("safetensors '{}': {}", path, what));
}

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::ifstream open_input(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError(fmt::format("reading '{}': {}", path,
                              path_exists(path) ? "cannot open file" : "no such file"));
  }
  return in;
}

// Reads the length prefix and the JSON header of `in` and validates them against `file_bytes`.
ParsedHeader read_header(std::ifstream& in, const std::string& path, std::uint64_t file_bytes) {
  if (file_bytes < 8) {
    bad(path, fmt::format("file too short ({} bytes; expected at least the 8-byte header length)",
                          file_bytes));
  }
  unsigned char prefix[8];
  if (!in.read(reinterpret_cast<char*>(prefix), 8)) bad(path, "cannot read the header length");
  std::uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderBytes) {
    bad(path, fmt::format("header length {} bytes exceeds the limit of {} bytes (corrupt file?)", n,
                          kMaxHeaderBytes));
  }
  if (n > file_bytes - 8) {
    bad(path, fmt::format("header length {} bytes is beyond the end of the file ({} bytes)", n,
                          file_bytes));
  }
  std::string text(n, '\0');
  if (n > 0 && !in.read(text.data(), static_cast<std::streamsize>(n))) {
    bad(path, "cannot read the header");
  }
  if (text.empty() || text.front() != '{') bad(path, "header is not a JSON object");

  Json json;
  try {
    json = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad(path, fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!json.is_object()) bad(path, "header is not a JSON object");

  ParsedHeader out;
  out.data_start = 8 + n;
  const std::uint64_t buffer_bytes = file_bytes - out.data_start;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, "\"__metadata__\" is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          bad(path, fmt::format("\"__metadata__\" value of '{}' is not a string", m.key()));
        }
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&](const std::string& what) {
      bad(path, fmt::format("tensor '{}': {}", name, what));
    };
    if (!v.is_object()) where("entry is not an object");
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        where(fmt::format("unknown key '{}' (expected dtype, shape, data_offsets)", f.key()));
      }
    }
    if (!v.contains("dtype") || !v["dtype"].is_string()) where("missing string \"dtype\"");
    if (!v.contains("shape") || !v["shape"].is_array()) where("missing array \"shape\"");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      where("missing \"data_offsets\" [begin, end]");
    }
    ParsedHeader::Item item;
    item.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    bool known = false;
    for (const auto& d : kDtypes) {
      if (dt == d.name) {
        item.dtype = d.dtype;
        known = true;
      }
    }
    if (!known)
      where(fmt::format("unknown dtype '{}' (expected one of {})", dt, supported_names()));
    const std::uint64_t itemsize = c10::elementSize(item.dtype);
    // numel * itemsize with overflow checks (a corrupt shape must not wrap around).
    std::uint64_t bytes = itemsize;
    for (const Json& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0)) {
        where(fmt::format("shape entry {} is not a non-negative integer", d.dump()));
      }
      std::uint64_t dim = d.get<std::uint64_t>();
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        where(fmt::format("shape entry {} is too large", dim));
      }
      if (dim != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / dim) {
        where("shape is too large (size overflows)");
      }
      bytes *= dim;
      item.shape.push_back(static_cast<std::int64_t>(dim));
    }
    for (const Json& o : v["data_offsets"]) {
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<std::int64_t>() >= 0)) {
        where(fmt::format("data_offsets entry {} is not a non-negative integer", o.dump()));
      }
    }
    item.begin = v["data_offsets"][0].get<std::uint64_t>();
    item.end = v["data_offsets"][1].get<std::uint64_t>();
    if (item.end < item.begin) {
      where(fmt::format("data_offsets [{}, {}] end before begin", item.begin, item.end));
    }
    if (item.end - item.begin != bytes) {
      where(fmt::format("data_offsets [{}, {}] span {} bytes, but shape [{}] of {} needs {} bytes",
                        item.begin, item.end, item.end - item.begin, fmt::join(item.shape, ", "),
                        dt, bytes));
    }
    if (item.end > buffer_bytes) {
      where(fmt::format("data_offsets [{}, {}] out of range (the data buffer has {} bytes)",
                        item.begin, item.end, buffer_bytes));
    }
    out.items.push_back(std::move(item));
  }

  // The ranges must tile the buffer exactly: no overlap, no hole, nothing after the last tensor.
  std::vector<const ParsedHeader::Item*> order;
  for (const auto& item : out.items) order.push_back(&item);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t pos = 0;
  std::string previous;
  for (const auto* item : order) {
    if (item->begin < pos) {
      bad(path, fmt::format("tensor '{}' (bytes [{}, {}]) overlaps tensor '{}' (ends at {})",
                            item->name, item->begin, item->end, previous, pos));
    }
    if (item->begin > pos) {
      bad(path, fmt::format("hole in the data buffer: bytes [{}, {}) belong to no tensor", pos,
                            item->begin));
    }
    pos = item->end;
    previous = item->name;
  }
  if (pos != buffer_bytes) {
    bad(path, fmt::format("the data buffer has {} bytes but the tensors cover only {}",
                          buffer_bytes, pos));
  }
  return out;
}

}  // namespace

const torch::Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back(entry.first);
  throw DataError(
      fmt::format("safetensors: no tensor '{}' (the file has: {})", name,
                  names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& entry) { return entry.first == name; });
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  std::set<std::string> seen;
  std::vector<torch::Tensor> data;
  Json header = Json::object();
  if (!file.metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (name == "__metadata__") {
      throw ConfigError(
          fmt::format("safetensors '{}': '__metadata__' is reserved, not a tensor name", path));
    }
    if (!seen.insert(name).second) {
      throw ConfigError(fmt::format("safetensors '{}': duplicate tensor name '{}'", path, name));
    }
    if (!tensor.defined()) {
      throw ConfigError(fmt::format("safetensors '{}': tensor '{}' is undefined", path, name));
    }
    const char* dt = dtype_name(tensor.scalar_type(), path, name);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    Json entry = Json::object();
    entry["dtype"] = dt;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) {
    prefix[i] = static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff);
  }
  AtomicFile out(path);
  out.write(prefix);
  out.write(text);
  for (const auto& t : data) {
    const std::size_t bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
    if (bytes == 0) continue;
    out.write(std::string_view(static_cast<const char*>(t.data_ptr()), bytes));
  }
  out.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::uint64_t size = file_size(path);
  std::ifstream in = open_input(path);
  ParsedHeader header = read_header(in, path, size);
  SafetensorsFile out;
  out.metadata = std::move(header.metadata);
  for (const auto& item : header.items) {
    torch::Tensor t = torch::empty(item.shape, torch::TensorOptions().dtype(item.dtype));
    const std::uint64_t bytes = item.end - item.begin;
    if (bytes > 0) {
      in.seekg(static_cast<std::streamoff>(header.data_start + item.begin));
      if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes))) {
        bad(path, fmt::format("tensor '{}': cannot read {} bytes at offset {}", item.name, bytes,
                              header.data_start + item.begin));
      }
    }
    if (item.dtype == torch::kBool && bytes > 0) {
      // Any byte other than 0/1 would be an invalid bool in LibTorch.
      const auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
      if (std::any_of(p, p + bytes, [](std::uint8_t b) { return b > 1; })) {
        bad(path, fmt::format("tensor '{}': BOOL data holds bytes other than 0 and 1", item.name));
      }
    }
    out.tensors.emplace_back(item.name, std::move(t));
  }
  return out;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  const std::uint64_t size = file_size(path);
  std::ifstream in = open_input(path);
  ParsedHeader header = read_header(in, path, size);
  SafetensorsHeader out;
  out.metadata = std::move(header.metadata);
  for (auto& item : header.items)
    out.entries.push_back({item.name, item.dtype, std::move(item.shape)});
  return out;
}

}  // namespace contra::io
