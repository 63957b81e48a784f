#pragma once
/// TensorBoard event files written by contra itself (no TensorFlow, no protobuf library).
///
/// A run's scalars go to RUN_DIR/tensorboard/events.out.tfevents.<unix_secs>.<hostname>.<pid>, one
/// file per process (as TensorFlow does: a resumed run starts a new file and TensorBoard reads them
/// all in name order). The format:
///   - TFRecord framing per record: uint64 length (little-endian), masked CRC32C of those 8 bytes,
///     the data, masked CRC32C of the data. Masked: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
///   - Each record is a tensorflow.Event protobuf, encoded here by hand: wall_time (double, field
///   1),
///     step (int64, field 2), file_version (string, field 3; "brain.Event:2" in the first record),
///     summary (field 5) → Summary.value (repeated, field 1) → Value{tag (string, field 1),
///     simple_value (float, field 2)}, session_log (field 7) → SessionLog.status (enum, field 1).
/// A resumed run writes SessionLog START at its first new step, so TensorBoard drops what the
/// previous process logged after the checkpoint (metrics.jsonl is truncated the same way).
///
///   EventWriter w(run_dir + "/tensorboard");
///   w.add_scalars(step, {{"loss", 0.5}, {"lr", 1e-3}});
///   w.flush();
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace contra::viz {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), continuing from `crc` (0 to start).
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
std::uint32_t masked_crc32c(std::string_view data);

/// "events.out.tfevents.<unix_secs>.<hostname>.<pid>" for now and this process.
std::string event_file_name();

/// Appends events to one new event file in `dir` (created with its parents). Throws IoError.
class EventWriter {
 public:
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// One Event holding every (tag, value) as simple_value (float) at `step`.
  void add_scalars(std::int64_t step, const std::map<std::string, double>& values);
  void add_scalar(std::int64_t step, const std::string& tag, double value) {
    add_scalars(step, {{tag, value}});
  }
  /// SessionLog START at `step`: TensorBoard forgets this run's earlier events at steps >= step.
  void add_session_start(std::int64_t step);
  /// Writes buffered records to the file; throws IoError when that fails (disk full).
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

/// One decoded Event: the fields contra writes (unknown fields are skipped).
struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;  // simple_value entries
  int session_status = 0;                              // SessionLog.status, 0 when absent
};

/// Reads every record of an event file, checking both CRCs and the protobuf structure. Throws
/// DataError naming the file and the record's offset (truncated record, CRC mismatch, bad field).
std::vector<Event> read_events(const std::string& path);

/// The event files (names containing "tfevents") directly in `dir`, in name (= time) order.
std::vector<std::string> event_files(const std::string& dir);

/// One scalar point.
struct Scalar {
  std::int64_t step = 0;
  double wall_time = 0;
  float value = 0;
};
/// The scalars of every event file in `dir` by tag, in file order, with TensorBoard's purge of
/// orphaned data: a SessionLog START at step s drops the points read so far at steps >= s.
std::map<std::string, std::vector<Scalar>> read_scalars(const std::string& dir);

/// Reads `<dir>/results.json` (contra probe's results: speech, image or CLIP) and appends its test
/// accuracies as scalars at the checkpoint's step to a new event file in `<dir>/tensorboard`:
/// probe/<row>/<key> (row "model" for the trained checkpoint, else the baseline's name in
/// lower_snake_case; key e.g. phone_accuracy, linear_accuracy, knn_top1) and, for CLIP,
/// clip/zero_shot, clip/retrieval/<direction>/R@k, clip/attributes/<name>. Returns the tags
/// written. Throws DataError when results.json is missing or malformed.
std::vector<std::string> log_probe_results(const std::string& dir);

}  // namespace contra::viz
