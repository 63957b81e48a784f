// contra corpus speech: generate the built-in phone-aligned speech corpus (espeak-ng workers).
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/core/config.h"
#include "contra/core/fs.h"
#include "contra/data/speech_corpus.h"

namespace contra::cli {

namespace {
struct CorpusSpeechOptions {
  ConfigOptions config;
  std::string out;
  std::optional<std::int64_t> speakers, utterances, seed, jobs;
  bool no_degrade = false;
  bool force = false;
  bool if_missing = false;
  bool json = false;
};

void print_stats(const data::CorpusStats& s, bool json, bool generated) {
  if (json) {
    nlohmann::json j = {{"dir", s.out_dir},
                        {"speakers", s.speakers},
                        {"utterances", s.utterances},
                        {"train_utterances", s.train_utterances},
                        {"test_utterances", s.test_utterances},
                        {"hours", s.hours},
                        {"frames", s.frames},
                        {"phone_classes", s.phone_classes},
                        {"silence_fraction", s.silence_fraction}};
    if (generated) j["seconds"] = s.seconds;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("corpus            %s\n", s.out_dir.c_str());
  std::printf("speakers          %lld\n", static_cast<long long>(s.speakers));
  std::printf("utterances        %lld (train %lld, test %lld)\n",
              static_cast<long long>(s.utterances), static_cast<long long>(s.train_utterances),
              static_cast<long long>(s.test_utterances));
  std::printf("audio             %.2f h (%lld frames of 10 ms)\n", s.hours,
              static_cast<long long>(s.frames));
  std::printf("phone classes     %lld (SIL %.1f%% of frames)\n",
              static_cast<long long>(s.phone_classes), 100.0 * s.silence_fraction);
  if (generated) std::printf("generation time   %.1f s\n", s.seconds);
}

int run_corpus_speech(const CorpusSpeechOptions& o) {
  if (o.if_missing && path_exists(o.out + "/corpus.json")) {
    print_stats(data::read_corpus_stats(o.out), o.json, false);
    return 0;
  }
  ConfigTree tree = o.config.config.empty() ? ConfigTree() : ConfigTree::load_file(o.config.config);
  tree.check_sections({"corpus"});
  if (o.speakers) tree.set(fmt::format("corpus.speakers={}", *o.speakers));
  if (o.utterances) tree.set(fmt::format("corpus.utterances={}", *o.utterances));
  if (o.seed) tree.set(fmt::format("corpus.seed={}", *o.seed));
  if (o.jobs) tree.set(fmt::format("corpus.jobs={}", *o.jobs));
  if (o.no_degrade) tree.set("corpus.degrade=false");
  for (const auto& s : o.config.sets) tree.set(s);
  auto config = tree.get<data::SpeechCorpusConfig>("corpus");
  auto stats = data::generate_speech_corpus(config, o.out, o.force);
  print_stats(stats, o.json, true);
  return 0;
}
}  // namespace

void register_corpus(CLI::App& app) {
  auto* corpus = app.add_subcommand("corpus", "generate built-in corpora");
  corpus->require_subcommand(1);
  auto o = std::make_shared<CorpusSpeechOptions>();
  auto* speech = corpus->add_subcommand("speech",
                                        "synthesise the phone-aligned speech corpus (LibriSpeech "
                                        "layout + CPC alignments) with espeak-ng");
  speech->add_option("--out,-o", o->out, "output folder")->required();
  speech->add_option("--speakers", o->speakers, "number of speakers (default 48)");
  speech->add_option("--utterances", o->utterances, "utterances per speaker (default 40)");
  speech->add_option("--seed", o->seed, "seed (default 1)");
  speech->add_option("--jobs,-j", o->jobs, "parallel synthesiser processes (default: all cores)");
  speech->add_flag("--no-degrade", o->no_degrade, "studio-clean audio (no noise, reverb, gain)");
  speech->add_flag("--force", o->force, "replace an existing output folder");
  speech->add_flag("--if-missing", o->if_missing,
                   "do nothing but print the statistics when the corpus already exists");
  speech->add_flag("--json", o->json, "print the statistics as JSON");
  add_config_options(speech, o->config);
  speech->callback([o] { set_runner([o] { return run_corpus_speech(*o); }); });
}

}  // namespace contra::cli
