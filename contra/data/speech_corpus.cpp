#include "contra/data/speech_corpus.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "contra/core/config.h"
#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/core/logging.h"
#include "contra/core/progress.h"
#include "contra/core/subprocess.h"
#include "contra/data/audio.h"
#include "contra/data/librispeech.h"
#include "contra/data/sentences.h"

namespace contra::data {
namespace fs = std::filesystem;

namespace {
constexpr int kRate = 16000;

std::string speaker_id(std::int64_t s) { return std::to_string(1000 + s); }
std::string chapter_id(std::int64_t s) { return std::to_string(20000 + s); }
std::string utterance_id(std::int64_t s, std::int64_t u) {
  return fmt::format("{}-{}-{:04d}", speaker_id(s), chapter_id(s), u);
}

// LibriSpeech transcripts: upper case, letters, digits, apostrophes and single spaces.
std::string transcript_text(const std::string& sentence) {
  std::string out;
  for (char c : sentence) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '\'') {
      out.push_back(static_cast<char>(std::toupper(u)));
    } else if (!out.empty() && out.back() != ' ') {
      out.push_back(' ');
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool is_pause(const std::string& symbol) { return symbol.empty() || symbol[0] == '_'; }

struct UtteranceResult {
  std::int64_t samples = 0;
  std::vector<std::int64_t> starts;
  std::vector<std::string> symbols;
};

std::string find_speechgen(const SpeechCorpusConfig& config) {
  std::string path =
      config.speechgen.empty() ? executable_dir() + "/contra-speechgen" : config.speechgen;
  if (!path_exists(path)) {
    throw UnavailableError(fmt::format(
        "corpus speech: the synthesiser '{}' is missing (build target contra_speechgen, or set "
        "corpus.speechgen)",
        path));
  }
  return path;
}

std::vector<std::string> list_lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Parses a worker's .phn file: "<start> <symbol>" lines then "END <samples>".
void read_phones(const std::string& path, UtteranceResult& result) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("speech worker output '{}' missing", path));
  std::string a, b;
  bool ended = false;
  while (in >> a >> b) {
    if (a == "END") {
      result.samples = std::stoll(b);
      ended = true;
      break;
    }
    result.starts.push_back(std::stoll(a));
    result.symbols.push_back(b);
  }
  if (!ended || result.starts.empty()) {
    throw DataError(fmt::format("speech worker output '{}' is incomplete", path));
  }
}

std::vector<float> read_raw(const std::string& path, std::int64_t expected) {
  std::string bytes = read_file(path);
  if (bytes.size() % sizeof(float) != 0 || std::int64_t(bytes.size() / sizeof(float)) != expected) {
    throw DataError(fmt::format("speech worker output '{}' has {} bytes (expected {} samples)",
                                path, bytes.size(), expected));
  }
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace

void SpeechCorpusConfig::validate() const {
  check<ConfigError>(speakers >= 2 && speakers <= 10000, "speakers: must be in 2..10000 (got {})",
                     speakers);
  check<ConfigError>(utterances >= 2 && utterances <= 10000,
                     "utterances: must be in 2..10000 per speaker (got {})", utterances);
  check<ConfigError>(text == "sentences" || text == "digits",
                     "text: must be sentences or digits (got '{}')", text);
  check<ConfigError>(test_fraction > 0 && test_fraction < 1,
                     "test_fraction: must be in (0, 1) (got {})", test_fraction);
  check<ConfigError>(jobs >= 0 && jobs <= 256, "jobs: must be in 0..256 (got {})", jobs);
  check<ConfigError>(!voices.empty(), "voices: must not be empty");
  check<ConfigError>(!variants.empty(), "variants: must not be empty");
  for (const auto& v : variants) {
    check<ConfigError>(!v.empty() && v.find_first_of("/+\t ") == std::string::npos,
                       "variants: invalid name '{}'", v);
  }
  for (const auto& v : voices) {
    check<ConfigError>(!v.empty() && v.find_first_of("/+\t ") == std::string::npos,
                       "voices: invalid name '{}'", v);
  }
  check<ConfigError>(0 <= pitch_min && pitch_min <= pitch_max && pitch_max <= 100,
                     "pitch_min: expected 0 <= pitch_min <= pitch_max <= 100 (got {}, {})",
                     pitch_min, pitch_max);
  check<ConfigError>(0 <= range_min && range_min <= range_max && range_max <= 100,
                     "range_min: expected 0 <= range_min <= range_max <= 100 (got {}, {})",
                     range_min, range_max);
  check<ConfigError>(80 <= rate_min && rate_min <= rate_max && rate_max <= 450,
                     "rate_min: expected 80 <= rate_min <= rate_max <= 450 (got {}, {})", rate_min,
                     rate_max);
  degradation.validate();
}

std::vector<SpeakerSpec> make_speakers(const SpeechCorpusConfig& config) {
  SplitMix64 rng(mix_seed(static_cast<std::uint64_t>(config.seed), 0x5be4c));
  // Every (variant, voice) pair, shuffled; speakers take pairs whose variant is least used so far,
  // so that the first |variants| speakers all differ in timbre, the next ones in accent and pitch.
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < config.variants.size(); ++i) {
    for (std::size_t j = 0; j < config.voices.size(); ++j) pairs.emplace_back(i, j);
  }
  for (std::size_t i = pairs.size(); i > 1; --i) std::swap(pairs[i - 1], pairs[rng.below(i)]);
  std::vector<int> variant_uses(config.variants.size(), 0);
  std::vector<bool> taken(pairs.size(), false);
  std::vector<SpeakerSpec> out;
  for (std::int64_t s = 0; s < config.speakers; ++s) {
    if (std::all_of(taken.begin(), taken.end(), [](bool t) { return t; })) {
      std::fill(taken.begin(), taken.end(), false);
    }
    std::size_t best = pairs.size();
    for (std::size_t p = 0; p < pairs.size(); ++p) {
      if (taken[p]) continue;
      if (best == pairs.size() || variant_uses[pairs[p].first] < variant_uses[pairs[best].first]) {
        best = p;
      }
    }
    taken[best] = true;
    ++variant_uses[pairs[best].first];
    SpeakerSpec spec;
    spec.id = speaker_id(s);
    spec.variant = config.variants[pairs[best].first];
    spec.voice = config.voices[pairs[best].second];
    spec.pitch =
        config.pitch_min + std::int64_t(rng.below(config.pitch_max - config.pitch_min + 1));
    spec.range =
        config.range_min + std::int64_t(rng.below(config.range_max - config.range_min + 1));
    spec.rate = config.rate_min + std::int64_t(rng.below(config.rate_max - config.rate_min + 1));
    out.push_back(spec);
  }
  return out;
}

std::vector<std::int16_t> label_frames(const std::vector<std::int64_t>& starts,
                                       const std::vector<std::int16_t>& ids, std::int64_t frames) {
  std::vector<std::int16_t> labels(static_cast<std::size_t>(frames), 0);
  std::size_t p = 0;
  std::int16_t current = 0;
  for (std::int64_t f = 0; f < frames; ++f) {
    std::int64_t centre = f * kSamplesPerFrame + kSamplesPerFrame / 2;
    while (p < starts.size() && starts[p] <= centre) current = ids[p++];
    labels[static_cast<std::size_t>(f)] = current;
  }
  return labels;
}

CorpusStats generate_speech_corpus(const SpeechCorpusConfig& config, const std::string& out_dir,
                                   bool overwrite) {
  config.validate();
  auto start_time = std::chrono::steady_clock::now();
  if (path_exists(out_dir) && !fs::is_empty(out_dir) && !overwrite) {
    throw IoError(
        fmt::format("corpus speech: output '{}' exists and is not empty (use --force to "
                    "replace it)",
                    out_dir));
  }
  const std::string speechgen = find_speechgen(config);
  {  // Validate voices and variants up front: espeak-ng silently ignores unknown variants.
    auto listed = run_process({speechgen, "--list-variants"});
    if (listed.exit_code != 0) {
      throw UnavailableError(fmt::format("'{} --list-variants' failed: {}", speechgen, listed.err));
    }
    auto available = list_lines(listed.out);
    for (const auto& v : config.variants) {
      if (std::find(available.begin(), available.end(), v) == available.end()) {
        throw ConfigError(
            fmt::format("corpus.variants: unknown espeak-ng variant '{}' (available: {})", v,
                        fmt::join(available, ", ")));
      }
    }
    for (const auto& voice : config.voices) {
      auto checked = run_process({speechgen, "--check", voice, config.variants.front()});
      if (checked.exit_code != 0) {
        throw ConfigError(fmt::format("corpus.voices: espeak-ng cannot load voice '{}'", voice));
      }
    }
  }

  const std::vector<SpeakerSpec> speakers = make_speakers(config);
  const std::int64_t S = config.speakers, U = config.utterances;
  std::vector<std::string> sentences;
  {
    SentenceGenerator gen(mix_seed(static_cast<std::uint64_t>(config.seed), 0x7e47));
    for (std::int64_t i = 0; i < S * U; ++i) {
      sentences.push_back(config.text == "digits"
                              ? number_word(static_cast<int>((i % U + i / U) % 10))
                              : gen.next_unique());
    }
  }

  fs::path target = fs::absolute(out_dir);
  std::string tmp = temp_sibling(target.lexically_normal().string());
  if (!target.parent_path().empty()) make_dirs(target.parent_path().string());
  make_dirs(tmp + "/.work");
  struct Cleanup {
    std::string dir;
    bool keep = false;
    ~Cleanup() {
      if (!keep) remove_all(dir);
    }
  } cleanup{tmp};

  std::vector<UtteranceResult> results(static_cast<std::size_t>(S * U));
  std::atomic<std::int64_t> next_speaker{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mutex;
  Progress progress("synthesising", S * U, "utt");
  int jobs = static_cast<int>(config.jobs > 0 ? config.jobs
                                              : std::max(1u, std::thread::hardware_concurrency()));
  jobs = static_cast<int>(std::min<std::int64_t>(jobs, S));

  auto work = [&]() {
    while (!failed) {
      std::int64_t s = next_speaker++;
      if (s >= S) return;
      try {
        const SpeakerSpec& spk = speakers[static_cast<std::size_t>(s)];
        std::string work_dir = tmp + "/.work/" + spk.id;
        make_dirs(work_dir);
        std::string jobs_file = work_dir + "/jobs.tsv";
        std::string jobs_text;
        for (std::int64_t u = 0; u < U; ++u) {
          jobs_text += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\n", utterance_id(s, u), spk.voice,
                                   spk.variant, spk.pitch, spk.range, spk.rate,
                                   sentences[static_cast<std::size_t>(s * U + u)]);
        }
        write_file_atomic(jobs_file, jobs_text);
        ProcessResult r = run_process({speechgen, "--jobs", jobs_file, "--out", work_dir});
        if (r.exit_code != 0) {
          std::string msg =
              fmt::format("speech worker for speaker {} failed (exit {}, signal {}): {}", spk.id,
                          r.exit_code, r.signal, r.err);
          if (r.exit_code == 2) throw DataError(msg);
          throw Error(msg);
        }
        std::string folder = fmt::format("{}/{}/{}", tmp, spk.id, chapter_id(s));
        make_dirs(folder);
        for (std::int64_t u = 0; u < U; ++u) {
          std::string id = utterance_id(s, u);
          UtteranceResult& res = results[static_cast<std::size_t>(s * U + u)];
          read_phones(work_dir + "/" + id + ".phn", res);
          std::vector<float> audio = read_raw(work_dir + "/" + id + ".f32", res.samples);
          if (config.degrade) {
            SplitMix64 rng(mix_seed(static_cast<std::uint64_t>(config.seed), 0xde9, s * U + u));
            degrade(audio, config.degradation, kRate, rng);
          } else {
            limit_peak(audio);
          }
          // Pad with silence to whole 10 ms frames: frames = samples / 160 exactly.
          std::size_t padded =
              (audio.size() + kSamplesPerFrame - 1) / kSamplesPerFrame * kSamplesPerFrame;
          audio.resize(padded, 0.0f);
          res.samples = static_cast<std::int64_t>(padded);
          write_audio(folder + "/" + id + ".flac", audio.data(), res.samples, kRate);
        }
        remove_all(work_dir);
        std::lock_guard<std::mutex> lock(mutex);
        progress.advance(U);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  progress.finish();

  // Phone inventory: pauses → SIL (0), other symbols sorted → 1..
  std::set<std::string> symbols;
  for (const auto& r : results) {
    for (const auto& sym : r.symbols) {
      if (!is_pause(sym)) symbols.insert(sym);
    }
  }
  std::map<std::string, std::int16_t> phone_ids;
  std::string phones_text = "0 SIL\n";
  std::int16_t next_id = 1;
  for (const auto& sym : symbols) {
    phone_ids[sym] = next_id;
    phones_text += fmt::format("{} {}\n", next_id, sym);
    ++next_id;
  }

  CorpusStats stats;
  stats.speakers = S;
  stats.utterances = S * U;
  stats.phone_classes = next_id;
  std::string alignments;
  std::int64_t silence_frames = 0, total_samples = 0;
  for (std::int64_t i = 0; i < S * U; ++i) {
    const UtteranceResult& r = results[static_cast<std::size_t>(i)];
    std::vector<std::int16_t> ids;
    for (const auto& sym : r.symbols) ids.push_back(is_pause(sym) ? 0 : phone_ids[sym]);
    std::int64_t frames = r.samples / kSamplesPerFrame;
    auto labels = label_frames(r.starts, ids, frames);
    alignments += utterance_id(i / U, i % U);
    for (auto l : labels) {
      alignments += ' ';
      alignments += std::to_string(l);
      silence_frames += (l == 0);
    }
    alignments += '\n';
    stats.frames += frames;
    total_samples += r.samples;
  }
  stats.hours = static_cast<double>(total_samples) / kRate / 3600.0;
  stats.silence_fraction = stats.frames ? double(silence_frames) / double(stats.frames) : 0.0;

  std::string train, test, speakers_tsv = "speaker\tvoice\tvariant\tpitch\trange\trate\n";
  for (std::int64_t s = 0; s < S; ++s) {
    const SpeakerSpec& spk = speakers[static_cast<std::size_t>(s)];
    speakers_tsv += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", spk.id, spk.voice, spk.variant,
                                spk.pitch, spk.range, spk.rate);
    std::string trans;
    for (std::int64_t u = 0; u < U; ++u) {
      trans += utterance_id(s, u) + " " +
               transcript_text(sentences[static_cast<std::size_t>(s * U + u)]) + "\n";
    }
    write_file_atomic(
        fmt::format("{}/{}/{}/{}-{}.trans.txt", tmp, spk.id, chapter_id(s), spk.id, chapter_id(s)),
        trans);
    // Split: every speaker in both; a seeded shuffle of its utterances picks the test ones.
    std::vector<std::int64_t> order(static_cast<std::size_t>(U));
    for (std::int64_t u = 0; u < U; ++u) order[static_cast<std::size_t>(u)] = u;
    SplitMix64 rng(mix_seed(static_cast<std::uint64_t>(config.seed), 0x5b1, s));
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    auto n_test =
        std::clamp<std::int64_t>(std::llround(double(U) * config.test_fraction), 1, U - 1);
    std::vector<bool> is_test(static_cast<std::size_t>(U), false);
    for (std::int64_t k = 0; k < n_test; ++k) is_test[static_cast<std::size_t>(order[k])] = true;
    for (std::int64_t u = 0; u < U; ++u) {
      (is_test[static_cast<std::size_t>(u)] ? test : train) += utterance_id(s, u) + "\n";
    }
    stats.test_utterances += n_test;
    stats.train_utterances += U - n_test;
  }

  ProcessResult version = run_process({speechgen, "--version"});
  nlohmann::json info = {
      {"generator", "contra corpus speech"},
      {"generator_version", kSpeechCorpusVersion},
      {"synthesiser", list_lines(version.out).empty() ? "" : list_lines(version.out)[0]},
      {"seed", config.seed},
      {"text", config.text},
      {"speakers", stats.speakers},
      {"utterances", stats.utterances},
      {"train_utterances", stats.train_utterances},
      {"test_utterances", stats.test_utterances},
      {"hours", stats.hours},
      {"frames", stats.frames},
      {"phone_classes", stats.phone_classes},
      {"silence_fraction", stats.silence_fraction},
      {"sample_rate", kRate},
      {"frame_rate", kRate / kSamplesPerFrame},
      {"frame_rule",
       "audio padded with silence to a multiple of 160 samples; frames = samples / 160; frame i is "
       "labelled with the last phone starting at or before sample 160*i + 80; pauses are SIL (0)"}};
  YAML::Node resolved(YAML::NodeType::Map);
  resolved["schema_version"] = kConfigSchemaVersion;
  resolved["corpus"] = to_yaml(config);

  write_file_atomic(tmp + "/converted_aligned_phones.txt", alignments);
  write_file_atomic(tmp + "/phones.txt", phones_text);
  write_file_atomic(tmp + "/train_split.txt", train);
  write_file_atomic(tmp + "/test_split.txt", test);
  write_file_atomic(tmp + "/speakers.tsv", speakers_tsv);
  write_file_atomic(tmp + "/config.yaml", yaml_text(resolved));
  write_file_atomic(tmp + "/corpus.json", info.dump(2) + "\n");
  remove_all(tmp + "/.work");

  // Move into place: an existing folder (overwrite) is moved aside first and removed only after.
  replace_directory(tmp, target.string(), "corpus speech");
  cleanup.keep = true;
  stats.out_dir = target.string();
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return stats;
}

CorpusStats read_corpus_stats(const std::string& dir) {
  std::string path = dir + "/corpus.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("reading '{}': {}", path, e.what()));
  } catch (const IoError&) {
    throw DataError(fmt::format("reading '{}': no corpus.json (not a generated corpus?)", path));
  }
  CorpusStats s;
  try {
    s.speakers = j.at("speakers");
    s.utterances = j.at("utterances");
    s.train_utterances = j.at("train_utterances");
    s.test_utterances = j.at("test_utterances");
    s.hours = j.at("hours");
    s.frames = j.at("frames");
    s.phone_classes = j.at("phone_classes");
    s.silence_fraction = j.value("silence_fraction", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("reading '{}': {}", path, e.what()));
  }
  s.out_dir = dir;
  return s;
}

}  // namespace contra::data
