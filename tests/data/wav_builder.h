#pragma once
// Builds WAV files byte by byte, so tests can make every kind of bad header.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace contra::testing {

struct WavSpec {
  std::uint16_t format = 1;  // 1 = PCM, 3 = IEEE float
  std::uint16_t channels = 1;
  std::uint32_t rate = 16000;
  std::uint16_t bits = 16;
  // data-chunk size written in the header; -1 = the real size
  std::int64_t declared_data_bytes = -1;
};

inline void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_u16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}

/// A WAV file whose data chunk holds `payload` (already encoded samples).
inline std::string wav_bytes(const WavSpec& spec, const std::string& payload) {
  std::uint32_t data_bytes = spec.declared_data_bytes < 0
                                 ? static_cast<std::uint32_t>(payload.size())
                                 : static_cast<std::uint32_t>(spec.declared_data_bytes);
  std::string s = "RIFF";
  put_u32(s, 36 + data_bytes);
  s += "WAVEfmt ";
  put_u32(s, 16);
  put_u16(s, spec.format);
  put_u16(s, spec.channels);
  put_u32(s, spec.rate);
  put_u32(s, spec.rate * spec.channels * (spec.bits / 8));
  put_u16(s, static_cast<std::uint16_t>(spec.channels * (spec.bits / 8)));
  put_u16(s, spec.bits);
  s += "data";
  put_u32(s, data_bytes);
  return s + payload;
}

/// 16-bit PCM payload of interleaved samples in [-1, 1].
inline std::string pcm16(const std::vector<float>& samples) {
  std::string s;
  for (float x : samples) {
    float c = x > 1 ? 1 : (x < -1 ? -1 : x);
    put_u16(s, static_cast<std::uint16_t>(static_cast<std::int16_t>(c * 32767.0f)));
  }
  return s;
}

/// 32-bit float payload.
inline std::string f32(const std::vector<float>& samples) {
  std::string s(samples.size() * 4, '\0');
  std::memcpy(s.data(), samples.data(), s.size());
  return s;
}

}  // namespace contra::testing
