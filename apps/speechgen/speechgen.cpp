// SPDX-License-Identifier: GPL-3.0-or-later
// contra-speechgen: the espeak-ng speech worker of contra's built-in corpus.
// Copyright 2026 the contra authors.
//
// This program is free software: you can redistribute it and/or modify it under the terms of the
// GNU General Public License as published by the Free Software Foundation, either version 3 of the
// License, or (at your option) any later version. It links libespeak-ng (GPL-3.0-or-later); see
// LICENSE-NOTE.md.
//
// Protocol (driven by `contra corpus speech`, one fresh process per speaker, because espeak-ng
// keeps global, thread-unsafe state and reproduces audio byte for byte only for the same ordered
// calls in a fresh process):
//
//   contra-speechgen --jobs FILE --out DIR
//     FILE: UTF-8 TSV, one utterance a line: id \t voice \t variant \t pitch \t range \t rate \t
//     text DIR/<id>.f32: mono float32 little-endian samples at 16 kHz (resampled from 22050 Hz,
//     libsoxr HQ) DIR/<id>.phn: one phoneme a line, "<start sample at 16 kHz> <espeak mnemonic>",
//     then "END <samples>" Both are written under temporary names and renamed when complete.
//   contra-speechgen --list-variants     the variant names of this espeak-ng installation
//   contra-speechgen --check VOICE VARIANT   exit 0 when both exist
//
// Exit codes: 0 success, 2 bad input (message "error: ..." on stderr), 1 internal failure.
#include <dirent.h>
#include <espeak-ng/speak_lib.h>
#include <soxr.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int kOutRate = 16000;

struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Phone {
  long sample;  // at the synthesiser's rate, within the current espeak_Synth call
  std::string symbol;
};

struct Capture {
  std::vector<short> pcm;
  std::vector<Phone> phones;
};

int synth_callback(short* wav, int n, espeak_EVENT* events) {
  auto* capture = static_cast<Capture*>(events ? events->user_data : nullptr);
  if (!capture) return 0;
  if (wav && n > 0) capture->pcm.insert(capture->pcm.end(), wav, wav + n);
  for (espeak_EVENT* ev = events; ev && ev->type != espeakEVENT_LIST_TERMINATED; ++ev) {
    if (ev->type == espeakEVENT_PHONEME) {
      char name[9] = {0};
      std::memcpy(name, ev->id.string, 8);  // not always NUL-terminated
      capture->phones.push_back({ev->sample, name});
    }
  }
  return 0;
}

std::string data_path() {
  const char* path = nullptr;
  espeak_Info(&path);
  return path ? path : "";
}

std::vector<std::string> list_variants() {
  std::vector<std::string> names;
  std::string dir = data_path() + "/voices/!v";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool variant_exists(const std::string& variant) {
  if (variant.empty() || variant.find('/') != std::string::npos) return false;
  struct stat st {};
  return stat((data_path() + "/voices/!v/" + variant).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void set_voice(const std::string& voice, const std::string& variant) {
  // espeak-ng silently ignores an unknown variant: check the file ourselves.
  if (!variant_exists(variant)) throw BadInput("unknown voice variant '" + variant + "'");
  std::string name = voice + "+" + variant;
  if (espeak_SetVoiceByName(name.c_str()) != EE_OK) {
    throw BadInput("unknown voice '" + voice + "' (espeak-ng cannot load '" + name + "')");
  }
}

int parse_int(const std::string& text, const std::string& what, int lo, int hi) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi) {
    throw BadInput(what + ": expected an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "] (got '" + text + "')");
  }
  return static_cast<int>(v);
}

std::vector<float> resample_to_16k(const std::vector<short>& pcm, int in_rate) {
  std::vector<float> in(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) in[i] = pcm[i] / 32768.0f;
  size_t out_len = static_cast<size_t>(std::llround(double(in.size()) * kOutRate / in_rate));
  std::vector<float> out(out_len + 16);
  size_t done = 0;
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t err = soxr_oneshot(in_rate, kOutRate, 1, in.data(), in.size(), nullptr, out.data(),
                                  out.size(), &done, &io, &q, nullptr);
  if (err) throw std::runtime_error(std::string("soxr: ") + err);
  out.resize(std::min(done, out_len));
  return out;
}

void write_atomic(const std::string& path, const void* data, size_t bytes) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot create '" + tmp + "': " + std::strerror(errno));
  bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("writing '" + path + "': " + std::strerror(errno));
  }
}

