#include "contra/train/recipe.h"

#include <filesystem>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/runtime.h"
#include "contra/data/audio_windows.h"
#include "contra/dist/group.h"
#include "contra/method/cpc_audio.h"
#include "contra/method/registry.h"
#include "contra/train/checkpoint.h"
#include "contra/transforms/mfcc.h"
#include "contra/viz/projector.h"

namespace contra::train {
namespace fs = std::filesystem;

void RunConfig::validate() const {
  check<ConfigError>(
      !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
      "name: must be a plain folder name (got '{}')", name);
  check<ConfigError>(!dir.empty(), "dir: must not be empty");
}

void SpeechDataConfig::validate() const {
  check<ConfigError>(!root.empty(), "root: must not be empty");
  check<ConfigError>(window >= 160, "window: must be >= 160 samples (got {})", window);
  check<ConfigError>(cache_mb >= 1, "cache_mb: must be >= 1 (got {})", cache_mb);
}

std::string SpeechDataConfig::path(const std::string& name) const {
  if (name.empty() || fs::path(name).is_absolute()) return name;
  return (fs::path(root) / name).string();
}

transforms::AudioAugmentOptions AudioAugmentConfig::options() const {
  return transforms::AudioAugmentOptions()
      .speed_p(speed_p)
      .speed_min(speed_min)
      .speed_max(speed_max)
      .shift_p(shift_p)
      .max_shift(max_shift)
      .band_reject_p(band_reject_p)
      .band_min_hz(band_min_hz)
      .band_max_hz(band_max_hz)
      .width_min_hz(width_min_hz)
      .width_max_hz(width_max_hz)
      .gain_p(gain_p)
      .gain_min_db(gain_min_db)
      .gain_max_db(gain_max_db)
      .noise_p(noise_p)
      .snr_min_db(snr_min_db)
      .snr_max_db(snr_max_db)
      .region(region)
      .split_sample(split_sample);
}

void AudioAugmentConfig::validate() const {
  transforms::AudioAugment check(options());  // the chain validates its options (ConfigError)
}

Recipe load_recipe(const ConfigTree& tree) {
  tree.check_sections(
      {"run", "data", "corpus", "method", "augment", "train", "optim", "probe", "finetune"});
  Recipe r;
  r.tree = tree;
  r.run = tree.get<RunConfig>("run");
  r.data = tree.get<SpeechDataConfig>("data");
  r.corpus = tree.get<data::SpeechCorpusConfig>("corpus");
  r.augment = tree.get<AudioAugmentConfig>("augment");
  r.train = tree.get<TrainConfig>("train");
  r.optim = tree.get<OptimConfig>("optim");
  r.probe = tree.get<eval::SpeechProbeConfig>("probe");
  r.finetune = tree.get<eval::FinetuneConfig>("finetune");
  method::make_method(tree);  // validates the method section (name and keys) now, not mid-run
  return r;
}

std::string Recipe::resolved_yaml() const {
  YAML::Node root(YAML::NodeType::Map);
  root["schema_version"] = kConfigSchemaVersion;
  root["run"] = to_yaml(run);
  root["data"] = to_yaml(data);
  root["corpus"] = to_yaml(corpus);
  method::resolve_method_config(tree, root);
  root["augment"] = to_yaml(augment);
  root["train"] = to_yaml(train);
  root["optim"] = to_yaml(optim);
  root["probe"] = to_yaml(probe);
  root["finetune"] = to_yaml(finetune);
  return yaml_text(root);
}

SpeechData open_speech_data(const Recipe& r) {
  if (!path_exists(r.data.root)) {
    if (!r.data.generate) {
      throw DataError(
          fmt::format("data.root '{}': no such folder (set data.generate=true to build the "
                      "built-in corpus there)",
                      r.data.root));
    }
    log().info("generating the built-in speech corpus into {}", r.data.root);
    auto stats = data::generate_speech_corpus(r.corpus, r.data.root);
    log().info("corpus: {} speakers, {} utterances, {:.2f} h in {:.1f} s", stats.speakers,
               stats.utterances, stats.hours, stats.seconds);
  }
  SpeechData d;
  d.dataset = std::make_unique<data::LibriSpeechDataset>(r.data.root);
  d.train_ids = data::read_split(r.data.path(r.data.train_split));
  d.test_ids = data::read_split(r.data.path(r.data.test_split));
  if (!r.data.alignments.empty() && path_exists(r.data.path(r.data.alignments))) {
    d.alignments = std::make_unique<data::PhoneAlignments>(
        r.data.path(r.data.alignments), r.data.phones.empty() ? "" : r.data.path(r.data.phones));
  }
  return d;
}

TrainSummary train_recipe(const Recipe& r, bool resume) {
  set_threads(static_cast<int>(r.train.threads));
  seed_everything(static_cast<std::uint64_t>(r.train.seed));
  std::shared_ptr<method::Method> method = method::make_method(r.tree);
  SpeechData d;
  // Rank 0 generates the corpus first (when asked); the other ranks then open what it wrote.
  dist::world().main_first(
      "preparing the speech corpus", [&] { d = open_speech_data(r); }, std::chrono::hours(6));
  data::AudioWindowOptions window_options;
  window_options.window = r.data.window;
  window_options.cache_bytes = r.data.cache_mb << 20;
  auto source = std::make_shared<data::AudioWindowSource>(*d.dataset, d.train_ids, window_options);
  log().info("training on {} utterances of {} speakers ({} shorter than a window skipped)",
             source->utterances(), source->speakers(), source->skipped());
  if (auto* cpc = dynamic_cast<method::CpcAudio*>(method.get())) {
    cpc->check_window(r.data.window);
    torch::Tensor labels;
    if (r.train.speakers_per_batch > 0) {
      labels = torch::arange(r.train.speakers_per_batch)
                   .repeat_interleave(r.train.batch_size / r.train.speakers_per_batch);
    } else {
      labels = torch::arange(r.train.batch_size);
    }
    cpc->check_batch(r.train.batch_size, r.data.window, labels);
  }
  const auto seed = static_cast<std::uint64_t>(r.train.seed);
  const auto batch = r.train.batch_size, per_speaker = r.train.speakers_per_batch;
  const transforms::AudioAugmentOptions augment = r.augment.options();
  const bool augmenting = transforms::AudioAugment(augment).enabled();
  // Windows are drawn at random: rank r of R takes the stream's batches i·R + r (one process: i),
  // so the ranks' windows are independent draws and together R times a single batch.
  const std::int64_t rank = dist::world().rank(), ranks = dist::world().size();
  auto make_batch = [source, seed, batch, per_speaker, augment, augmenting, rank,
                     ranks](std::int64_t i) {
    const std::int64_t stream = i * ranks + rank;
    method::Batch b = source->batch(stream, batch, per_speaker, seed);
    if (augmenting) {
      transforms::AudioAugment chain(
          augment, data::mix_seed(seed, static_cast<std::uint64_t>(stream), 0xa06));
      b.input = chain(b.input);
    }
    return b;
  };
  Trainer trainer(method, r.train, r.optim, r.run_dir(), r.resolved_yaml());
  return trainer.fit(make_batch, resume);
}

std::vector<eval::SpeechProbeRow> probe_recipe(const Recipe& r, const std::string& checkpoint,
                                               const std::string& out_dir) {
  set_threads(static_cast<int>(r.train.threads));
  SpeechData d = open_speech_data(r);
  if (!d.alignments) {
    throw DataError(
        fmt::format("probe: no phone alignments at '{}'", r.data.path(r.data.alignments)));
  }
  c10::Device device = parse_device(r.train.device);
  auto model_features = [&](std::shared_ptr<method::Method> m) -> eval::SpeechFeatureFn {
    m->to(device);
    m->eval();
    std::string kind = r.probe.features;
    return [m, kind, device](const torch::Tensor& wave) {
      return m->features(wave.unsqueeze(0).to(device), kind).squeeze(0);
    };
  };
  std::vector<eval::SpeechProbeRow> rows;
  CheckpointMeta meta;
  {
    auto trained = method::make_method(r.tree);
    meta = load_checkpoint(checkpoint, *trained);
    rows.push_back(eval::run_speech_probe(fmt::format("{} ({} steps)", trained->name(), meta.step),
                                          model_features(trained), *d.dataset, *d.alignments,
                                          d.train_ids, d.test_ids, r.probe));
    // TensorBoard projector + `contra plot` maps: a seeded sample of test-split frame features.
    viz::write_speech_projector(out_dir + "/tensorboard/projector", model_features(trained),
                                *d.dataset, *d.alignments, d.test_ids, viz::kProjectorPoints,
                                static_cast<std::uint64_t>(r.probe.seed));
  }
  for (const auto& baseline : r.probe.baselines) {
    if (baseline == "random") {
      seed_everything(
          static_cast<std::uint64_t>(r.train.seed));  // the trained model's initial weights
      auto random = method::make_method(r.tree);
      rows.push_back(eval::run_speech_probe("random init", model_features(random), *d.dataset,
                                            *d.alignments, d.train_ids, d.test_ids, r.probe));
    } else if (baseline == "mfcc") {
      rows.push_back(eval::run_speech_probe(
          "MFCC (13 + deltas)", [](const torch::Tensor& wave) { return transforms::mfcc(wave[0]); },
          *d.dataset, *d.alignments, d.train_ids, d.test_ids, r.probe));
    }
  }
  // results.json + results.md
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json j = {{"features", row.name},
                        {"dim", row.dim},
                        {"phone_accuracy", row.phone.test_accuracy},
                        {"phone_train_accuracy", row.phone.train_accuracy},
                        {"phone_classes", row.phone.classes},
                        {"phone_chance", row.phone.chance_accuracy},
                        {"speaker_accuracy", row.speaker.test_accuracy},
                        {"speaker_train_accuracy", row.speaker.train_accuracy},
                        {"speakers", row.speaker.classes},
                        {"speaker_chance", row.speaker.chance_accuracy},
                        {"seconds", row.seconds}};
    if (r.probe.hidden > 0) j["phone_mlp_accuracy"] = row.phone_mlp.test_accuracy;
    rows_json.push_back(j);
  }
  nlohmann::json results = {
      {"checkpoint", checkpoint},
      {"step", meta.step},
      {"probe", nlohmann::json::parse(nlohmann::json(yaml_text(to_yaml(r.probe))).dump())},
      {"rows", rows_json}};
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/results.json", results.dump(2) + "\n");
  std::string md = fmt::format("# Probe results\n\ncheckpoint `{}` (step {}), features `{}`\n\n",
                               checkpoint, meta.step, r.probe.features) +
                   eval::speech_probe_markdown(rows, r.probe.hidden > 0);
  write_file_atomic(out_dir + "/results.md", md);
  return rows;
}

