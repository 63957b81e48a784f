// contra — command-line entry point. Parses argv, calls one library function per command, maps
// errors to exit codes (2: usage/config/data, 1: internal).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "commands/commands.h"
#include "contra/core/error.h"
#include "contra/core/runtime.h"
#include "contra/core/version.h"

int main(int argc, char** argv) {
  contra::configure_allocator();
  CLI::App app{"contra — contrastive representation learning in C++ (LibTorch)", "contra"};
  app.set_version_flag("--version", std::string("contra ") + CONTRA_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  contra::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    return contra::cli::run_selected(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    // In a distributed run every rank reports its own failure: say which.
    const char* rank = std::getenv("RANK");
    const char* world = std::getenv("WORLD_SIZE");
    if (rank != nullptr && world != nullptr && std::string(world) != "1") {
      std::fprintf(stderr, "error (rank %s): %s\n", rank, e.what());
    } else {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
    return contra::exit_code_for(e);
  }
}
