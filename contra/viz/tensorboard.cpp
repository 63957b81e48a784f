#include "contra/viz/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"

namespace contra::viz {
namespace fs = std::filesystem;

namespace {

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

// ---- protobuf wire format (the subset an Event needs) ----
void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire));
}
template <class T>
void put_fixed(std::string& out, T value) {  // little-endian, as on every host contra builds for
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string event_header(std::int64_t step) {
  std::string e;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  put_key(e, 1, 1);  // wall_time: double
  put_fixed(e, now);
  put_key(e, 2, 0);  // step: int64
  put_varint(e, static_cast<std::uint64_t>(step));
  return e;
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// A bounded reader of protobuf fields; DataError on anything malformed.
struct Fields {
  std::string_view data;
  const std::string* where;
  std::size_t pos = 0;

  bool done() const { return pos >= data.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(fmt::format("{}: {}", *where, what));
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size()) fail("truncated varint");
      const auto byte = static_cast<unsigned char>(data[pos++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view take(std::size_t n) {
    if (n > data.size() - pos) fail("field runs past the end of its message");
    auto s = data.substr(pos, n);
    pos += n;
    return s;
  }
  template <class T>
  T fixed() {
    T v;
    std::memcpy(&v, take(sizeof(T)).data(), sizeof(T));
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        take(8);
        break;
      case 2:
        take(varint());
        break;
      case 5:
        take(4);
        break;
      default:
        fail(fmt::format("unsupported wire type {}", wire));
    }
  }
};

void expect_wire(const Fields& f, int wire, int expected, const char* field) {
  if (wire != expected)
    f.fail(fmt::format("field {} has wire type {} (expected {})", field, wire, expected));
}

Event decode_event(std::string_view bytes, const std::string& where) {
  Event e;
  Fields f{bytes, &where};
  while (!f.done()) {
    const std::uint64_t key = f.varint();
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 1) {
      expect_wire(f, wire, 1, "Event.wall_time");
      e.wall_time = f.fixed<double>();
    } else if (field == 2) {
      expect_wire(f, wire, 0, "Event.step");
      e.step = static_cast<std::int64_t>(f.varint());
    } else if (field == 3) {
      expect_wire(f, wire, 2, "Event.file_version");
      e.file_version = std::string(f.take(f.varint()));
    } else if (field == 5) {
      expect_wire(f, wire, 2, "Event.summary");
      Fields summary{f.take(f.varint()), &where};
      while (!summary.done()) {
        const std::uint64_t k = summary.varint();
        if ((k >> 3) != 1) {
          summary.skip(static_cast<int>(k & 7));
          continue;
        }
        expect_wire(summary, static_cast<int>(k & 7), 2, "Summary.value");
        Fields value{summary.take(summary.varint()), &where};
        std::string tag;
        bool simple = false;
        float v = 0;
        while (!value.done()) {
          const std::uint64_t vk = value.varint();
          const int vf = static_cast<int>(vk >> 3), vw = static_cast<int>(vk & 7);
          if (vf == 1) {
            expect_wire(value, vw, 2, "Value.tag");
            tag = std::string(value.take(value.varint()));
          } else if (vf == 2) {
            expect_wire(value, vw, 5, "Value.simple_value");
            v = value.fixed<float>();
            simple = true;
          } else {
            value.skip(vw);
          }
        }
        if (simple) e.scalars.emplace_back(tag, v);
      }
    } else if (field == 7) {
      expect_wire(f, wire, 2, "Event.session_log");
      Fields log{f.take(f.varint()), &where};
      while (!log.done()) {
        const std::uint64_t k = log.varint();
        if ((k >> 3) == 1 && (k & 7) == 0) {
          e.session_status = static_cast<int>(log.varint());
        } else {
          log.skip(static_cast<int>(k & 7));
        }
      }
    } else {
      f.skip(wire);
    }
  }
  return e;
}

// "random init" -> "random_init", "MFCC (13 + deltas)" -> "mfcc_13_deltas".
std::string snake(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "row" : out;
}

// Test-set accuracies of one results row: *accuracy* keys (not the training-set ones), knn_top*.
void row_scalars(const nlohmann::json& row, const std::string& prefix,
                 std::map<std::string, double>& out) {
  for (const auto& [key, value] : row.items()) {
    if (!value.is_number()) continue;
    const bool accuracy =
        key.find("accuracy") != std::string::npos && key.find("train") == std::string::npos;
    if (accuracy || key.rfind("knn_top", 0) == 0) out[prefix + key] = value.get<double>();
  }
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
  static const std::array<std::uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (char ch : data) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t masked_crc32c(std::string_view data) {
  const std::uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string event_file_name() {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return fmt::format("events.out.tfevents.{}.{}.{}", secs, hostname(), ::getpid());
}

EventWriter::EventWriter(const std::string& dir) {
  make_dirs(dir);
  path_ = dir + "/" + event_file_name();
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) {
    throw IoError(fmt::format("writing '{}': cannot open ({})", path_, std::strerror(errno)));
  }
  std::string e = event_header(0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::write_record(const std::string& event) {
  std::string record;
  put_fixed(record, static_cast<std::uint64_t>(event.size()));
  put_fixed(record, masked_crc32c(record));
  record += event;
  put_fixed(record, masked_crc32c(event));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    throw IoError(fmt::format("writing '{}': write failed (disk full?)", path_));
  }
}

void EventWriter::add_scalars(std::int64_t step, const std::map<std::string, double>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, 5);  // simple_value: float
    put_fixed(v, static_cast<float>(value));
    put_bytes(summary, 1, v);
  }
  std::string e = event_header(step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void EventWriter::add_session_start(std::int64_t step) {
  std::string log;
  put_key(log, 1, 0);
  put_varint(log, 1);  // SessionLog.START
  std::string e = event_header(step);
  put_bytes(e, 7, log);
  write_record(e);
}

void EventWriter::flush() {
  if (std::fflush(file_) != 0 || std::ferror(file_)) {
    throw IoError(fmt::format("writing '{}': write failed (disk full?)", path_));
  }
}

std::vector<Event> read_events(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<Event> events;
  std::size_t pos = 0;
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  while (pos < bytes.size()) {
    const std::string where = fmt::format("event file '{}', record at byte {}", path, pos);
    check<DataError>(bytes.size() - pos >= 12, "{}: truncated length header", where);
    std::uint64_t length;
    std::memcpy(&length, bytes.data() + pos, 8);
    check<DataError>(u32(pos + 8) == masked_crc32c(std::string_view(bytes).substr(pos, 8)),
                     "{}: length CRC mismatch", where);
    check<DataError>(length <= bytes.size() - pos - 12 && bytes.size() - pos - 12 - length >= 4,
                     "{}: truncated record ({} data bytes announced)", where, length);
    const std::string_view data = std::string_view(bytes).substr(pos + 12, length);
    check<DataError>(u32(pos + 12 + length) == masked_crc32c(data), "{}: data CRC mismatch", where);
    events.push_back(decode_event(data, where));
    pos += 16 + length;
  }
  return events;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() &&
        entry.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::map<std::string, std::vector<Scalar>> read_scalars(const std::string& dir) {
  std::map<std::string, std::vector<Scalar>> out;
  for (const auto& file : event_files(dir)) {
    for (const auto& e : read_events(file)) {
      if (e.session_status == 1) {
        for (auto& [tag, points] : out) {
          points.erase(std::remove_if(points.begin(), points.end(),
                                      [&](const Scalar& s) { return s.step >= e.step; }),
                       points.end());
        }
      }
      for (const auto& [tag, value] : e.scalars) out[tag].push_back({e.step, e.wall_time, value});
    }
  }
  return out;
}

std::vector<std::string> log_probe_results(const std::string& dir) {
  const std::string path = dir + "/results.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("'{}': not valid JSON ({})", path, e.what()));
  } catch (const IoError& e) {
    throw DataError(e.what());
  }
  check<DataError>(j.is_object() && j.contains("step") && j["step"].is_number_integer(),
                   "'{}': no integer \"step\" (expected contra probe's results)", path);
  std::map<std::string, double> scalars;
  // Speech and image probes: "rows"; CLIP: "probe" (rows of the image encoder's probe).
  for (const char* list : {"rows", "probe"}) {
    if (!j.contains(list) || !j[list].is_array()) continue;
    bool first = true;
    for (const auto& row : j[list]) {
      if (!row.is_object()) continue;
      const std::string name = first ? "model" : snake(row.value("features", std::string("row")));
      first = false;
      row_scalars(row, "probe/" + name + "/", scalars);
    }
  }
  for (const char* key : {"zero_shot", "zero_shot_train_templates"}) {
    if (j.contains(key) && j[key].is_number()) scalars[std::string("clip/") + key] = j[key];
  }
  if (j.contains("retrieval") && j["retrieval"].is_object()) {
    for (const auto& [direction, recalls] : j["retrieval"].items()) {
      for (const auto& [k, v] : recalls.items()) {
        if (v.is_number() && k.rfind("R@", 0) == 0)
          scalars["clip/retrieval/" + snake(direction) + "/" + k] = v.get<double>();
      }
    }
  }
  if (j.contains("attributes") && j["attributes"].is_object()) {
    for (const auto& [name, a] : j["attributes"].items()) {
      if (a.is_object() && a.contains("accuracy") && a["accuracy"].is_number())
        scalars["clip/attributes/" + snake(name)] = a["accuracy"].get<double>();
    }
  }
  check<DataError>(!scalars.empty(), "'{}': no accuracies found (expected contra probe's results)",
                   path);
  EventWriter writer(dir + "/tensorboard");
  writer.add_scalars(j["step"].get<std::int64_t>(), scalars);
  writer.flush();
  std::vector<std::string> tags;
  for (const auto& [tag, v] : scalars) tags.push_back(tag);
  return tags;
}

}  // namespace contra::viz
