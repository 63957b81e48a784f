#include "contra/data/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <torch/torch.h>

#include "contra/core/error.h"
#include "contra/core/fs.h"

namespace contra::data {

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string format_name(int format) {
  SF_FORMAT_INFO info{};
  info.format = format;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &info, sizeof(info)) == 0 && info.name) {
    return info.name;
  }
  return fmt::format("0x{:x}", format);
}

std::string major_name(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV:
      return "WAV";
    case SF_FORMAT_FLAC:
      return "FLAC";
    case SF_FORMAT_OGG:
      return "OGG";
    case SF_FORMAT_AIFF:
      return "AIFF";
    case SF_FORMAT_W64:
      return "W64";
    case SF_FORMAT_RF64:
      return "RF64";
    default:
      return format_name(format & SF_FORMAT_TYPEMASK);
  }
}

std::string subtype_name(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
      return "PCM_S8";
    case SF_FORMAT_PCM_U8:
      return "PCM_U8";
    case SF_FORMAT_PCM_16:
      return "PCM_16";
    case SF_FORMAT_PCM_24:
      return "PCM_24";
    case SF_FORMAT_PCM_32:
      return "PCM_32";
    case SF_FORMAT_FLOAT:
      return "FLOAT";
    case SF_FORMAT_DOUBLE:
      return "DOUBLE";
    case SF_FORMAT_VORBIS:
      return "VORBIS";
    case SF_FORMAT_OPUS:
      return "OPUS";
    default:
      return format_name(format & SF_FORMAT_SUBMASK);
  }
}

struct Decoded {
  std::vector<float> mono;  // mixed-down samples
  std::int64_t sample_rate = 0;
  std::int64_t channels = 0;
  double peak = 0;
  int format = 0;
};

// Opens with every bad-input check on the header.
SndfilePtr open_checked(const std::string& path, double max_duration_s, SF_INFO& info) {
  if (!path_exists(path)) throw DataError(fmt::format("reading '{}': no such file", path));
  std::uint64_t bytes = 0;
  try {
    bytes = file_size(path);
  } catch (const IoError& e) {
    throw DataError(fmt::format("reading '{}': not a readable file", path));
  }
  if (bytes == 0) throw DataError(fmt::format("reading '{}': empty file (0 bytes)", path));

  info = SF_INFO{};
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    throw DataError(
        fmt::format("reading '{}': not a readable audio file ({})", path, sf_strerror(nullptr)));
  }
  if (info.channels <= 0) {
    throw DataError(fmt::format("reading '{}': zero channels in header (expected >= 1)", path));
  }
  if (info.channels > 256) {
    throw DataError(fmt::format("reading '{}': absurd channel count {} (expected 1..256)", path,
                                info.channels));
  }
  if (info.samplerate < 1000 || info.samplerate > 384000) {
    throw DataError(fmt::format("reading '{}': absurd sample rate {} Hz (expected 1000..384000)",
                                path, info.samplerate));
  }
  const std::int64_t max_frames =
      static_cast<std::int64_t>(max_duration_s * static_cast<double>(info.samplerate));
  if (info.frames < 0 || info.frames == SF_COUNT_MAX) {
    throw DataError(fmt::format(
        "reading '{}': unknown or absurd frame count in header ({}); the file is likely truncated",
        path, static_cast<long long>(info.frames)));
  }
  if (info.frames > max_frames) {
    throw DataError(fmt::format("reading '{}': {} frames is longer than the limit of {:.0f} s",
                                path, static_cast<long long>(info.frames), max_duration_s));
  }
  return file;
}

