#pragma once
/// A bounded, ordered prefetching loader: background threads build the batches of upcoming steps
/// while the trainer computes, so compute never waits for I/O once the queue is warm.
///
/// Batches are a pure function of their step index (`make(step)`), which makes the data order
/// independent of the number of loader threads and makes resuming exact: the loader simply starts
/// at the resumed step. At most `capacity` batches are built ahead.
///
///   PrefetchLoader loader([&](int64_t s) { return source.batch(s); }, /*first=*/0, /*end=*/1000,
///   2, 4); while (auto batch = loader.next()) train_on(*batch);
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "contra/method/method.h"

namespace contra::data {

class PrefetchLoader {
 public:
  using Maker = std::function<method::Batch(std::int64_t step)>;
  /// Produces steps [first, end). threads >= 1, capacity >= 1.
  PrefetchLoader(Maker make, std::int64_t first, std::int64_t end, int threads = 1,
                 int capacity = 4);
  ~PrefetchLoader();
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  /// The next batch in step order; nullopt after `end`. Rethrows a loader thread's exception when
  /// the step that failed is due: every step before it is still delivered, in order.
  std::optional<method::Batch> next();
  /// Seconds the consumer spent waiting in next() so far (0 when loading keeps up).
  double wait_seconds() const { return wait_s_; }

 private:
  void work();
  Maker make_;
  std::int64_t next_to_claim_, next_to_return_, end_;
  int capacity_;
  std::map<std::int64_t, method::Batch> ready_;
  std::exception_ptr error_;  // the failure of the earliest failed step, error_step_
  std::int64_t error_step_ = 0;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable produced_, consumed_;
  std::vector<std::thread> threads_;
  double wait_s_ = 0;
};

}  // namespace contra::data