namespace {
/// A typed config section as a JSON object (key order of visit()).
struct JsonWriter {
  nlohmann::json& out;
  template <class T>
  void operator()(const char* key, const T& value, const char* /*doc*/ = "") {
    out[key] = value;
  }
};

nlohmann::json finetune_json(const eval::FinetuneResult& r) {
  return {{"test_accuracy", r.test_accuracy},
          {"last_batch_train_accuracy", r.train_accuracy},
          {"first_loss", r.losses.empty() ? 0.0 : r.losses.front()},
          {"last_loss", r.losses.empty() ? 0.0 : r.losses.back()},
          {"chance_accuracy", r.chance_accuracy},
          {"seconds", r.seconds}};
}
}  // namespace

std::vector<eval::FinetuneRow> finetune_recipe(const Recipe& r, const std::string& checkpoint,
                                               const std::string& out_dir) {
  r.finetune.validate();
  set_threads(static_cast<int>(r.train.threads));
  SpeechData d = open_speech_data(r);
  if (!d.alignments) {
    throw DataError(
        fmt::format("finetune: no phone alignments at '{}'", r.data.path(r.data.alignments)));
  }
  const c10::Device device = parse_device(r.train.device);
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  std::vector<eval::FinetuneRow> rows;
  for (double fraction : r.finetune.fractions) {
    eval::FinetuneRow row;
    row.fraction = fraction;
    const auto subset = eval::labelled_subset(*d.dataset, d.train_ids, fraction,
                                              static_cast<std::uint64_t>(r.finetune.seed));
    log().info("finetune {:g}%: {} labelled utterances, pretrained ({} steps)", 100 * fraction,
               subset.size(), meta.step);
    {
      auto model = method::make_method(r.tree);
      load_checkpoint(checkpoint, *model);
      row.pretrained = eval::finetune_phones(*model, *d.dataset, *d.alignments, subset, d.test_ids,
                                             r.finetune, 0, device);
    }
    log().info("finetune {:g}%: pretrained {:.1f}% ({:.0f} s)", 100 * fraction,
               100 * row.pretrained.test_accuracy, row.pretrained.seconds);
    if (r.finetune.scratch) {
      seed_everything(static_cast<std::uint64_t>(r.train.seed));  // the pretrained run's init
      auto model = method::make_method(r.tree);
      row.scratch = eval::finetune_phones(*model, *d.dataset, *d.alignments, subset, d.test_ids,
                                          r.finetune, r.finetune.scratch_encoder_lr, device);
      row.has_scratch = true;
      log().info("finetune {:g}%: from scratch {:.1f}% ({:.0f} s)", 100 * fraction,
                 100 * row.scratch.test_accuracy, row.scratch.seconds);
    }
    rows.push_back(std::move(row));
  }

  nlohmann::json config = nlohmann::json::object();
  JsonWriter writer{config};
  const_cast<eval::FinetuneConfig&>(r.finetune).visit(writer);  // visit only reads
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json j = {{"fraction", row.fraction},
                        {"labelled_utterances", row.pretrained.train_utterances},
                        {"labelled_frames", row.pretrained.train_frames},
                        {"test_utterances", row.pretrained.test_utterances},
                        {"test_frames", row.pretrained.test_frames},
                        {"phone_classes", row.pretrained.classes},
                        {"pretrained", finetune_json(row.pretrained)},
                        {"pretrained_accuracy", row.pretrained.test_accuracy},
                        {"seconds", row.pretrained.seconds}};
    if (row.has_scratch) {
      j["scratch"] = finetune_json(row.scratch);
      j["scratch_accuracy"] = row.scratch.test_accuracy;
      j["seconds"] = row.pretrained.seconds + row.scratch.seconds;
    }
    rows_json.push_back(j);
  }
  nlohmann::json results = {
      {"checkpoint", checkpoint}, {"step", meta.step}, {"finetune", config}, {"rows", rows_json}};
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/results_finetune.json", results.dump(2) + "\n");
  std::string md =
      fmt::format(
          "# Fine-tuning results\n\ncheckpoint `{}` (step {}); encoder + linear phone head on "
          "`{}` features, {} steps of {} crops of {} samples, lr {:g} (encoder) / {:g} (head)\n\n",
          checkpoint, meta.step, r.finetune.features, r.finetune.steps, r.finetune.batch_size,
          r.finetune.window, r.finetune.encoder_lr, r.finetune.head_lr) +
      eval::finetune_markdown(rows);
  write_file_atomic(out_dir + "/results_finetune.md", md);
  return rows;
}

}  // namespace contra::train