// Decodes in bounded chunks so that a lying header can never make us allocate more than the data
// really holds (or more than max_duration_s of audio).
Decoded decode(const std::string& path, double max_duration_s) {
  SF_INFO info{};
  SndfilePtr file = open_checked(path, max_duration_s, info);
  const std::int64_t max_frames =
      static_cast<std::int64_t>(max_duration_s * static_cast<double>(info.samplerate));
  Decoded out;
  out.sample_rate = info.samplerate;
  out.channels = info.channels;
  out.format = info.format;
  sf_command(file.get(), SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);

  constexpr sf_count_t kChunk = 1 << 15;
  std::vector<float> chunk(static_cast<std::size_t>(kChunk * info.channels));
  // Reserve only what the (checked) header claims, capped: the vector grows if the header
  // undercounts.
  out.mono.reserve(static_cast<std::size_t>(std::min<std::int64_t>(info.frames, 1 << 24)));
  const float scale = 1.0f / static_cast<float>(info.channels);
  std::int64_t total = 0;
  while (true) {
    sf_count_t got = sf_readf_float(file.get(), chunk.data(), kChunk);
    if (got < 0) break;
    if (got == 0) break;
    total += got;
    if (total > max_frames) {
      throw DataError(
          fmt::format("reading '{}': longer than the limit of {:.0f} s", path, max_duration_s));
    }
    for (sf_count_t i = 0; i < got; ++i) {
      float sum = 0;
      for (int c = 0; c < info.channels; ++c) {
        float v = chunk[static_cast<std::size_t>(i * info.channels + c)];
        if (!std::isfinite(v)) {
          throw DataError(
              fmt::format("reading '{}': non-finite sample at frame {}", path, total - got + i));
        }
        out.peak = std::max<double>(out.peak, std::fabs(v));
        sum += v;
      }
      out.mono.push_back(sum * scale);
    }
    if (got < kChunk) break;
  }
  int err = sf_error(file.get());
  if (err != SF_ERR_NO_ERROR) {
    throw DataError(fmt::format("reading '{}': decoding failed after {} frames ({})", path, total,
                                sf_error_number(err)));
  }
  if (total != info.frames) {
    throw DataError(fmt::format("reading '{}': truncated (header says {} frames, decoded {})", path,
                                static_cast<long long>(info.frames), total));
  }
  if (total == 0) throw DataError(fmt::format("reading '{}': no audio frames", path));
  return out;
}

}  // namespace

std::vector<float> resample(const float* samples, std::int64_t count, std::int64_t in_rate,
                            std::int64_t out_rate) {
  auto valid = [](std::int64_t r) { return r >= 1000 && r <= 384000; };
  if (!valid(in_rate) || !valid(out_rate)) {
    throw DataError(fmt::format("resample: unsupported rates {} -> {} Hz (expected 1000..384000)",
                                in_rate, out_rate));
  }
  double ratio = static_cast<double>(out_rate) / static_cast<double>(in_rate);
  if (ratio > 64 || ratio < 1.0 / 64) {
    throw DataError(
        fmt::format("resample: unsupported ratio {} -> {} Hz (at most 64x)", in_rate, out_rate));
  }
  if (in_rate == out_rate) return std::vector<float>(samples, samples + count);
  std::size_t out_len = static_cast<std::size_t>(
      std::llround(static_cast<double>(count) * static_cast<double>(out_rate) / in_rate));
  std::vector<float> out(out_len + 1);
  std::size_t done = 0;
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t error = soxr_oneshot(static_cast<double>(in_rate), static_cast<double>(out_rate), 1,
                                    samples, static_cast<std::size_t>(count), nullptr, out.data(),
                                    out.size(), &done, &io, &quality, nullptr);
  if (error) throw DataError(fmt::format("resample {} -> {} Hz: {}", in_rate, out_rate, error));
  out.resize(std::min(done, out_len));
  return out;
}

torch::Tensor read_audio(const std::string& path, const AudioReadOptions& options) {
  check<ConfigError>(options.sample_rate >= 0, "read_audio: sample_rate must be >= 0 (got {})",
                     options.sample_rate);
  Decoded decoded = decode(path, options.max_duration_s);
  std::vector<float> samples = std::move(decoded.mono);
  if (options.sample_rate > 0 && decoded.sample_rate != options.sample_rate) {
    if (!options.resample) {
      throw DataError(fmt::format("reading '{}': sample rate {} Hz (expected {} Hz)", path,
                                  decoded.sample_rate, options.sample_rate));
    }
    try {
      samples = resample(samples.data(), static_cast<std::int64_t>(samples.size()),
                         decoded.sample_rate, options.sample_rate);
    } catch (const DataError& e) {
      throw DataError(fmt::format("reading '{}': {}", path, e.what()));
    }
  }
  auto n = static_cast<std::int64_t>(samples.size());
  torch::Tensor out = torch::empty({1, n}, torch::kFloat32);
  std::memcpy(out.data_ptr<float>(), samples.data(), samples.size() * sizeof(float));
  if (options.normalize) {
    float peak = out.abs().max().item<float>();
    if (peak > 1e-8f) out.div_(peak);
  }
  return out;
}

