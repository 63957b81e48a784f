#include "commands/commands.h"
namespace contra::cli {
void register_corpus(CLI::App& app) {}
}  // namespace contra::cli
