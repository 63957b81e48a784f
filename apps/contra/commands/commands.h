#pragma once
// Command registration. Each commands/<name>.cpp adds its subcommand and, in the subcommand's
// callback, hands a runner to `set_runner`; main runs it after parsing, outside CLI11.
#include <functional>

#include <CLI/CLI.hpp>

namespace contra::cli {

using Runner = std::function<int()>;

void set_runner(Runner runner);
void register_commands(CLI::App& app);
int run_selected(CLI::App& app);

// One per command file.
void register_env(CLI::App& app);
void register_audio(CLI::App& app);
void register_corpus(CLI::App& app);
void register_data(CLI::App& app);     // data mnist, data info
void register_train(CLI::App& app);    // train + probe + finetune
void register_augment(CLI::App& app);  // augment preview
void register_clip(CLI::App& app);     // clip classify, clip zeroshot
void register_launch(CLI::App& app);   // launch --nproc N -- <command>
void register_search(CLI::App& app);   // embed, index build/info, search
void register_plot(CLI::App& app);     // plot RUN_DIR [--out DIR]
void register_serve(CLI::App& app);    // serve --index DIR
void register_export(CLI::App& app);   // export --checkpoint C --out F.safetensors

/// Adds the options every command that reads a config shares: --config FILE, --set a.b=c
/// (repeatable).
struct ConfigOptions {
  std::string config;
  std::vector<std::string> sets;
};
void add_config_options(CLI::App* sub, ConfigOptions& options);

}  // namespace contra::cli
