// The embedding service's request logic (no HTTP here: contra/serve/http_server.cpp carries it).
#include "contra/serve/service.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/version.h"
#include "contra/embed/encoder.h"
#include "contra/index/vector_index.h"

namespace contra::serve {
namespace {

using nlohmann::json;

// An answer the client caused (status 4xx/5xx with a message).
struct HttpError {
  int status;
  std::string message;
};

Response json_response(int status, const json& j) { return {status, j.dump()}; }

Response error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", message}});
}

bool is_json(const std::string& content_type) {
  return content_type.rfind("application/json", 0) == 0;
}

json parse_body(const std::string& body) {
  if (body.empty()) throw HttpError{400, "empty body: expected a JSON object"};
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw HttpError{400, fmt::format("malformed JSON: {}", e.what())};
  }
  if (!j.is_object()) throw HttpError{400, "expected a JSON object"};
  return j;
}

// The one query field present in `j` among `allowed`; 400 when none or several.
std::string query_kind(const json& j, const std::vector<std::string>& allowed,
                       const std::vector<std::string>& also_allowed) {
  std::string kind;
  for (const auto& [key, value] : j.items()) {
    bool query = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
    bool other = std::find(also_allowed.begin(), also_allowed.end(), key) != also_allowed.end();
    if (!query && !other) {
      throw HttpError{400, fmt::format("unknown field \"{}\" (expected one of {}{}{})", key,
                                       fmt::join(allowed, ", "), also_allowed.empty() ? "" : "; ",
                                       fmt::join(also_allowed, ", "))};
    }
    if (query) {
      if (!kind.empty()) {
        throw HttpError{400, fmt::format("give one query, not both \"{}\" and \"{}\"", kind, key)};
      }
      kind = key;
    }
  }
  if (kind.empty()) {
    throw HttpError{400, fmt::format("no query: give one of {}", fmt::join(allowed, ", "))};
  }
  return kind;
}

std::string string_field(const json& j, const std::string& key) {
  if (!j.at(key).is_string()) throw HttpError{400, fmt::format("\"{}\" must be a string", key)};
  return j.at(key).get<std::string>();
}

// A JSON array of numbers of length `dim` -> (dim) float.
torch::Tensor vector_field(const json& v, const std::string& what, std::int64_t dim) {
  if (!v.is_array()) throw HttpError{400, fmt::format("{} must be an array of numbers", what)};
  if (static_cast<std::int64_t>(v.size()) != dim) {
    throw HttpError{400, fmt::format("{} has {} values; the index holds {}-dimensional vectors",
                                     what, v.size(), dim)};
  }
  std::vector<float> values;
  values.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number()) throw HttpError{400, fmt::format("{}[{}] is not a number", what, i)};
    const double x = v[i].get<double>();
    if (!std::isfinite(x)) throw HttpError{400, fmt::format("{}[{}] is not finite", what, i)};
    values.push_back(static_cast<float>(x));
  }
  return torch::tensor(values, torch::kFloat);
}

json vector_json(const torch::Tensor& v) {
  torch::Tensor c = v.to(torch::kFloat).contiguous().cpu();
  const float* p = c.data_ptr<float>();
  return json(std::vector<float>(p, p + c.numel()));
}

json hits_json(const std::vector<index::Hit>& hits) {
  json out = json::array();
  for (const auto& h : hits) {
    json row = {{"id", h.id}, {"score", h.score}, {"row", h.row}};
    row["label"] = h.label >= 0 ? json(h.label) : json(nullptr);
    out.push_back(std::move(row));
  }
  return out;
}

