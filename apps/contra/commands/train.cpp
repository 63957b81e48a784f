// contra train: train a recipe (configs/*.yaml); contra probe: evaluate a checkpoint with the
// probes; contra finetune: fine-tune it on a fraction of the phone labels against training from
// scratch.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/runtime.h"
#include "contra/dist/group.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/train/clip_recipe.h"
#include "contra/train/image_recipe.h"
#include "contra/train/recipe.h"
#include "contra/viz/tensorboard.h"

namespace contra::cli {
namespace fs = std::filesystem;

namespace {

struct TrainOptions {
  ConfigOptions config;
  std::string run;
  bool resume = false;
  bool json = false;
};

struct ProbeOptions {
  ConfigOptions config;
  std::string checkpoint;
  std::string out;
  bool json = false;
};

// Splits "runs/name" into run.dir and run.name overrides.
void set_run_dir(ConfigTree& tree, const std::string& run) {
  fs::path p = fs::path(run).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  tree.set("run.name=" + p.filename().string());
  tree.set("run.dir=" + (p.parent_path().empty() ? std::string(".") : p.parent_path().string()));
}

int run_train(const TrainOptions& o) {
  ConfigTree tree;
  if (!o.config.config.empty()) {
    tree = ConfigTree::load_file(o.config.config);
  } else if (o.resume && !o.run.empty() && path_exists(o.run + "/config.yaml")) {
    tree = ConfigTree::load_file(o.run + "/config.yaml");
  } else {
    throw UsageError("train: give --config FILE (or --resume --run RUN_DIR of an existing run)");
  }
  if (!o.run.empty()) set_run_dir(tree, o.run);
  for (const auto& s : o.config.sets) tree.set(s);
  std::string run_dir;
  train::TrainSummary s;
  // Distributed when torchrun / contra launch set WORLD_SIZE > 1 (docs/distributed.md).
  auto join = [](const train::TrainConfig& t) {
    dist::InitOptions init;
    init.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(t.dist_timeout * 1000));
    init.device = parse_device(t.device);
    dist::init_from_env(init);
  };
  const std::string modality = method::method_modality(tree);
  if (modality == "image") {
    train::ImageRecipe recipe = train::load_image_recipe(tree);
    run_dir = recipe.run_dir();
    join(recipe.train);
    s = train::train_image_recipe(recipe, o.resume);
  } else if (modality == "image_text" || modality == "audio_image") {
    train::ClipRecipe recipe = train::load_clip_recipe(tree);
    run_dir = recipe.run_dir();
    join(recipe.train);
    s = train::train_clip_recipe(recipe, o.resume);
  } else {
    train::Recipe recipe = train::load_recipe(tree);
    run_dir = recipe.run_dir();
    join(recipe.train);
    s = train::train_recipe(recipe, o.resume);
  }
  const bool main_rank = dist::world().is_main();
  dist::shutdown();
  if (!main_rank) return 0;  // rank 0 reports
  if (o.json) {
    nlohmann::json j = {{"run_dir", run_dir},
                        {"first_step", s.first_step},
                        {"steps", s.steps},
                        {"seconds", s.seconds},
                        {"items_per_second", s.items_per_second},
                        {"loss", s.loss},
                        {"metrics", s.metrics},
                        {"checkpoint", s.checkpoint},
                        {"stopped_early", s.stopped_early},
                        {"loader_wait_seconds", s.loader_wait_seconds}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (s.steps == s.first_step) {
    std::printf("run %s is already at step %lld (train.steps); nothing to do\n", run_dir.c_str(),
                static_cast<long long>(s.steps));
    return 0;
  }
  std::printf("run          %s\n", run_dir.c_str());
  std::printf("steps        %lld -> %lld%s\n", static_cast<long long>(s.first_step),
              static_cast<long long>(s.steps),
              s.stopped_early ? " (stopped by train.max_seconds)" : "");
  std::printf("time         %.1f s (%.1f items/s, loader wait %.1f s)\n", s.seconds,
              s.items_per_second, s.loader_wait_seconds);
  std::printf("final loss   %.4f\n", s.loss);
  for (const auto& [k, v] : s.metrics) {
    if (k.rfind("acc_", 0) == 0 || k == "instance_acc" || k == "online_acc" || k == "i2t_acc" ||
        k == "t2i_acc" || k == "logit_scale")
      std::printf("%-12s %.3f\n", k.c_str(), v);
  }
  std::printf("checkpoint   %s\n", s.checkpoint.c_str());
  return 0;
}

// The config of a checkpoint command: --config, else the checkpoint's own config; then --set.
ConfigTree checkpoint_config(const ProbeOptions& o, const std::string& checkpoint) {
  ConfigTree tree =
      o.config.config.empty()
          ? ConfigTree::from_string(train::read_checkpoint_meta(checkpoint).config_yaml,
                                    checkpoint + " (config)")
          : ConfigTree::load_file(o.config.config);
  for (const auto& s : o.config.sets) tree.set(s);
  return tree;
}

// --out, else the run directory (the argument itself, or the folder above checkpoints/).
std::string output_dir(const ProbeOptions& o, const std::string& checkpoint) {
  if (!o.out.empty()) return o.out;
  return fs::is_directory(o.checkpoint) ? o.checkpoint
                                        : fs::path(checkpoint).parent_path().parent_path().string();
}

int run_probe(const ProbeOptions& o) {
  std::string checkpoint = train::resolve_checkpoint(o.checkpoint);
  ConfigTree tree = checkpoint_config(o, checkpoint);
  std::string out = output_dir(o, checkpoint);
  std::string table;
  const std::string modality = method::method_modality(tree);
  if (modality == "image") {
    train::ImageRecipe recipe = train::load_image_recipe(tree);
    table = eval::image_probe_markdown(train::probe_image_recipe(recipe, checkpoint, out));
  } else if (modality == "image_text" || modality == "audio_image") {
    train::ClipRecipe recipe = train::load_clip_recipe(tree);
    table = train::clip_evaluation_markdown(train::evaluate_clip_recipe(recipe, checkpoint, out));
  } else {
    train::Recipe recipe = train::load_recipe(tree);
    auto rows = train::probe_recipe(recipe, checkpoint, out);
    table = eval::speech_probe_markdown(rows, recipe.probe.hidden > 0);
  }
  // The accuracies as TensorBoard scalars at the checkpoint's step (docs/visualize.md).
  viz::log_probe_results(out);
  if (o.json) {
    std::printf("%s\n", read_file(out + "/results.json").c_str());
  } else {
    std::printf("%s", table.c_str());
    std::printf("\nwritten: %s/results.md, %s/results.json, %s/tensorboard/\n", out.c_str(),
                out.c_str(), out.c_str());
  }
  return 0;
}

int run_finetune(const ProbeOptions& o) {
  std::string checkpoint = train::resolve_checkpoint(o.checkpoint);
  ConfigTree tree = checkpoint_config(o, checkpoint);
  std::string out = output_dir(o, checkpoint);
  std::string table;
  const std::string modality = method::method_modality(tree);
  if (modality == "image_text" || modality == "audio_image") {
    throw UsageError(
        "finetune: CLIP recipes are evaluated with `contra probe` (zero-shot, retrieval, linear "
        "probe of the image encoder) and `contra clip zeroshot`");
  }
  if (modality == "image") {
    train::ImageRecipe recipe = train::load_image_recipe(tree);
    table = eval::image_finetune_markdown(train::finetune_image_recipe(recipe, checkpoint, out));
  } else {
    train::Recipe recipe = train::load_recipe(tree);
    table = eval::finetune_markdown(train::finetune_recipe(recipe, checkpoint, out));
  }
  if (o.json) {
    std::printf("%s\n", read_file(out + "/results_finetune.json").c_str());
  } else {
    std::printf("%s", table.c_str());
    std::printf("\nwritten: %s/results_finetune.md, %s/results_finetune.json\n", out.c_str(),
                out.c_str());
  }
  return 0;
}

}  // namespace

void register_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* train = app.add_subcommand("train", "train a recipe (e.g. configs/cpc_speech.yaml)");
  add_config_options(train, o->config);
  train->add_option("--run", o->run, "run directory (default: run.dir/run.name of the config)");
  train->add_flag(
      "--resume", o->resume,
      "continue from the run directory's last checkpoint (starts fresh when it has none)");
  train->add_flag("--json", o->json, "print the summary as JSON");
  train->callback([o] { set_runner([o] { return run_train(*o); }); });