int run_jobs(const std::string& jobs_path, const std::string& out_dir) {
  std::ifstream jobs(jobs_path);
  if (!jobs) throw BadInput("cannot open jobs file '" + jobs_path + "'");
  int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr,
                               espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
  if (rate <= 0) throw std::runtime_error("espeak_Initialize failed (espeak-ng-data missing?)");
  espeak_SetSynthCallback(synth_callback);

  std::string line;
  int line_no = 0;
  std::string current_voice;
  while (std::getline(jobs, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, '\t');) f.push_back(field);
    auto where = jobs_path + ":" + std::to_string(line_no) + ": ";
    if (f.size() != 7) {
      throw BadInput(where + "expected 7 tab-separated fields (got " + std::to_string(f.size()) +
                     ")");
    }
    const std::string& id = f[0];
    if (id.empty() || id.find('/') != std::string::npos)
      throw BadInput(where + "bad id '" + id + "'");
    if (f[6].empty()) throw BadInput(where + "empty text");
    try {
      if (current_voice != f[1] + "+" + f[2]) {
        set_voice(f[1], f[2]);
        current_voice = f[1] + "+" + f[2];
      }
      espeak_SetParameter(espeakPITCH, parse_int(f[3], "pitch", 0, 100), 0);
      espeak_SetParameter(espeakRANGE, parse_int(f[4], "range", 0, 100), 0);
      espeak_SetParameter(espeakRATE, parse_int(f[5], "rate", 80, 450), 0);
    } catch (const BadInput& e) {
      throw BadInput(where + e.what());
    }

    Capture capture;
    espeak_ERROR err = espeak_Synth(f[6].c_str(), f[6].size() + 1, 0, POS_CHARACTER, 0,
                                    espeakCHARS_UTF8, nullptr, &capture);
    if (err != EE_OK)
      throw std::runtime_error(where + "espeak_Synth failed (" + std::to_string(err) + ")");
    if (capture.pcm.empty() || capture.phones.empty()) {
      throw BadInput(where + "synthesis produced no audio for '" + f[6] + "'");
    }
    std::vector<float> audio = resample_to_16k(capture.pcm, rate);

    std::ostringstream phn;
    for (const Phone& p : capture.phones) {
      long start = static_cast<long>(static_cast<long long>(p.sample) * kOutRate / rate);
      if (start > static_cast<long>(audio.size())) start = static_cast<long>(audio.size());
      phn << start << ' ' << (p.symbol.empty() ? "_" : p.symbol) << '\n';
    }
    phn << "END " << audio.size() << '\n';
    std::string phn_text = phn.str();
    write_atomic(out_dir + "/" + id + ".f32", audio.data(), audio.size() * sizeof(float));
    write_atomic(out_dir + "/" + id + ".phn", phn_text.data(), phn_text.size());
  }
  espeak_Terminate();
  return 0;
}

void usage() {
  std::fprintf(stderr,
               "usage: contra-speechgen --jobs FILE --out DIR\n"
               "       contra-speechgen --list-variants\n"
               "       contra-speechgen --check VOICE VARIANT\n"
               "       contra-speechgen --version\n"
               "GPL-3.0-or-later; the espeak-ng worker of `contra corpus speech`.\n");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && args[0] == "--version") {
      std::printf("contra-speechgen (espeak-ng %s)\n", espeak_Info(nullptr));
      return 0;
    }
    if (args.size() == 1 && args[0] == "--list-variants") {
      if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT) <=
          0) {
        throw std::runtime_error("espeak_Initialize failed");
      }
      for (const auto& v : list_variants()) std::printf("%s\n", v.c_str());
      return 0;
    }
    if (args.size() == 3 && args[0] == "--check") {
      if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT) <=
          0) {
        throw std::runtime_error("espeak_Initialize failed");
      }
      set_voice(args[1], args[2]);
      return 0;
    }
    if (args.size() == 4 && args[0] == "--jobs" && args[2] == "--out")
      return run_jobs(args[1], args[3]);
    if (args.size() == 4 && args[0] == "--out" && args[2] == "--jobs")
      return run_jobs(args[3], args[1]);
    usage();
    return 2;
  } catch (const BadInput& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
