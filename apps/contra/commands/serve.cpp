// contra serve: the embedding service over an index directory (docs/serve.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "commands/commands.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/runtime.h"
#include "contra/embed/encoder.h"
#include "contra/index/vector_index.h"
#include "contra/serve/service.h"

namespace contra::cli {
namespace {

struct ServeCommandOptions {
  std::string index;
  std::string checkpoint;
  std::string features;
  std::string device = "cpu";
  std::string host = "127.0.0.1";
  int port = 8080;
  double max_body_mb = 16;
  int threads = 4;
  bool no_encoder = false;
};

int run_serve(const ServeCommandOptions& o) {
  serve::ServeOptions options;
  options.host = o.host;
  options.port = o.port;
  check<ConfigError>(o.max_body_mb > 0 && o.max_body_mb <= 4096,
                     "serve: --max-body-mb must be in (0, 4096] (got {})", o.max_body_mb);
  options.max_body_bytes = static_cast<std::size_t>(o.max_body_mb * 1024 * 1024);
  options.threads = o.threads;
  options.validate();

  auto index = std::make_shared<index::VectorIndex>(index::VectorIndex::load(o.index));
  // The encoder: --checkpoint, else the one the index records (when it still exists).
  std::shared_ptr<const embed::QueryEncoder> encoder;
  std::string encoder_note;
  if (!o.no_encoder) {
    const std::string checkpoint = o.checkpoint.empty() ? index->checkpoint() : o.checkpoint;
    const std::string features = o.features.empty() ? index->features() : o.features;
    if (!o.checkpoint.empty() || (!checkpoint.empty() && path_exists(checkpoint))) {
      encoder = embed::QueryEncoder::open(checkpoint, features, parse_device(o.device));
      encoder_note = fmt::format("{} ({}, {})", encoder->checkpoint(), encoder->modality(),
                                 encoder->features());
    } else {
      encoder_note = checkpoint.empty()
                         ? "none (the index records no checkpoint): vector and id queries only"
                         : fmt::format(
                               "none ({} not found; give --checkpoint): vector and id "
                               "queries only",
                               checkpoint);
    }
  } else {
    encoder_note = "none (--no-encoder): vector and id queries only";
  }

  auto service = std::make_shared<serve::Service>(index, encoder, options);
  serve::HttpServer server(service);

  // SIGINT/SIGTERM stop the server cleanly: blocked here (and so in every thread started after),
  // taken by one waiting thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int port = server.bind();
  std::printf("index     %s (%lld items, %lld dims, %s, %s)\n", o.index.c_str(),
              static_cast<long long>(index->size()), static_cast<long long>(index->dim()),
              index->type().c_str(), index->metric().c_str());
  std::printf("encoder   %s\n", encoder_note.c_str());
  std::printf("listening on http://%s:%d  (GET /health, POST /embed, POST /search; Ctrl-C stops)\n",
              o.host.c_str(), port);
  std::fflush(stdout);

  std::thread waiter([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  server.run();
  // run() returns only after stop(), which the waiter called.
  waiter.join();
  return 0;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCommandOptions>();
  auto* sub = app.add_subcommand(
      "serve",
      "serve an index over HTTP: GET /health, POST /embed (audio/image bytes or CLIP text -> "
      "vector), POST /search (vector, item id, file or text -> neighbours); docs/serve.md");
  sub->add_option("--index", o->index, "index directory (contra index build --out)")->required();
  sub->add_option("--host", o->host, "address to bind (default 127.0.0.1: this machine only)");
  sub->add_option("--port", o->port, "TCP port (0: any free port, printed)");
  sub->add_option("--checkpoint", o->checkpoint,
                  "encoder for /embed and file/text queries (default: the index's checkpoint)");
  sub->add_option("--features", o->features,
                  "representation to encode (default: the one the index was built from)");
  sub->add_option("--device", o->device, "device of the encoder (cpu, cuda, cuda:N)");
  sub->add_option("--max-body-mb", o->max_body_mb, "largest request body in MiB (413 above)");
  sub->add_option("--threads", o->threads, "request worker threads");
  sub->add_flag("--no-encoder", o->no_encoder, "serve vector and id queries only");
  sub->callback([o] { set_runner([o] { return run_serve(*o); }); });
}

}  // namespace contra::cli
