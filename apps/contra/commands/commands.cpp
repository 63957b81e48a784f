#include "commands/commands.h"

#include "contra/core/error.h"

namespace contra::cli {

namespace {
Runner& selected() {
  static Runner runner;
  return runner;
}
}  // namespace

void set_runner(Runner runner) { selected() = std::move(runner); }

void register_commands(CLI::App& app) {
  register_env(app);
  register_audio(app);
  register_corpus(app);
  register_data(app);
  register_train(app);
  register_augment(app);
  register_clip(app);
  register_launch(app);
  register_search(app);
  register_plot(app);
  register_serve(app);
  register_export(app);
}

int run_selected(CLI::App& app) {
  if (!selected()) throw UsageError("no command given (see contra --help)");
  return selected()();
}

void add_config_options(CLI::App* sub, ConfigOptions& options) {
  sub->add_option("--config,-c", options.config, "YAML config file")->check(CLI::ExistingFile);
  sub->add_option("--set", options.sets,
                  "override a config value, e.g. --set train.steps=2000 (repeatable)");
}

}  // namespace contra::cli