// Runs `f`, turning contra's errors into answers: the user's fault is a 4xx, an unavailable
// feature 501, anything else a 500 — the server itself keeps running.
template <class F>
Response guarded(F&& f) {
  try {
    return f();
  } catch (const HttpError& e) {
    return error_response(e.status, e.message);
  } catch (const DataError& e) {
    return error_response(400, e.what());
  } catch (const ConfigError& e) {
    return error_response(400, e.what());
  } catch (const UsageError& e) {
    return error_response(400, e.what());
  } catch (const UnavailableError& e) {
    return error_response(501, e.what());
  } catch (const c10::Error& e) {
    return error_response(500, std::string("internal error: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return error_response(500, std::string("internal error: ") + e.what());
  }
}

}  // namespace

void ServeOptions::validate() const {
  check<ConfigError>(port >= 0 && port <= 65535, "serve: --port must be in 0..65535 (got {})",
                     port);
  check<ConfigError>(!host.empty(), "serve: --host must not be empty");
  check<ConfigError>(max_body_bytes >= 1024,
                     "serve: the body limit must be at least 1024 bytes (got {})", max_body_bytes);
  check<ConfigError>(threads >= 1 && threads <= 256, "serve: --threads must be in 1..256 (got {})",
                     threads);
  check<ConfigError>(max_k >= 1, "serve: max_k must be >= 1 (got {})", max_k);
  check<ConfigError>(default_k >= 1 && default_k <= max_k,
                     "serve: default k must be in 1..{} (got {})", max_k, default_k);
  check<ConfigError>(max_batch >= 1, "serve: max_batch must be >= 1 (got {})", max_batch);
}

Service::Service(std::shared_ptr<const index::VectorIndex> index,
                 std::shared_ptr<const embed::QueryEncoder> encoder, ServeOptions options)
    : index_(std::move(index)), encoder_(std::move(encoder)), options_(std::move(options)) {
  check<Error>(index_ != nullptr, "serve: no index");
  options_.validate();
  if (encoder_) {
    check<DataError>(encoder_->dim() == index_->dim(),
                     "serve: the encoder makes {}-dimensional vectors but the index holds {}",
                     encoder_->dim(), index_->dim());
  }
}

Response Service::handle(const Request& request) const {
  return guarded([&]() -> Response {
    auto only = [&](const char* method) {
      if (request.method != method) {
        throw HttpError{405,
                        fmt::format("{} takes {}, not {}", request.path, method, request.method)};
      }
    };
    if (request.path == "/health") {
      only("GET");
      return health();
    }
    if (request.path == "/embed") {
      only("POST");
      return embed(request);
    }
    if (request.path == "/search") {
      only("POST");
      return search(request);
    }
    throw HttpError{404, fmt::format("no route {} (routes: GET /health, POST /embed, POST /search)",
                                     request.path)};
  });
}

Response Service::health() const {
  json j = {{"status", "ok"},
            {"version", CONTRA_VERSION},
            {"items", index_->size()},
            {"dim", index_->dim()},
            {"metric", index_->metric()},
            {"type", index_->type()},
            {"features", index_->features()},
            {"checkpoint", index_->checkpoint()},
            {"max_body_bytes", options_.max_body_bytes},
            {"max_k", options_.max_k}};
  j["encoder"] = encoder_ ? json(encoder_->modality()) : json(nullptr);
  j["text"] = encoder_ != nullptr && encoder_->has_text();
  return json_response(200, j);
}

namespace {

const embed::QueryEncoder& need_encoder(const std::shared_ptr<const embed::QueryEncoder>& encoder,
                                        const char* what) {
  if (!encoder) {
    throw HttpError{501, fmt::format("{} needs the encoder, and this server has none (the index's "
                                     "checkpoint was not found; start it with --checkpoint)",
                                     what)};
  }
  return *encoder;
}

// The encoder for a text query: 501 when it has no text side.
const embed::QueryEncoder& need_text_encoder(
    const std::shared_ptr<const embed::QueryEncoder>& encoder) {
  const auto& enc = need_encoder(encoder, "a text query");
  if (!enc.has_text()) {
    throw HttpError{501, fmt::format("this server's encoder ({}) has no text encoder: text queries "
                                     "need a CLIP checkpoint",
                                     enc.modality())};
  }
  return enc;
}

}  // namespace

Response Service::embed(const Request& request) const {
  torch::Tensor v;
  if (is_json(request.content_type)) {
    json j = parse_body(request.body);
    const std::string kind = query_kind(j, {"text", "file_base64"}, {});
    v = kind == "text"
            ? need_text_encoder(encoder_).encode_text(string_field(j, "text"))
            : need_encoder(encoder_, "a file query")
                  .encode_bytes(base64_decode(string_field(j, "file_base64")), "file_base64");
  } else {
    if (request.body.empty()) throw HttpError{400, "empty body: expected audio or image bytes"};
    const auto& enc = need_encoder(encoder_, "/embed");
    v = enc.encode_bytes(request.body, "request body");
  }
  return json_response(200, json{{"dim", v.numel()}, {"vector", vector_json(v)}});
}

Response Service::search(const Request& request) const {
  std::int64_t k = options_.default_k;
  auto set_k = [&](std::int64_t value) {
    if (value < 1 || value > options_.max_k) {
      throw HttpError{400, fmt::format("k must be in 1..{} (got {})", options_.max_k, value)};
    }
    k = value;
  };
  json query_echo;
  torch::Tensor queries;  // (Q, D)
  bool batch = false;
  if (is_json(request.content_type)) {
    json j = parse_body(request.body);
    const std::string kind =
        query_kind(j, {"vector", "vectors", "id", "text", "file_base64"}, {"k"});
    if (j.contains("k")) {
      if (!j["k"].is_number_integer()) throw HttpError{400, "\"k\" must be an integer"};
      set_k(j["k"].get<std::int64_t>());
    }
    if (kind == "vector") {
      queries = vector_field(j["vector"], "\"vector\"", index_->dim()).unsqueeze(0);
      query_echo = {{"vector", index_->dim()}};
    } else if (kind == "vectors") {
      const json& vs = j["vectors"];
      if (!vs.is_array() || vs.empty()) {
        throw HttpError{400, "\"vectors\" must be a non-empty array of vectors"};
      }
      if (static_cast<std::int64_t>(vs.size()) > options_.max_batch) {
        throw HttpError{400, fmt::format("\"vectors\" holds {} queries; at most {} per request",
                                         vs.size(), options_.max_batch)};
      }
      std::vector<torch::Tensor> rows;
      for (std::size_t i = 0; i < vs.size(); ++i) {
        rows.push_back(vector_field(vs[i], fmt::format("\"vectors\"[{}]", i), index_->dim()));
      }
      queries = torch::stack(rows);
      batch = true;
      query_echo = {{"vectors", vs.size()}};
    } else if (kind == "id") {
      const std::string id = string_field(j, "id");
      try {
        queries = index_->vector_of(id).unsqueeze(0);
      } catch (const DataError& e) {
        throw HttpError{404, e.what()};
      }
      query_echo = {{"id", id}};
    } else {
      queries = (kind == "text" ? need_text_encoder(encoder_).encode_text(string_field(j, "text"))
                                : need_encoder(encoder_, "a file query")
                                      .encode_bytes(base64_decode(string_field(j, "file_base64")),
                                                    "file_base64"))
                    .unsqueeze(0);
      query_echo = kind == "text" ? json{{"text", j["text"]}} : json{{"file_base64", true}};
    }
  } else {
    // Raw audio or image bytes; k from the query string.
    if (request.body.empty()) {
      throw HttpError{400,
                      "empty body: expected JSON (Content-Type: application/json) or file bytes"};
    }
    auto it = request.params.find("k");
    if (it != request.params.end()) {
      std::size_t used = 0;
      std::int64_t value = 0;
      try {
        value = std::stoll(it->second, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != it->second.size()) {
        throw HttpError{400, fmt::format("k must be an integer (got \"{}\")", it->second)};
      }
      set_k(value);
    }
    const auto& enc = need_encoder(encoder_, "a file query");
    queries = enc.encode_bytes(request.body, "request body").unsqueeze(0);
    query_echo = {{"file_bytes", request.body.size()}};
  }
  auto hits = index_->search(queries, k);
  json j = {{"k", k}, {"metric", index_->metric()}, {"query", query_echo}};
  if (batch) {
    json all = json::array();
    for (const auto& h : hits) all.push_back(hits_json(h));
    j["results"] = std::move(all);
  } else {
    j["results"] = hits_json(hits.at(0));
  }
  return json_response(200, j);
}

// ---- base64
// ---------------------------------------------------------------------------------------

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (i < bytes.size()) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string base64_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const char* p = c == '\0' ? nullptr : std::strchr(kAlphabet, c);
    check<DataError>(p != nullptr && !padding,
                     "base64: invalid character at position {} (expected A-Z a-z 0-9 + / and "
                     "trailing =)",
                     i);
    acc = (acc << 6) | static_cast<std::uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  check<DataError>(bits < 6, "base64: truncated input (a lone final character)");
  return out;
}

}  // namespace contra::serve
