#include "contra/data/prefetch_loader.h"

#include <chrono>

#include <torch/torch.h>

#include "contra/core/error.h"

namespace contra::data {

PrefetchLoader::PrefetchLoader(Maker make, std::int64_t first, std::int64_t end, int threads,
                               int capacity)
    : make_(std::move(make)),
      next_to_claim_(first),
      next_to_return_(first),
      end_(end),
      capacity_(capacity) {
  check<ConfigError>(threads >= 1 && threads <= 64, "loader: threads must be in 1..64 (got {})",
                     threads);
  check<ConfigError>(capacity >= 1 && capacity <= 1024,
                     "loader: prefetch must be in 1..1024 (got {})", capacity);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  consumed_.notify_all();
  produced_.notify_all();
  for (auto& t : threads_) t.join();
}

void PrefetchLoader::work() {
  // Loader threads do small per-sample tensor work; keep them from spawning intra-op thread pools
  // that would fight the training threads for cores.
  at::set_num_threads(1);
  while (true) {
    std::int64_t step;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      consumed_.wait(lock, [&] {
        return stop_ || error_ || next_to_claim_ >= end_ ||
               next_to_claim_ < next_to_return_ + capacity_;
      });
      if (stop_ || error_ || next_to_claim_ >= end_) return;
      step = next_to_claim_++;
    }
    try {
      method::Batch batch = make_(step);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(step, std::move(batch));
    } catch (...) {
      // Steps are claimed in order, so every step before this one is claimed and still finishes;
      // keep the earliest failure so the consumer sees the steps before it first.
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_ || step < error_step_) {
        error_ = std::current_exception();
        error_step_ = step;
      }
    }
    produced_.notify_all();
  }
}

std::optional<method::Batch> PrefetchLoader::next() {
  auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_return_ >= end_) return std::nullopt;
  auto failed_now = [&] { return error_ && error_step_ == next_to_return_; };
  produced_.wait(lock, [&] { return failed_now() || ready_.count(next_to_return_) > 0; });
  if (ready_.count(next_to_return_) == 0) std::rethrow_exception(error_);
  auto node = ready_.extract(next_to_return_);
  ++next_to_return_;
  lock.unlock();
  consumed_.notify_all();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::move(node.mapped());
}

}  // namespace contra::data