AudioInfo audio_info(const std::string& path) {
  Decoded decoded = decode(path, 24 * 3600.0);
  AudioInfo info;
  info.sample_rate = decoded.sample_rate;
  info.channels = decoded.channels;
  info.frames = static_cast<std::int64_t>(decoded.mono.size());
  info.duration_s = static_cast<double>(info.frames) / static_cast<double>(info.sample_rate);
  info.peak = decoded.peak;
  info.format = major_name(decoded.format);
  info.subtype = subtype_name(decoded.format);
  return info;
}

AudioInfo probe_audio(const std::string& path) {
  SF_INFO sf{};
  SndfilePtr file = open_checked(path, 24 * 3600.0, sf);
  AudioInfo info;
  info.sample_rate = sf.samplerate;
  info.channels = sf.channels;
  info.frames = sf.frames;
  info.duration_s = static_cast<double>(sf.frames) / sf.samplerate;
  info.format = major_name(sf.format);
  info.subtype = subtype_name(sf.format);
  return info;
}

AudioFormat audio_format_for(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == "flac") return AudioFormat::kFlac;
  if (ext == "wav") return AudioFormat::kWav;
  throw DataError(
      fmt::format("writing '{}': unsupported extension '.{}' (expected .flac or .wav)", path, ext));
}

void write_audio(const std::string& path, const float* samples, std::int64_t count,
                 std::int64_t sample_rate) {
  AudioFormat format = audio_format_for(path);
  if (sample_rate < 1000 || sample_rate > 384000) {
    throw DataError(fmt::format("writing '{}': unsupported sample rate {} Hz", path, sample_rate));
  }
  for (std::int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(samples[i])) {
      throw DataError(fmt::format("writing '{}': non-finite sample at index {}", path, i));
    }
  }
  SF_INFO info{};
  info.samplerate = static_cast<int>(sample_rate);
  info.channels = 1;
  info.format = (format == AudioFormat::kFlac ? SF_FORMAT_FLAC : SF_FORMAT_WAV) | SF_FORMAT_PCM_16;
  std::string temp = temp_sibling(path);
  SNDFILE* raw = sf_open(temp.c_str(), SFM_WRITE, &info);
  if (!raw) {
    throw IoError(fmt::format("writing '{}': {}", path, sf_strerror(nullptr)));
  }
  SndfilePtr file(raw);
  auto fail = [&](const std::string& why) {
    file.reset();
    std::remove(temp.c_str());
    throw IoError(fmt::format("writing '{}': {}", path, why));
  };
  // Without clipping, libsndfile's FLAC writer silently stops at the first |x| > 1 (see
  // docs/data.md).
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  constexpr std::int64_t kChunk = 1 << 16;
  for (std::int64_t offset = 0; offset < count; offset += kChunk) {
    sf_count_t n = static_cast<sf_count_t>(std::min(kChunk, count - offset));
    sf_count_t written = sf_writef_float(file.get(), samples + offset, n);
    if (written != n) {
      fail(fmt::format("wrote {} of {} frames ({})", offset + written, count,
                       sf_strerror(file.get())));
    }
  }
  sf_write_sync(file.get());
  if (sf_close(file.release()) != 0) fail("closing failed");
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw IoError(fmt::format("writing '{}': rename failed ({})", path, std::strerror(errno)));
  }
}

void write_audio(const std::string& path, const torch::Tensor& samples, std::int64_t sample_rate) {
  TORCH_CHECK(samples.dim() == 1 || (samples.dim() == 2 && samples.size(0) == 1),
              "write_audio: expected (samples) or (1, samples), got ", samples.sizes());
  torch::Tensor flat = samples.detach().to(torch::kCPU, torch::kFloat32).contiguous().view({-1});
  write_audio(path, flat.data_ptr<float>(), flat.numel(), sample_rate);
}

}  // namespace contra::data