  auto p = std::make_shared<ProbeOptions>();
  auto* probe = app.add_subcommand(
      "probe",
      "evaluate a checkpoint: speech (phone/speaker linear probes, random-init and MFCC "
      "baselines), images (linear probe + kNN, random-init and raw-pixel baselines) or CLIP "
      "(zero-shot, retrieval recall@k, linear probe + kNN of the image encoder)");
  probe->add_option("--checkpoint", p->checkpoint, "run directory or checkpoint file")->required();
  add_config_options(probe, p->config);
  probe->add_option("--out", p->out,
                    "folder for results.json / results.md (default: the run directory)");
  probe->add_flag("--json", p->json, "print results.json");
  probe->callback([p] { set_runner([p] { return run_probe(*p); }); });

  auto f = std::make_shared<ProbeOptions>();
  auto* finetune = app.add_subcommand(
      "finetune",
      "fine-tune a checkpoint's encoder with a linear head (phones or image classes) on a "
      "fraction of the labels, against the same model trained from scratch");
  finetune->add_option("--checkpoint", f->checkpoint, "run directory or checkpoint file")
      ->required();
  add_config_options(finetune, f->config);
  finetune->add_option(
      "--out", f->out,
      "folder for results_finetune.json / results_finetune.md (default: the run directory)");
  finetune->add_flag("--json", f->json, "print results_finetune.json");
  finetune->callback([f] { set_runner([f] { return run_finetune(*f); }); });
}

}  // namespace contra::cli
