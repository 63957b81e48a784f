// contra audio info FILE...: rate, channels, duration, peak of audio files.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands/commands.h"
#include "contra/data/audio.h"

namespace contra::cli {

namespace {
struct AudioInfoOptions {
  std::vector<std::string> files;
  bool json = false;
};

int run_audio_info(const AudioInfoOptions& options) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& file : options.files) {
    data::AudioInfo info = data::audio_info(file);
    if (options.json) {
      all.push_back({{"file", file},
                     {"format", info.format},
                     {"subtype", info.subtype},
                     {"sample_rate", info.sample_rate},
                     {"channels", info.channels},
                     {"frames", info.frames},
                     {"duration_s", info.duration_s},
                     {"peak", info.peak}});
    } else {
      std::printf(
          "%s\n  format      %s %s\n  rate        %lld Hz\n  channels    %lld\n"
          "  frames      %lld\n  duration    %.3f s\n  peak        %.4f (%.1f dBFS)\n",
          file.c_str(), info.format.c_str(), info.subtype.c_str(),
          static_cast<long long>(info.sample_rate), static_cast<long long>(info.channels),
          static_cast<long long>(info.frames), info.duration_s, info.peak,
          info.peak > 0 ? 20.0 * std::log10(info.peak) : -INFINITY);
    }
  }
  if (options.json) std::printf("%s\n", all.dump(2).c_str());
  return 0;
}
}  // namespace

void register_audio(CLI::App& app) {
  auto* audio = app.add_subcommand("audio", "audio file tools");
  audio->require_subcommand(1);
  auto options = std::make_shared<AudioInfoOptions>();
  auto* info =
      audio->add_subcommand("info", "print rate, channels, duration and peak of audio files");
  info->add_option("files", options->files, "WAV, FLAC or OGG files")->required();
  info->add_flag("--json", options->json, "print JSON");
  info->callback([options] { set_runner([options] { return run_audio_info(*options); }); });
}

}  // namespace contra::cli
