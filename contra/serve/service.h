#pragma once
/// The embedding service (`contra serve`, docs/serve.md): a vector index and, when its checkpoint
/// is available, the encoder that made it, answering JSON over HTTP.
///
///   GET  /health   {"status":"ok","items":N,"dim":D,"metric":"cosine","type":"hnsw",...}
///   POST /embed    audio or image bytes (any non-JSON content type), or JSON {"text": "..."}
///   (CLIP),
///                  or JSON {"file_base64": "..."}            -> {"dim":D,"vector":[...]}
///   POST /search   JSON {"vector":[...]} | {"id":"..."} | {"text":"..."} | {"file_base64":"..."},
///                  optional "k" (default 10); or raw file bytes with ?k=N
///                                                            ->
///                                                            {"k":K,"query":...,"results":[...]}
///
/// Every failure is a JSON {"error": "..."} with a 4xx status (400 malformed request, wrong
/// dimension, undecodable file; 404 unknown id or route; 405 wrong method; 413 body over the limit;
/// 501 no encoder for the request) — a bad request never stops the server.
///
///   auto index = std::make_shared<index::VectorIndex>(index::VectorIndex::load("idx"));
///   serve::HttpServer server(std::make_shared<serve::Service>(index, encoder), options);
///   int port = server.bind();   // port 0 picks a free one
///   server.run();               // until stop() (another thread, or SIGINT/SIGTERM at the CLI)
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace contra::index {
class VectorIndex;
}
namespace contra::embed {
class QueryEncoder;
}

namespace contra::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback by default; 0.0.0.0 exposes the service
  int port = 8080;                 // 0: any free port (bind() returns it)
  std::size_t max_body_bytes = std::size_t{16} << 20;
  int threads = 4;  // request worker threads
  std::int64_t default_k = 10;
  std::int64_t max_k = 1000;     // larger k is a 400
  std::int64_t max_batch = 256;  // query vectors per /search request
  void validate() const;
};

/// One HTTP-independent request/response, so the logic is testable and the transport thin.
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> params;  // query string
};
struct Response {
  int status = 200;
  std::string body;  // JSON
};

/// The request logic. Thread-safe: searches run concurrently; the encoder serialises its forward
/// passes itself (one model; CPU threads are already parallel inside each pass).
class Service {
 public:
  /// `encoder` may be null (then /embed and file/text queries answer 501 naming the reason).
  Service(std::shared_ptr<const index::VectorIndex> index,
          std::shared_ptr<const embed::QueryEncoder> encoder, ServeOptions options = {});
  Response handle(const Request& request) const;
  const ServeOptions& options() const { return options_; }

 private:
  Response health() const;
  Response embed(const Request& request) const;
  Response search(const Request& request) const;

  std::shared_ptr<const index::VectorIndex> index_;
  std::shared_ptr<const embed::QueryEncoder> encoder_;
  ServeOptions options_;
};

/// The HTTP transport (cpp-httplib).
class HttpServer {
 public:
  HttpServer(std::shared_ptr<const Service> service);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  /// Binds host:port (IoError naming them when taken or not allowed); returns the bound port.
  int bind();
  /// Serves until stop(). Returns after the listening socket is closed.
  void run();
  /// Thread-safe; also safe before run() starts (run() then returns at once).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A minimal HTTP client over cpp-httplib (tests, `contra serve --check`): one request to
/// http://host:port, returning the status (-1 when the connection failed) and body.
struct ClientResponse {
  int status = -1;
  std::string body;
  std::string error;  // transport error text when status == -1
};
ClientResponse http_request(const std::string& host, int port, const std::string& method,
                            const std::string& path, const std::string& body = "",
                            const std::string& content_type = "application/json",
                            double timeout_seconds = 30);

/// Base64 (RFC 4648, standard alphabet, padding optional; whitespace ignored). DataError naming the
/// offending position for anything else.
std::string base64_decode(const std::string& text);
std::string base64_encode(const std::string& bytes);

}  // namespace contra::serve
