// The embedding service's HTTP transport over cpp-httplib (Debian's compiled build; CMakeLists.txt
// gives this file, and only it, the library's CPPHTTPLIB_* definitions).
#include <atomic>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/serve/service.h"

namespace contra::serve {

struct HttpServer::Impl {
  std::shared_ptr<const Service> service;
  httplib::Server server;
  std::atomic<bool> stopped{false};
  bool bound = false;
};

namespace {

void answer(const Service& service, const httplib::Request& req, httplib::Response& res) {
  Request r;
  r.method = req.method;
  r.path = req.path;
  r.content_type = req.get_header_value("Content-Type");
  r.body = req.body;
  for (const auto& [key, value] : req.params) r.params.emplace(key, value);
  Response out = service.handle(r);
  res.status = out.status;
  res.set_content(out.body, "application/json");
}

const char* status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "payload too large";
    case 414:
      return "URI too long";
    case 415:
      return "unsupported media type";
    case 431:
      return "request header fields too large";
    case 500:
      return "internal server error";
    case 503:
      return "service unavailable";
    default:
      return status < 500 ? "client error" : "server error";
  }
}

}  // namespace

HttpServer::HttpServer(std::shared_ptr<const Service> service) : impl_(std::make_unique<Impl>()) {
  check<Error>(service != nullptr, "serve: no service");
  impl_->service = std::move(service);
  const ServeOptions& o = impl_->service->options();
  auto& s = impl_->server;
  const auto threads = static_cast<std::size_t>(o.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(o.max_body_bytes);
  // cpp-httplib's default is SO_REUSEPORT, which lets a second server bind the same port and
  // silently share its connections. SO_REUSEADDR only: a taken port is an error; a restart right
  // after a stop still binds (no wait for TIME_WAIT).
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_read_timeout(30, 0);
  s.set_write_timeout(30, 0);
  const Service* svc = impl_->service.get();
  auto handler = [svc](const httplib::Request& req, httplib::Response& res) {
    answer(*svc, req, res);
  };
  // Every route goes to the service, which answers 404/405 itself with a JSON message.
  const char* any = ".*";
  s.Get(any, handler);
  s.Post(any, handler);
  s.Put(any, handler);
  s.Delete(any, handler);
  s.Patch(any, handler);
  // Statuses cpp-httplib sets itself (413 body over the limit, 400 unparsable request line...):
  // the same JSON shape as the service's errors.
  const std::size_t limit = o.max_body_bytes;
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [limit](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message =
            res.status == 413
                ? fmt::format("request body over the limit of {} bytes (--max-body-mb)", limit)
                : fmt::format("HTTP {} ({})", res.status, status_text(res.status));
        res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          message += std::string(": ") + e.what();
        } catch (...) {
        }
        res.status = 500;
        res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
      });
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  const ServeOptions& o = impl_->service->options();
  int port = o.port;
  if (port == 0) {
    port = impl_->server.bind_to_any_port(o.host);
    check<IoError>(port > 0, "serve: cannot bind {} on any port", o.host);
  } else {
    check<IoError>(impl_->server.bind_to_port(o.host, port),
                   "serve: cannot bind {}:{} (in use, or not an address of this machine)", o.host,
                   port);
  }
  impl_->bound = true;
  return port;
}

void HttpServer::run() {
  if (!impl_->bound) bind();
  if (impl_->stopped.load()) return;
  impl_->server.listen_after_bind();
}

void HttpServer::stop() {
  impl_->stopped.store(true);
  impl_->server.stop();
}

ClientResponse http_request(const std::string& host, int port, const std::string& method,
                            const std::string& path, const std::string& body,
                            const std::string& content_type, double timeout_seconds) {
  httplib::Client client(host, port);
  const auto seconds = static_cast<time_t>(timeout_seconds);
  const auto usec = static_cast<time_t>((timeout_seconds - static_cast<double>(seconds)) * 1e6);
  client.set_connection_timeout(seconds, usec);
  client.set_read_timeout(seconds, usec);
  client.set_write_timeout(seconds, usec);
  auto send = [&]() -> httplib::Result {
    if (method == "GET") return client.Get(path);
    if (method == "POST") return client.Post(path, body, content_type);
    if (method == "PUT") return client.Put(path, body, content_type);
    if (method == "DELETE") return client.Delete(path, body, content_type);
    throw UsageError(fmt::format("http_request: unsupported method {}", method));
  };
  httplib::Result r = send();
  ClientResponse out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  return out;
}

}  // namespace contra::serve
